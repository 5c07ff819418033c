// MemoryClient against a live `memstrata serve --no-auth` (SQLite, hash embedder).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ConnectionError,
  InvalidArgumentError,
  MemoryClient,
  MemstrataError,
  NotFoundError,
  RequestAbortedError,
  TimeoutError,
  ValidationError,
} from "../dist/index.js";
import { liveServer } from "./support/server.mjs";

const live = liveServer();

describe("memories", () => {
  test("add, search, context and get round-trip through the server", async () => {
    const added = await live.client.add(
      [{ role: "user", content: "I moved to Lisbon last month. My sister Anna lives in Porto." }],
      { userId: "alice", conversationId: "c1", timestamp: new Date("2026-03-02T10:00:00Z"), metadata: { src: "ts" } },
    );
    assert.ok(added.results.length >= 1, "add extracted at least one memory");
    assert.equal(added.episodes.length, 1);
    assert.ok(added.results.every((r) => r.event === "ADD"));

    const found = await live.client.search("where does my sister live?", { userId: "alice", limit: 3, explain: true });
    assert.ok(found.results.length >= 1);
    assert.match(found.results.map((r) => r.memory).join(" | "), /Porto/);
    assert.equal(typeof found.results[0].score, "number");
    assert.equal(found.results[0].user_id, "alice");

    const ctx = await live.client.context("plan a weekend trip", { userId: "alice", tokenBudget: 200 });
    assert.ok(ctx.tokens <= 200 && ctx.token_budget === 200);
    assert.match(ctx.text, /Lisbon|Porto/);

    const one = await live.client.get(added.results[0].id, { userId: "alice" });
    assert.equal(one.id, added.results[0].id);
    assert.deepEqual(one.metadata.src, "ts");
  });

  test("scopes are isolated: another user finds nothing and cannot get alice's memory", async () => {
    const { results } = await live.client.add("I am allergic to peanuts.", { userId: "iso-a", infer: false });
    const other = await live.client.search("allergic", { userId: "iso-b" });
    assert.deepEqual(other.results, []);
    await assert.rejects(live.client.get(results[0].id, { userId: "iso-b" }), NotFoundError);
  });

  test("the client's default scope is used, and a per-call id overrides it", async () => {
    const bob = new MemoryClient({ baseUrl: live.server.url, scope: { userId: "bob" } });
    await bob.add("My favourite colour is green.", { infer: false });
    assert.equal((await bob.search("favourite colour")).results[0].user_id, "bob");
    assert.deepEqual((await bob.search("favourite colour", { userId: "carol" })).results, []);
  });

  test("getAll pages through every memory with the server's cursors, oldest first", async () => {
    const texts = Array.from({ length: 7 }, (_, i) => `Note number ${i} about the garden.`);
    for (const t of texts) await live.client.add(t, { userId: "pager", infer: false });
    const pages = [];
    for await (const page of live.client.getAll({ userId: "pager", pageSize: 3 }).pages()) pages.push(page);
    assert.deepEqual(pages.map((p) => p.results.length), [3, 3, 1]);
    assert.equal(pages.at(-1).next_cursor, null);
    const all = await live.client.getAll({ userId: "pager", pageSize: 3 }).toArray();
    assert.deepEqual(all.map((m) => m.memory), texts);
    let seen = 0;
    for await (const m of live.client.getAll({ userId: "pager", pageSize: 2 })) {
      assert.ok(m.id);
      if (++seen === 3) break; // breaking stops fetching
    }
    assert.equal(seen, 3);
    const page = await live.client.listPage({ userId: "pager", limit: 5 });
    assert.equal(page.results.length, 5);
    const rest = await live.client.listPage({ userId: "pager", limit: 5, cursor: page.next_cursor });
    assert.deepEqual(rest.results.map((m) => m.memory), texts.slice(5));
  });

  test("update, history, delete and deleteAll", async () => {
    const { results } = await live.client.add("I work at Initech.", { userId: "dana", infer: false });
    const id = results[0].id;
    const changed = await live.client.update(id, { text: "I work at Globex.", metadata: { checked: true } }, { userId: "dana" });
    assert.equal(changed.event, "UPDATE");
    assert.equal((await live.client.get(id, { userId: "dana" })).memory, "I work at Globex.");
    const removed = await live.client.delete(id, { userId: "dana" });
    assert.equal(removed.event, "DELETE");
    await assert.rejects(live.client.get(id, { userId: "dana" }), NotFoundError);
    const events = await live.client.history(id, { userId: "dana" });
    assert.deepEqual(events.map((e) => e.event), ["ADD", "UPDATE", "DELETE"]);
    assert.equal(events[1].old_memory, "I work at Initech.");

    await live.client.add("I like tea.", { userId: "dana", infer: false });
    const wiped = await live.client.deleteAll({ userId: "dana" });
    assert.ok(wiped.deleted.memories >= 1);
    assert.deepEqual(await live.client.getAll({ userId: "dana" }).toArray(), []);
    await assert.rejects(live.client.deleteAll(), (e) => e instanceof InvalidArgumentError && e.field === "scope");
    assert.throws(() => live.client.update(id, {}), InvalidArgumentError);
  });

  test("conflicts and resolveConflict", async () => {
    await live.client.add("I live in Paris.", { userId: "erin" });
    await live.client.add("I live in Lisbon.", { userId: "erin" });
    // The default policy (latest_wins) settles the change itself: nothing waits, the record says why.
    assert.deepEqual((await live.client.conflicts({ userId: "erin" })).results, []);
    const { results } = await live.client.conflicts({ userId: "erin", status: "all" });
    assert.equal(results.length, 1);
    assert.equal(results[0].status, "resolved");
    assert.equal(results[0].resolution, "policy:keep_new");
    // A person may still overrule it.
    const resolved = await live.client.resolveConflict(results[0].id, { userId: "erin", keep: "old" });
    assert.equal(resolved.resolution, "keep_old");
    const hits = await live.client.search("where do I live", { userId: "erin" });
    assert.match(hits.results[0].memory, /Paris/);
  });

  test("exportUser and forgetUser", async () => {
    await live.client.add("My passport number is X123.", { userId: "frank", infer: false });
    const doc = await live.client.exportUser("frank");
    assert.equal(doc.user_id, "frank");
    assert.match(JSON.stringify(doc.scopes), /X123/);
    const receipt = await live.client.forgetUser("frank");
    assert.equal(typeof receipt, "object");
    assert.match(JSON.stringify(receipt), /frank/);
    assert.deepEqual((await live.client.search("passport", { userId: "frank" })).results, []);
  });

  test("episodes, entities, stats, me and health", async () => {
    await live.client.add("John works on the Alpha project with Maria.", { userId: "gina", conversationId: "g1" });
    const eps = await live.client.episodes({ userId: "gina", query: "Alpha" });
    assert.equal(eps.results.length, 1);
    const ents = await live.client.entities({ userId: "gina" });
    assert.ok(ents.results.some((e) => e.name === "John"));
    const hood = await live.client.neighbourhood("John", { userId: "gina" });
    assert.equal(hood.entity.name, "John");
    assert.ok((await live.client.stats({ userId: "gina" })).memories >= 1);
    assert.equal((await live.client.me()).auth, false);
    assert.deepEqual(await live.client.health(), { status: "ok" });
  });
});

describe("errors", () => {
  test("a 422 problem becomes ValidationError naming the field", async () => {
    const err = await live.client.search("x", { userId: "alice", limit: 5000 }).catch((e) => e);
    assert.ok(err instanceof ValidationError && err instanceof MemstrataError);
    assert.equal(err.status, 422);
    assert.equal(err.field, "limit");
    assert.match(err.detail, /limit/);
    assert.equal(err.type, "urn:memstrata:problem:invalid-input");
    assert.ok(err.requestId, "the server's request id is carried");
  });

  test("wrong JSON types are refused by the server, not coerced", async () => {
    const err = await live.client.add("hello", { userId: "alice", metadata: "not an object" }).catch((e) => e);
    assert.ok(err instanceof ValidationError);
    assert.equal(err.field, "metadata");
    assert.ok(err.errors.length >= 1);
  });

  test("404 for an unknown memory id, with the request id the caller sent", async () => {
    const err = await live.client.get("mem_does_not_exist", { userId: "alice", requestId: "ts-test-42" }).catch((e) => e);
    assert.ok(err instanceof NotFoundError);
    assert.equal(err.requestId, "ts-test-42");
  });

  test("an aborted signal rejects with RequestAbortedError and sends nothing further", async () => {
    const ctl = new AbortController();
    ctl.abort(new Error("user went away"));
    const err = await live.client.search("x", { userId: "alice", signal: ctl.signal }).catch((e) => e);
    assert.ok(err instanceof RequestAbortedError);
    assert.equal(err.cause.message, "user went away");
  });

  test("a per-call timeout rejects with TimeoutError", async () => {
    const err = await live.client.search("garden", { userId: "pager", timeout: 1 }).catch((e) => e);
    assert.ok(err instanceof TimeoutError, `got ${err}`);
    assert.equal(err.timeout, 1);
  });

  test("no server: ConnectionError, retried then given up", async () => {
    const dead = new MemoryClient({ baseUrl: "http://127.0.0.1:9", maxRetries: 1, maxRetryDelay: 10 });
    const started = Date.now();
    const err = await dead.health().catch((e) => e);
    assert.ok(err instanceof ConnectionError, `got ${err}`);
    assert.match(err.message, /127\.0\.0\.1:9/);
    assert.ok(Date.now() - started < 5_000);
  });

  test("bad options are refused before any request", () => {
    assert.throws(() => new MemoryClient({ baseUrl: "not a url" }), InvalidArgumentError);
    assert.throws(() => new MemoryClient({ timeout: 0 }), /timeout/);
    assert.throws(() => new MemoryClient({ maxRetries: -1 }), /maxRetries/);
    assert.throws(() => live.client.get(""), (e) => e instanceof InvalidArgumentError && e.field === "memoryId");
  });
});
