// memstrata/ai-sdk: generateText drives the tools through the AI SDK's own mock model against a live server.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateText, stepCountIs } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { memstrataTools } from "../dist/ai-sdk.js";
import { liveServer } from "./support/server.mjs";

const live = liveServer();

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
};

/** A model that calls one tool, then answers with the text of the tool's result. */
function scriptedModel(toolName, input) {
  let step = 0;
  return new MockLanguageModelV3({
    doGenerate: async ({ prompt, tools }) => {
      step += 1;
      if (step === 1) {
        assert.ok(tools.some((t) => t.name === toolName), `${toolName} offered to the model`);
        return {
          content: [{ type: "tool-call", toolCallId: "call-1", toolName, input: JSON.stringify(input) }],
          finishReason: { unified: "tool-calls", raw: "tool_calls" },
          usage,
          warnings: [],
        };
      }
      const result = prompt.at(-1).content.find((part) => part.type === "tool-result");
      return {
        content: [{ type: "text", text: `tool said: ${JSON.stringify(result.output.value)}` }],
        finishReason: { unified: "stop", raw: "stop" },
        usage,
        warnings: [],
      };
    },
  });
}

test("the model stores a fact with addMemory, in the scope the code chose", async () => {
  const tools = memstrataTools(live.client, { userId: "ai-user", metadata: { via: "ai-sdk" } });
  const out = await generateText({
    model: scriptedModel("addMemory", { content: "I am allergic to peanuts." }),
    tools,
    stopWhen: stepCountIs(3),
    prompt: "Remember that I am allergic to peanuts.",
  });
  const call = out.steps[0].toolResults[0];
  assert.equal(call.toolName, "addMemory");
  assert.equal(call.output.results[0].event, "ADD");
  const stored = await live.client.getAll({ userId: "ai-user" }).toArray();
  assert.equal(stored.length, 1);
  assert.match(stored[0].memory, /peanuts/);
  assert.equal(stored[0].metadata.via, "ai-sdk");
  assert.match(out.text, /peanuts/);
});

test("the model recalls with searchMemory and answers from the result", async () => {
  await live.client.add("My daughter's name is Ines.", { userId: "ai-user", infer: false });
  await live.client.add("My daughter's name is Sofia.", { userId: "someone-else", infer: false });
  const out = await generateText({
    model: scriptedModel("searchMemory", { query: "daughter name", limit: 50 }),
    tools: memstrataTools(live.client, { userId: "ai-user", maxResults: 3 }),
    stopWhen: stepCountIs(3),
    prompt: "What is my daughter called?",
  });
  const { memories } = out.steps[0].toolResults[0].output;
  assert.ok(memories.length >= 1 && memories.length <= 3, "the model's limit is capped by maxResults");
  assert.equal(memories[0].memory, "My daughter's name is Ines.");
  assert.ok(!JSON.stringify(memories).includes("Sofia"), "another user's memory never reaches the model");
  assert.match(out.text, /Ines/);
  assert.equal(out.steps.length, 2);
});

test("input that breaks the tool's schema is refused before the server is called", async () => {
  const before = await live.client.getAll({ userId: "ai-user" }).toArray();
  const out = await generateText({
    model: scriptedModel("addMemory", { text: "wrong field" }),
    tools: memstrataTools(live.client, { userId: "ai-user" }),
    stopWhen: stepCountIs(1),
    prompt: "x",
  });
  const errors = out.steps[0].content.filter((p) => p.type === "tool-error");
  assert.equal(errors.length, 1);
  assert.match(String(errors[0].error), /content: required|text: unknown field/);
  assert.deepEqual(await live.client.getAll({ userId: "ai-user" }).toArray(), before);
});
