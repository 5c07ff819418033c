// The plugin's entry, tools and hooks against a live memstrata server, registered on an API object that
// records what the plugin asks of OpenClaw (the shape is checked at build time against openclaw's published
// OpenClawPluginApi types). test/loader.test.mjs loads the same build through OpenClaw's own plugin loader.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { InvalidArgumentError, NotFoundError } from "memstrata";
import entry, { CONFIG_SCHEMA, RECALL_OPEN, TOOL_NAMES, lastTurn, registerMemstrata, resolveConfig } from "../dist/index.js";
import { liveServer } from "../../typescript/test/support/server.mjs";

const manifest = JSON.parse(readFileSync(new URL("../openclaw.plugin.json", import.meta.url), "utf8"));
const live = liveServer();

/** Registers the plugin on a recording API; returns its tool factory and hook handlers. */
function register(config) {
  const got = { tools: [], hooks: {}, warnings: [] };
  registerMemstrata({
    id: "memstrata",
    version: "test",
    pluginConfig: { baseUrl: live.server.url, ...config },
    logger: { info() {}, warn: (m) => got.warnings.push(m), error() {}, debug() {} },
    registerTool: (factory, opts) => got.tools.push({ factory, opts }),
    on: (name, handler) => { got.hooks[name] = handler; },
  });
  return got;
}

const toolsFor = (got, ctx) => Object.fromEntries(got.tools[0].factory(ctx).map((t) => [t.name, t]));
const text = (res) => res.content.map((c) => c.text).join("\n");

describe("entry and manifest", () => {
  test("the manifest declares the memory slot, the tools and the same config schema as the code", () => {
    assert.equal(manifest.id, entry.id);
    assert.equal(manifest.kind, "memory");
    assert.deepEqual(manifest.contracts.tools, [...TOOL_NAMES]);
    assert.deepEqual(manifest.configSchema, CONFIG_SCHEMA);
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    assert.deepEqual(pkg.openclaw.extensions, ["./dist/index.js"]);
  });

  test("npm pack ships the build, the manifest and README only", () => {
    const cwd = new URL("..", import.meta.url);
    const [info] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd, encoding: "utf8" }));
    const files = info.files.map((f) => f.path).sort();
    for (const f of ["openclaw.plugin.json", "README.md", "package.json", "dist/index.js", "dist/index.d.ts"]) {
      assert.ok(files.includes(f), `${f} is packed`);
    }
    assert.deepEqual(files.filter((f) => !/^(dist\/.*\.(js|d\.ts)|README\.md|package\.json|openclaw\.plugin\.json)$/.test(f)), []);
  });

  test("the entry validates config with OpenClaw's JSON-schema validator", () => {
    assert.equal(entry.configSchema.safeParse({ autoRecall: false, searchLimit: 5 }).success, true);
    const bad = entry.configSchema.safeParse({ searchLimit: 500, colour: "red" });
    assert.equal(bad.success, false);
    assert.ok(bad.error.issues.length >= 1);
  });

  test("resolveConfig names the setting at fault", () => {
    assert.throws(() => resolveConfig({ recallTokenBudget: 5 }),
      (e) => e instanceof InvalidArgumentError && e.field === "config.recallTokenBudget");
    assert.throws(() => resolveConfig({ autoRecal: true }), /config\.autoRecal: unknown setting/);
    assert.equal(resolveConfig({}).autoCapture, true);
  });

  test("hooks follow autoRecall / autoCapture", () => {
    assert.deepEqual(Object.keys(register({}).hooks).sort(), ["agent_end", "before_prompt_build"]);
    assert.deepEqual(Object.keys(register({ autoRecall: false, autoCapture: false }).hooks), []);
    assert.deepEqual(register({}).tools[0].opts.names, [...TOOL_NAMES]);
  });
});

describe("tools", () => {
  const ana = { agentId: "planner", requesterSenderId: "351900", messageChannel: "telegram" };
  const ben = { agentId: "planner", requesterSenderId: "447700", messageChannel: "telegram" };

  test("add, search, list, get, update and delete in the sender's scope", async () => {
    const got = register({});
    const tools = toolsFor(got, ana);
    assert.deepEqual(Object.keys(tools), [...TOOL_NAMES]);
    const added = await tools.memory_add.execute("c1", { content: "I am vegetarian." });
    const id = added.details.results[0].id;
    assert.match(text(added), /ADD/);
    const stored = await live.client.get(id, { userId: "telegram:351900", agentId: "planner" });
    assert.equal(stored.memory, "I am vegetarian.");

    const found = await tools.memory_search.execute("c2", { query: "what do I eat?", limit: 3 });
    assert.match(text(found), /vegetarian/);
    assert.match(text(await tools.memory_list.execute("c3", {})), new RegExp(id));
    assert.match(text(await tools.memory_get.execute("c4", { id })), /vegetarian/);
    const updated = await tools.memory_update.execute("c5", { id, text: "I am vegan." });
    assert.equal(updated.details.event, "UPDATE");
    assert.equal((await live.client.get(id, { userId: "telegram:351900", agentId: "planner" })).memory, "I am vegan.");
    assert.equal((await tools.memory_delete.execute("c6", { id })).details.event, "DELETE");
    await assert.rejects(tools.memory_get.execute("c7", { id }), NotFoundError);
  });

  test("another sender, or another agent, cannot see the memory", async () => {
    const got = register({});
    const { details } = await toolsFor(got, ana).memory_add.execute("c1", { content: "My locker code is 4417." });
    const id = details.results[0].id;
    await assert.rejects(toolsFor(got, ben).memory_get.execute("c2", { id }), NotFoundError);
    assert.match(text(await toolsFor(got, ben).memory_search.execute("c3", { query: "locker code" })), /No memories/);
    await assert.rejects(toolsFor(got, { ...ana, agentId: "other" }).memory_get.execute("c4", { id }), NotFoundError);
    const shared = register({ scopeByAgent: false });
    await toolsFor(shared, { ...ana, agentId: "x" }).memory_add.execute("c5", { content: "I cycle to work." });
    assert.match(text(await toolsFor(shared, { ...ana, agentId: "y" }).memory_search.execute("c6", { query: "cycle" })), /cycle/);
  });

  test("a fixed userId puts every conversation in one user's memory", async () => {
    const got = register({ userId: "me", scopeByAgent: false });
    await toolsFor(got, ana).memory_add.execute("c1", { content: "My car is a blue Fiat." });
    const hits = await live.client.search("car", { userId: "me" });
    assert.match(hits.results[0].memory, /Fiat/);
  });
});

describe("hooks", () => {
  const ctx = { agentId: "main", senderId: "u-42", channel: "slack", sessionKey: "s-1" };

  test("agent_end captures the turn's user messages; before_prompt_build recalls them", async () => {
    const { hooks } = register({});
    await hooks.agent_end({
      success: true,
      messages: [
        { role: "user", content: "old turn" },
        { role: "assistant", content: "old reply" },
        { role: "user", content: [{ type: "text", text: "My sister Anna lives in Porto." }] },
        { role: "assistant", content: [{ type: "text", text: "Noted!" }] },
      ],
    }, ctx);
    const stored = await live.client.getAll({ userId: "slack:u-42", agentId: "main" }).toArray();
    assert.deepEqual(stored.map((m) => m.memory).filter((m) => /Anna/.test(m)).length, 1);
    assert.ok(!stored.some((m) => /old turn|Noted/.test(m.memory)), "only the last turn's user text is kept");

    const out = await hooks.before_prompt_build({ prompt: "where does my sister live?", messages: [] }, ctx);
    assert.ok(out.prependContext.startsWith(RECALL_OPEN));
    assert.match(out.prependContext, /Porto/);
    const stranger = await hooks.before_prompt_build(
      { prompt: "where does my sister live?", messages: [] }, { ...ctx, senderId: "u-43" });
    assert.ok(stranger === undefined || !/Porto/.test(stranger.prependContext));
  });

  test("a failed turn is not captured; a recalled block is never stored back", async () => {
    const { hooks } = register({});
    const who = { ...ctx, senderId: "u-50" };
    await hooks.agent_end({ success: false, messages: [{ role: "user", content: "I hate mondays." }] }, who);
    assert.deepEqual(await live.client.getAll({ userId: "slack:u-50", agentId: "main" }).toArray(), []);
    const recalled = `${RECALL_OPEN}\nI live in Rome.\n</memstrata-memories>\nI like cats.`;
    assert.deepEqual(lastTurn([{ role: "user", content: recalled }], false), [{ role: "user", content: "I like cats." }]);
  });

  test("an unreachable server never breaks the turn: the hooks log and go on", async () => {
    const got = register({ baseUrl: "http://127.0.0.1:9", timeoutMs: 500 });
    assert.equal(await got.hooks.before_prompt_build({ prompt: "hi", messages: [] }, ctx), undefined);
    await got.hooks.agent_end({ success: true, messages: [{ role: "user", content: "hello" }] }, ctx);
    assert.equal(got.warnings.length, 2);
    assert.match(got.warnings[0], /recall failed/);
    assert.match(got.warnings[1], /capture failed/);
  });
});
