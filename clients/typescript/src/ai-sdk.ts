/**
 * memstrata memory as Vercel AI SDK tools (`ai` 5 or later, a peer dependency).
 *
 * ```ts
 * import { generateText, stepCountIs } from "ai";
 * import { MemoryClient } from "memstrata";
 * import { memstrataTools } from "memstrata/ai-sdk";
 *
 * const tools = memstrataTools(new MemoryClient(), { userId: "alice" });
 * await generateText({ model, tools, stopWhen: stepCountIs(3), prompt: "Where do I live?" });
 * ```
 *
 * The scope is fixed by your code when the tools are made, never chosen by the model: a prompt cannot make
 * the agent read or write another user's memories.
 *
 * @module
 */

import { jsonSchema, tool, type Tool } from "ai";
import type { MemoryClient } from "./client.js";
import type { AddEvent, Scope } from "./types.js";

/** What the model sends to `searchMemory`. */
export interface SearchMemoryInput {
  query: string;
  limit?: number;
}

/** One memory as the model sees it: the text, when it was stored, and how well it matched. */
export interface RecalledMemory {
  id: string;
  memory: string;
  score: number | null;
  created_at: string | null;
}

/** What `searchMemory` returns to the model. */
export interface SearchMemoryOutput {
  memories: RecalledMemory[];
}

/** What the model sends to `addMemory`. */
export interface AddMemoryInput {
  content: string;
}

/** What `addMemory` returns to the model: what was stored, merged or superseded. */
export interface AddMemoryOutput {
  results: Array<Pick<AddEvent, "id" | "memory" | "event">>;
}

export interface MemstrataToolsOptions extends Scope {
  /** Upper bound on `limit` the model may ask for (default 10). */
  maxResults?: number;
  /** Conversation the added messages belong to. */
  conversationId?: string;
  /** Metadata stored with every memory the agent adds, e.g. `{ source: "agent" }`. */
  metadata?: Record<string, unknown>;
  /** Extract facts from what the agent adds (default true); false stores its text verbatim. */
  infer?: boolean;
}

/** The tools `memstrataTools` returns, keyed by the names the model sees. */
// A type alias, not an interface, so it is assignable to the AI SDK's ToolSet (an index-signature type).
export type MemstrataTools = {
  searchMemory: Tool<SearchMemoryInput, SearchMemoryOutput>;
  addMemory: Tool<AddMemoryInput, AddMemoryOutput>;
};

/** `searchMemory` and `addMemory` tools bound to one client and one scope. */
export function memstrataTools(client: MemoryClient, options: MemstrataToolsOptions = {}): MemstrataTools {
  return { searchMemory: searchMemoryTool(client, options), addMemory: addMemoryTool(client, options) };
}

function scopeOf(options: MemstrataToolsOptions): Scope {
  return { userId: options.userId, agentId: options.agentId, runId: options.runId, orgId: options.orgId };
}

/** A tool that searches the scope's long-term memory. */
export function searchMemoryTool(
  client: MemoryClient,
  options: MemstrataToolsOptions = {},
): Tool<SearchMemoryInput, SearchMemoryOutput> {
  const maxResults = options.maxResults ?? 10;
  return tool({
    description:
      "Search long-term memory for facts about the user, their preferences, plans and past conversations. " +
      "Call it before answering anything that depends on what the user said earlier.",
    inputSchema: jsonSchema<SearchMemoryInput>(
      {
        type: "object",
        properties: {
          query: { type: "string", minLength: 1, description: "what to look for, in natural language" },
          limit: { type: "integer", minimum: 1, maximum: maxResults, description: "how many memories to return" },
        },
        required: ["query"],
        additionalProperties: false,
      },
      { validate: (value) => checkInput<SearchMemoryInput>(value, { query: "text" }, { limit: "count" }) },
    ),
    execute: async ({ query, limit }, { abortSignal }) => {
      const { results } = await client.search(query, {
        ...scopeOf(options),
        limit: Math.min(limit ?? 5, maxResults),
        signal: abortSignal,
      });
      return {
        memories: results.map((m) => ({
          id: m.id,
          memory: m.memory,
          score: m.score ?? null,
          created_at: m.created_at ?? null,
        })),
      };
    },
  });
}

/** A tool that stores something worth remembering in the scope's long-term memory. */
export function addMemoryTool(
  client: MemoryClient,
  options: MemstrataToolsOptions = {},
): Tool<AddMemoryInput, AddMemoryOutput> {
  return tool({
    description:
      "Store a fact worth remembering about the user (a preference, a plan, a change in their life), " +
      "written as the user would say it, e.g. 'I am allergic to peanuts'.",
    inputSchema: jsonSchema<AddMemoryInput>(
      {
        type: "object",
        properties: { content: { type: "string", minLength: 1, description: "the fact to remember" } },
        required: ["content"],
        additionalProperties: false,
      },
      { validate: (value) => checkInput<AddMemoryInput>(value, { content: "text" }, {}) },
    ),
    execute: async ({ content }, { abortSignal }) => {
      const added = await client.add([{ role: "user", content }], {
        ...scopeOf(options),
        conversationId: options.conversationId,
        metadata: options.metadata,
        infer: options.infer,
        signal: abortSignal,
      });
      return { results: added.results.map(({ id, memory, event }) => ({ id, memory, event })) };
    },
  });
}

type FieldKind = "text" | "count";
type Checked<T> = { success: true; value: T } | { success: false; error: Error };

/** Checks the model's tool input against the schema's rules, so a malformed call never reaches the server. */
function checkInput<T>(value: unknown, required: Record<string, FieldKind>, optional: Record<string, FieldKind>): Checked<T> {
  const fail = (message: string): Checked<T> => ({ success: false, error: new TypeError(message) });
  if (typeof value !== "object" || value === null || Array.isArray(value)) return fail("input must be an object");
  const input = value as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!(key in required) && !(key in optional)) return fail(`${key}: unknown field`);
  }
  for (const [key, kind] of Object.entries({ ...required, ...optional })) {
    const v = input[key];
    if (v === undefined) {
      if (key in required) return fail(`${key}: required`);
    } else if (kind === "text" && (typeof v !== "string" || v.trim() === "")) {
      return fail(`${key}: must be a non-empty string`);
    } else if (kind === "count" && (!Number.isInteger(v) || (v as number) < 1)) {
      return fail(`${key}: must be a whole number >= 1`);
    }
  }
  return { success: true, value: input as T };
}
