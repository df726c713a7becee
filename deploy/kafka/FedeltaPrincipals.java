// The local broker's SCRAM users, created or updated through Kafka's own Admin client (run as a
// single-file program: java -cp "<kafka libs>/*" FedeltaPrincipals.java <client.properties>).
//
// Reads `<user> <password>` lines on stdin (so that no password is on a command line) and
// upserts a SCRAM-SHA-512 credential for each. deploy/local/kafka.sh runs it on every start as
// the broker's own PLAIN login (a super user whose password is in the rendered, owner-only
// server.properties), so a data dir formatted before SASL gets its users too. The ACLs are
// applied after it, as the admin user, by `python -m shared.messaging.acls apply`.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

public class FedeltaPrincipals {
    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: FedeltaPrincipals <client.properties> < '<user> <password>' lines");
            System.exit(2);
        }
        Properties props = new Properties();
        try (var in = Files.newInputStream(Path.of(args[0]))) {
            props.load(in);
        }
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        var reader = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = reader.readLine(); line != null; line = reader.readLine()) {
            String[] f = line.strip().split("\\s+");
            if (f.length != 2) {
                throw new IllegalArgumentException("not a '<user> <password>' line");
            }
            users.add(new UserScramCredentialUpsertion(
                f[0], new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), f[1]));
        }
        try (Admin admin = Admin.create(props)) {
            admin.alterUserScramCredentials(users).all().get();
        }
        System.out.printf("principals: %d SCRAM users%n", users.size());
    }
}
