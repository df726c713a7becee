// Validates an AsyncAPI document with the official parser, @asyncapi/parser: the library the
// AsyncAPI CLI validates with (`asyncapi validate` is this parser, its default rules and its JSON
// Schema parser; the CLI's other schema parsers, Avro, OpenAPI, RAML and Protobuf, serve
// schemaFormats our document does not use). Like `asyncapi validate --fail-severity warn`: every
// diagnostic is printed, and an error or a warning fails. Relative $refs (./<type>.schema.json)
// are resolved from the document's own path.
//
// usage: node validate-asyncapi.mjs FILE
// stdout: one line a diagnostic, then "FILE is valid" when nothing is an error or a warning
// exit status: 0 valid, 1 an error or a warning, 2 the document could not be read or parsed
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { DiagnosticSeverity, Parser } from "@asyncapi/parser";

const FAIL_AT = DiagnosticSeverity.Warning;

function describe(diagnostic) {
  const severity = DiagnosticSeverity[diagnostic.severity] ?? String(diagnostic.severity);
  const start = diagnostic.range?.start;
  const where = start ? `${start.line + 1}:${start.character + 1}` : "-";
  const path = diagnostic.path?.length ? ` at #/${diagnostic.path.join("/")}` : "";
  const source = diagnostic.source ? ` in ${diagnostic.source}` : "";
  return `${where} ${severity.toLowerCase()} ${diagnostic.code} ${diagnostic.message}${path}${source}`;
}

async function main(file) {
  if (!file) {
    process.stderr.write("usage: node validate-asyncapi.mjs FILE\n");
    return 2;
  }
  const source = resolve(file);
  const { document, diagnostics } = await new Parser().parse(await readFile(source, "utf8"), {
    source,
  });
  for (const diagnostic of diagnostics) {
    process.stdout.write(describe(diagnostic) + "\n");
  }
  const failing = diagnostics.filter((diagnostic) => diagnostic.severity <= FAIL_AT);
  if (document === undefined || failing.length > 0) {
    process.stderr.write(`${file} is not valid: ${failing.length} error(s) or warning(s)\n`);
    return 1;
  }
  process.stdout.write(`${file} is valid\n`);
  return 0;
}

try {
  process.exitCode = await main(process.argv[2]);
} catch (error) {
  process.stderr.write(`${process.argv[2]}: ${error.stack ?? error}\n`);
  process.exitCode = 2;
}
