// The checked-in types must be what docs/openapi.json generates today: run `npm run generate` when this fails.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { OUTPUT, SPEC, generate } from "../scripts/generate.mjs";

test("src/generated/openapi.ts matches docs/openapi.json", () => {
  const dir = mkdtempSync(join(tmpdir(), "memstrata-gen-"));
  try {
    const fresh = join(dir, "openapi.ts");
    generate(fresh);
    const current = readFileSync(OUTPUT, "utf8");
    assert.ok(
      readFileSync(fresh, "utf8") === current,
      `src/generated/openapi.ts is stale against ${SPEC}: run \`npm run generate\` in clients/typescript`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("every REST path of docs/openapi.json is typed", () => {
  const spec = JSON.parse(readFileSync(SPEC, "utf8"));
  const current = readFileSync(OUTPUT, "utf8");
  for (const path of Object.keys(spec.paths)) assert.ok(current.includes(`"${path}": {`), `${path} missing`);
});
