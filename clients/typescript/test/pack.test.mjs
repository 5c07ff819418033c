// What `npm pack` publishes: the built ESM, its declarations, the README; no sources, tests or maps. The tarball
// then installs into an empty project and imports by its package name.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const npm = (args, cwd) => execFileSync("npm", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

test("npm pack ships dist, declarations and README only", () => {
  const [info] = JSON.parse(npm(["pack", "--dry-run", "--json", "--ignore-scripts"], root));
  const files = info.files.map((f) => f.path).sort();
  for (const f of ["README.md", "package.json", "dist/index.js", "dist/index.d.ts", "dist/ai-sdk.js", "dist/ai-sdk.d.ts",
    "dist/generated/openapi.d.ts"]) {
    assert.ok(files.includes(f), `${f} is packed`);
  }
  assert.deepEqual(files.filter((f) => !/^(dist\/.*\.(js|d\.ts)|README\.md|package\.json)$/.test(f)), []);
});

test("the tarball installs into an empty project and imports as `memstrata`", () => {
  const dir = mkdtempSync(join(tmpdir(), "memstrata-pack-"));
  try {
    const tgz = JSON.parse(npm(["pack", "--json", "--ignore-scripts", "--pack-destination", dir], root))[0].filename;
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", type: "module", private: true }));
    npm(["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", join(dir, tgz)], dir);
    const out = execFileSync(process.execPath, ["--input-type=module", "-e",
      "import * as m from 'memstrata'; const c = new m.MemoryClient({ baseUrl: 'http://127.0.0.1:1' });" +
      "console.log(JSON.stringify([typeof m.MemoryClient, c.baseUrl, new m.NotFoundError({type:'t',title:'x'," +
      "status:404,detail:'d'}, new Headers()) instanceof m.MemstrataError]))"], { cwd: dir, encoding: "utf8" });
    assert.deepEqual(JSON.parse(out), ["function", "http://127.0.0.1:1", true]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
