// Parses Kafka records with the official CloudEvents SDK for JavaScript, as an integrator's
// consumer would: Kafka.isEvent / Kafka.toEvent of the SDK's Kafka binding, then the SDK's own
// validation of the event. Used by the contract tests (tests/e2e/test_wire_contract.py).
//
// stdin: one JSON object a line, {"key": string|null, "headers": {name: string}, "value": base64}
// stdout: one JSON object a line, in the same order: the parsed event's attributes, or {"error"}
// exit status: 0 when every record is a valid structured-mode CloudEvent, 1 otherwise.
import { createInterface } from "node:readline";
import { Kafka } from "cloudevents";

const STRUCTURED = "application/cloudevents+json";
let failed = 0;

function parse(record) {
  const message = {
    key: record.key,
    headers: record.headers,
    value: Buffer.from(record.value, "base64").toString("utf8"),
  };
  if (!Kafka.isEvent(message)) {
    throw new Error("No CloudEvent detected");
  }
  // toEvent would read a record without the header as binary mode: structured is the contract.
  const contentType = message.headers["content-type"] ?? "";
  if (!contentType.startsWith(STRUCTURED)) {
    throw new Error(`not structured mode: content-type ${JSON.stringify(contentType)}`);
  }
  const event = Kafka.toEvent(message);
  event.validate();
  return {
    id: event.id,
    type: event.type,
    source: event.source,
    subject: event.subject,
    dataschema: event.dataschema ?? null,
    specversion: event.specversion,
    partitionkey: event.partitionkey ?? null,
  };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  try {
    process.stdout.write(JSON.stringify(parse(JSON.parse(line))) + "\n");
  } catch (error) {
    failed += 1;
    const detail = error.errors ? ` ${JSON.stringify(error.errors)}` : "";
    process.stdout.write(JSON.stringify({ error: `${error.name}: ${error.message}${detail}` }) + "\n");
  }
}
process.exitCode = failed === 0 ? 0 : 1;
