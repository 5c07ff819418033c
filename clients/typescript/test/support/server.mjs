// Starts a real `memstrata serve` (SQLite store in a temp dir, the deterministic hash embedder) for the tests,
// and creates API keys with the real `memstrata keys create`. Python comes from MEMSTRATA_PYTHON, else the
// checkout's .venv, else python3; the checkout's src/ goes first on PYTHONPATH so the tests exercise this tree.
import { spawn, execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import { promisify } from "node:util";
import { MemoryClient } from "memstrata";

const run = promisify(execFile);
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

function python() {
  if (process.env.MEMSTRATA_PYTHON) return process.env.MEMSTRATA_PYTHON;
  const venv = join(REPO, ".venv/bin/python");
  return existsSync(venv) ? venv : "python3";
}

function env() {
  const path = [join(REPO, "src"), process.env.PYTHONPATH].filter(Boolean).join(":");
  return { ...process.env, PYTHONPATH: path, MEMSTRATA_EMBEDDER: "hash", PYTHONUNBUFFERED: "1" };
}

async function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/**
 * A live server. `auth` false runs `--no-auth`; `rateLimit`/`burst` pass through (default: no rate limit).
 * Returns { url, store, createKey(args), stop() }.
 */
export async function startServer({ auth = false, rateLimit = 0, burst = 100 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "memstrata-ts-"));
  const store = `sqlite:///${dir}/m.db`;
  const port = await freePort();
  const base = ["-m", "memstrata.cli", "--store", store, "--embedder", "hash"];
  const args = [...base, "serve", "--port", String(port), "--rate-limit", String(rateLimit), "--burst", String(burst),
    "--log-level", "warning"];
  if (!auth) args.push("--no-auth");
  const child = spawn(python(), args, { env: env(), stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => { stderr += chunk; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`memstrata serve exited with ${child.exitCode} (python: ${python()}):\n${stderr}`);
    }
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill();
      throw new Error(`memstrata serve did not answer /health within 60 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return {
    url,
    store,
    /** `memstrata keys create ... --quiet` on the same store; resolves the key. */
    async createKey(...keyArgs) {
      const { stdout } = await run(python(), [...base, "keys", "create", ...keyArgs, "--quiet"], { env: env() });
      const key = stdout.trim();
      if (!key.startsWith("ms_")) throw new Error(`keys create printed ${JSON.stringify(stdout)}`);
      return key;
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One server for the calling test file: started in `before`, stopped in `after`. The returned object gets
 * `server` and `client` (a MemoryClient without retries) once the server is up.
 */
export function liveServer(options) {
  const live = {};
  before(async () => {
    live.server = await startServer(options);
    live.client = new MemoryClient({ baseUrl: live.server.url, maxRetries: 0 });
  });
  after(() => live.server?.stop());
  return live;
}
