// API keys, bindings and the rate limit against a live `memstrata serve` with auth on; keys come from the
// real `memstrata keys create`.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { AuthenticationError, MemoryClient, PermissionDeniedError, RateLimitError } from "../dist/index.js";
import { startServer } from "./support/server.mjs";

let server;
const keys = {};

before(async () => {
  server = await startServer({ auth: true, rateLimit: 5, burst: 10 });
  keys.alice = await server.createKey("--scope", "read,write", "--user", "alice");
  keys.reader = await server.createKey("--scope", "read", "--user", "alice");
  keys.admin = await server.createKey("--scope", "admin");
  keys.burst = await server.createKey("--scope", "read");
});
after(() => server?.stop());

const as = (key, extra = {}) => new MemoryClient({ baseUrl: server.url, apiKey: key, maxRetries: 0, ...extra });

test("without a key or with an unknown one: AuthenticationError (401)", async () => {
  const none = await as(undefined).search("x", { userId: "alice" }).catch((e) => e);
  assert.ok(none instanceof AuthenticationError);
  assert.equal(none.status, 401);
  const bogus = await as("ms_not_a_real_key_at_all_000000000000000000000").me().catch((e) => e);
  assert.ok(bogus instanceof AuthenticationError);
});

test("the API key never shows when the client is logged", async () => {
  const { inspect } = await import("node:util");
  const client = as(keys.alice);
  assert.ok(!inspect(client, { depth: 10, showHidden: true }).includes(keys.alice));
  assert.ok(!JSON.stringify(client).includes(keys.alice));
});

test("a key bound to alice fills user_id in and is refused for bob (403)", async () => {
  const alice = as(keys.alice);
  const me = await alice.me();
  assert.deepEqual(me.user_ids, ["alice"]);
  assert.deepEqual([...me.scopes].sort(), ["read", "write"]);
  await alice.add("I play the cello.", { infer: false });
  const { results } = await alice.search("cello");
  assert.equal(results[0].user_id, "alice");
  const err = await alice.search("cello", { userId: "bob" }).catch((e) => e);
  assert.ok(err instanceof PermissionDeniedError);
  assert.equal(err.status, 403);
});

test("a read-only key cannot write; an admin key can erase the user", async () => {
  const err = await as(keys.reader).add("I like jazz.").catch((e) => e);
  assert.ok(err instanceof PermissionDeniedError);
  assert.match(err.detail, /write/);
  const denied = await as(keys.alice).forgetUser("alice").catch((e) => e);
  assert.ok(denied instanceof PermissionDeniedError);
  const receipt = await as(keys.admin).forgetUser("alice");
  assert.match(JSON.stringify(receipt), /alice/);
  assert.deepEqual((await as(keys.alice).search("cello")).results, []);
});

test("429 carries Retry-After; with retries the client waits and every call succeeds", async () => {
  const noRetry = as(keys.burst);
  const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => noRetry.me()));
  const limited = outcomes.filter((o) => o.status === "rejected").map((o) => o.reason);
  assert.ok(limited.length >= 5, `expected some 429s, got ${limited.length}`);
  assert.ok(limited.every((e) => e instanceof RateLimitError && e.status === 429));
  assert.ok(limited.every((e) => e.retryAfter >= 1), "Retry-After is parsed");

  await new Promise((r) => setTimeout(r, 2_500)); // let the bucket refill
  const patient = as(keys.burst, { maxRetries: 6, maxRetryDelay: 3_000 });
  const all = await Promise.all(Array.from({ length: 20 }, () => patient.me()));
  assert.equal(all.length, 20);
  assert.ok(all.every((p) => p.scopes.includes("read")));
});
