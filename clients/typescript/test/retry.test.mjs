// Retry policy on 5xx, which a healthy memstrata server cannot be made to answer on demand: a local HTTP
// server answers the real problem+json shape, failing a set number of times before it succeeds.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { MemoryClient, ServerError, UnavailableError, UpstreamError } from "../dist/index.js";

let server;
let url;
let plan = []; // statuses to answer, in order; 200 once exhausted
const seen = [];

before(async () => {
  server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const status = plan.shift() ?? 200;
    if (status === 200) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ results: [], episodes: [] }));
      return;
    }
    res.writeHead(status, { "content-type": "application/problem+json", "x-request-id": "rid-1" });
    res.end(JSON.stringify({ type: "urn:memstrata:problem:backend-unavailable", title: "Service unavailable",
      status, detail: "store: unreachable" }));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

const client = () => new MemoryClient({ baseUrl: url, maxRetries: 2, maxRetryDelay: 20 });

test("a search is retried after 503 and 502, then succeeds", async () => {
  plan = [503, 502];
  seen.length = 0;
  const out = await client().search("x", { userId: "u" });
  assert.deepEqual(out.results, []);
  assert.equal(seen.length, 3);
});

test("retries stop at maxRetries and the last problem is thrown, typed", async () => {
  plan = [503, 503, 503, 503];
  seen.length = 0;
  const err = await client().get("m1", { userId: "u" }).catch((e) => e);
  assert.ok(err instanceof UnavailableError && err instanceof ServerError);
  assert.equal(err.requestId, "rid-1");
  assert.equal(seen.length, 3);
});

test("add is not repeated after a 5xx: it may have stored the messages", async () => {
  plan = [502];
  seen.length = 0;
  const err = await client().add("hello", { userId: "u" }).catch((e) => e);
  assert.ok(err instanceof UpstreamError);
  assert.equal(seen.length, 1);
});

test("a body that is not a problem document still becomes a typed error", async () => {
  const plain = createServer((_req, res) => { res.writeHead(500); res.end("boom"); });
  await new Promise((r) => plain.listen(0, "127.0.0.1", r));
  try {
    const c = new MemoryClient({ baseUrl: `http://127.0.0.1:${plain.address().port}`, maxRetries: 0 });
    const err = await c.health().catch((e) => e);
    assert.ok(err instanceof ServerError);
    assert.equal(err.status, 500);
    assert.equal(err.detail, "boom");
  } finally {
    plain.close();
  }
});
