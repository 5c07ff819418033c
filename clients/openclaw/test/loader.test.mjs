// The built plugin loaded by OpenClaw's own plugin loader (the `openclaw` package pinned in devDependencies),
// then its registered tools and hooks run against a live memstrata server. OpenClaw needs Node 24.16+: run
// this file with such a node (`npm run test:loader` uses $OPENCLAW_NODE; clients/run-tests.sh provides one).
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { after, before, test } from "node:test";
import { MemoryClient } from "memstrata";
import { startServer } from "../../typescript/test/support/server.mjs";

const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  throw new Error(`OpenClaw's loader needs Node 24.16+, this is ${process.version}: run with OPENCLAW_NODE=/path/to/node24 ` +
    "npm run test:loader (clients/run-tests.sh fetches one from the npm registry)");
}

const pluginDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const home = mkdtempSync(join(tmpdir(), "memstrata-openclaw-"));
let server;
let registry;

/** OpenClaw's loadOpenClawPlugins, found by name in its build (chunk file names are content hashes). */
async function openclawLoader() {
  // plugin-sdk/plugin-entry is a public export; the loader chunk sits beside it in dist/.
  const entry = fileURLToPath(import.meta.resolve("openclaw/plugin-sdk/plugin-entry"));
  const dist = resolve(dirname(entry), "..");
  for (const file of readdirSync(dist).filter((f) => f.startsWith("loader-runtime-load-") && f.endsWith(".mjs"))) {
    const mod = await import(pathToFileURL(join(dist, file)).href);
    const fn = Object.values(mod).find((v) => typeof v === "function" && v.name === "loadOpenClawPlugins");
    if (fn) return fn;
  }
  throw new Error(`loadOpenClawPlugins not found in ${dist}: the pinned openclaw version changed its layout`);
}

before(async () => {
  server = await startServer();
  Object.assign(process.env, { HOME: home, OPENCLAW_STATE_DIR: join(home, "state") });
  const load = await openclawLoader();
  registry = load({
    config: {
      plugins: {
        load: { paths: [pluginDir] },
        slots: { memory: "memstrata" },
        entries: {
          memstrata: { enabled: true, config: { baseUrl: server.url }, hooks: { allowConversationAccess: true } },
        },
      },
    },
    workspaceDir: home,
    activate: false,
    cache: false,
    onlyPluginIds: ["memstrata"],
    throwOnLoadError: true,
  });
});
after(async () => {
  await server?.stop();
  rmSync(home, { recursive: true, force: true });
});

test("OpenClaw loads the plugin into the memory slot", () => {
  const record = registry.plugins.find((p) => p.id === "memstrata");
  assert.ok(record, "the loader found the plugin");
  assert.equal(record.status, "loaded", record.error);
  assert.equal(record.kind, "memory");
  const tools = registry.tools.filter((t) => t.pluginId === "memstrata").flatMap((t) => t.names);
  assert.deepEqual(tools, ["memory_search", "memory_add", "memory_get", "memory_list", "memory_update", "memory_delete"]);
  const hooks = registry.typedHooks.filter((h) => h.pluginId === "memstrata").map((h) => h.hookName).sort();
  assert.deepEqual(hooks, ["agent_end", "before_prompt_build"]);
  // The slot went to memstrata: OpenClaw's built-in memory plugin stands down.
  assert.ok(
    registry.diagnostics.some((d) => d.pluginId === "memory-core" && /not selected for the memory slot/.test(d.message)),
    JSON.stringify(registry.diagnostics),
  );
});

test("the registered tools and hooks reach memstrata, scoped per sender and agent", async () => {
  const ctx = { agentId: "main", requesterSenderId: "u1", messageChannel: "discord", sessionKey: "k1" };
  const { factory } = registry.tools.find((t) => t.pluginId === "memstrata");
  const tools = Object.fromEntries(factory(ctx).map((t) => [t.name, t]));
  await tools.memory_add.execute("t1", { content: "My dog is called Bolt." });
  const client = new MemoryClient({ baseUrl: server.url });
  const stored = await client.search("dog", { userId: "discord:u1", agentId: "main" });
  assert.match(stored.results[0].memory, /Bolt/);

  const hook = (name) => registry.typedHooks.find((h) => h.pluginId === "memstrata" && h.hookName === name).handler;
  const hookCtx = { agentId: "main", senderId: "u1", channel: "discord", sessionKey: "k1" };
  const recalled = await hook("before_prompt_build")({ prompt: "what is my dog's name?", messages: [] }, hookCtx);
  assert.match(recalled.prependContext, /Bolt/);
  await hook("agent_end")({ success: true, messages: [{ role: "user", content: "I moved to Oslo." }] }, hookCtx);
  const all = await client.getAll({ userId: "discord:u1", agentId: "main" }).toArray();
  assert.ok(all.some((m) => /Oslo/.test(m.memory)));
});
