// Regenerates the REST API's types from docs/openapi.json: `npm run generate` (after the API changes).
// `node scripts/generate.mjs <out>` writes elsewhere; the drift test uses that to compare with the checked-in file.
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const SPEC = resolve(root, "../../docs/openapi.json");
export const OUTPUT = join(root, "src/generated/openapi.ts");

export function generate(out = OUTPUT) {
  const cli = join(root, "node_modules/openapi-typescript/bin/cli.js");
  // Fields with a server default stay optional in request types: the client may leave them out.
  execFileSync(process.execPath, [cli, SPEC, "--default-non-nullable=false", "--output", out], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) generate(process.argv[2] ? resolve(process.argv[2]) : OUTPUT);
