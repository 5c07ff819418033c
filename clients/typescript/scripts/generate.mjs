// Regenerates the REST API's types from docs/openapi.json: `npm run generate` (after the API changes).
// `node scripts/generate.mjs <out>` writes elsewhere; the drift test uses that to compare with the checked-in file.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const SPEC = resolve(root, "../../docs/openapi.json");
export const OUTPUT = join(root, "src/generated/openapi.ts");

export function generate(out = OUTPUT) {
  // Resolved like an import, so it is found in this package's node_modules or a workspace's hoisted one.
  const main = createRequire(import.meta.url).resolve("openapi-typescript");
  const cli = join(dirname(main), "../bin/cli.js");
  // Fields with a server default stay optional in request types: the client may leave them out.
  execFileSync(process.execPath, [cli, SPEC, "--default-non-nullable=false", "--output", out], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) generate(process.argv[2] ? resolve(process.argv[2]) : OUTPUT);
