// npx tsx examples/quickstart.ts  (a server: `memstrata serve --no-auth`)
import { MemoryClient, NotFoundError } from "memstrata";

const memory = new MemoryClient({ baseUrl: process.env.MEMSTRATA_URL, scope: { userId: "alice" } });

await memory.add([{ role: "user", content: "I moved to Lisbon last month. My sister Anna lives in Porto." }], {
  conversationId: "c1",
});
const { results } = await memory.search("where does my sister live?", { limit: 3 });
console.log(results.map((m) => `${m.memory} (${m.score?.toFixed(2)})`));

const ctx = await memory.context("plan a weekend trip", { tokenBudget: 300 });
console.log(ctx.text);

for await (const m of memory.getAll({ pageSize: 100 })) console.log(m.id, m.memory);

try {
  await memory.get("mem_missing");
} catch (error) {
  if (error instanceof NotFoundError) console.log("not in this scope:", error.detail, error.requestId);
  else throw error;
}
