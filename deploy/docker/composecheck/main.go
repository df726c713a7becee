// compose-check loads a compose file with compose-go, the loader `docker compose` itself uses:
// the Compose Specification's schema, interpolation (a required ${VAR:?} left unset is an
// error), merges and profiles. It prints the normalised project as YAML, for
// tests/contract/test_compose.py, where CI has no Docker engine.
//
//	compose-check FILE [ENV_FILE...]
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check FILE [ENV_FILE...]")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(
		os.Args[1:2],
		// The env files given (.env when none), never the caller's environment: repeatable.
		cli.WithEnvFiles(os.Args[2:]...),
		cli.WithDotEnv,
		// Every profile, so that the services behind one are checked as well.
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := project.MarshalYAML()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
