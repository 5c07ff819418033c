// An AI SDK agent with long-term memory. Any provider works; the model below is an example.
import { generateText, stepCountIs, type LanguageModel } from "ai";
import { MemoryClient } from "memstrata";
import { memstrataTools } from "memstrata/ai-sdk";

export async function answer(model: LanguageModel, userId: string, question: string): Promise<string> {
  const tools = memstrataTools(new MemoryClient(), { userId, metadata: { source: "agent" } });
  const { text } = await generateText({
    model,
    tools,
    stopWhen: stepCountIs(4),
    system: "Search memory before answering personal questions; store new facts the user tells you.",
    prompt: question,
  });
  return text;
}
