/**
 * The agent's memory tools. They are built per tool context, so the scope comes from who the agent is talking
 * to (never from the model's arguments): a prompt cannot reach another user's memories.
 */

import type { AnyAgentTool, OpenClawPluginToolContext } from "openclaw/plugin-sdk/plugin-entry";
import { Type, type Static, type TSchema } from "typebox";
import type { MemoryClient, MemoryItem, Scope } from "memstrata";
import { scopeFor, type ResolvedConfig } from "./config.js";

export const TOOL_NAMES = [
  "memory_search",
  "memory_add",
  "memory_get",
  "memory_list",
  "memory_update",
  "memory_delete",
] as const;

const Id = Type.String({ minLength: 1, description: "memory id, as returned by memory_search or memory_list" });

const SearchParams = Type.Object(
  {
    query: Type.String({ minLength: 1, description: "what to look for, in natural language" }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, description: "how many memories (default 5)" })),
  },
  { additionalProperties: false },
);
const AddParams = Type.Object(
  { content: Type.String({ minLength: 1, description: "the fact to remember, as the user would say it" }) },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Id }, { additionalProperties: false });
const ListParams = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: "page size (default 20)" })),
    cursor: Type.Optional(Type.String({ description: "next_cursor of the previous page" })),
  },
  { additionalProperties: false },
);
const UpdateParams = Type.Object(
  { id: Id, text: Type.String({ minLength: 1, description: "the corrected text" }) },
  { additionalProperties: false },
);

function line(m: MemoryItem): string {
  const score = typeof m.score === "number" ? ` (score ${m.score.toFixed(3)})` : "";
  const when = m.created_at ? ` [${m.created_at.slice(0, 10)}]` : "";
  return `- ${m.id}${when}: ${m.memory}${score}`;
}

function result<T>(text: string, details: T): { content: Array<{ type: "text"; text: string }>; details: T } {
  return { content: [{ type: "text", text }], details };
}

function define<P extends TSchema>(
  name: (typeof TOOL_NAMES)[number],
  label: string,
  description: string,
  parameters: P,
  run: (params: Static<P>, signal: AbortSignal | undefined) => Promise<{ content: Array<{ type: "text"; text: string }>; details: unknown }>,
): AnyAgentTool {
  return {
    name,
    label,
    description,
    parameters,
    execute: (_toolCallId, params, signal) => run(params as Static<P>, signal),
  };
}

/** The six memory tools bound to one scope. */
export function memoryTools(client: MemoryClient, config: ResolvedConfig, scope: Scope): AnyAgentTool[] {
  return [
    define(
      "memory_search",
      "Memory search",
      "Search long-term memory for facts about the user: preferences, plans, people, past conversations.",
      SearchParams,
      async ({ query, limit }, signal) => {
        const { results } = await client.search(query, { ...scope, limit: Math.min(limit ?? 5, config.searchLimit), signal });
        const text = results.length ? results.map(line).join("\n") : "No memories match.";
        return result(text, { results });
      },
    ),
    define(
      "memory_add",
      "Memory add",
      "Store something worth remembering about the user (a preference, a plan, a change in their life).",
      AddParams,
      async ({ content }, signal) => {
        const added = await client.add([{ role: "user", content }], { ...scope, signal });
        const text = added.results.length
          ? added.results.map((r) => `${r.event} ${r.id}: ${r.memory}`).join("\n")
          : "Nothing new to remember (kept in the conversation log only).";
        return result(text, added);
      },
    ),
    define("memory_get", "Memory get", "Read one memory by id, with its validity and source.", IdParams,
      async ({ id }, signal) => {
        const memory = await client.get(id, { ...scope, signal });
        return result(line(memory), memory);
      }),
    define(
      "memory_list",
      "Memory list",
      "List stored memories, oldest first, one page at a time.",
      ListParams,
      async ({ limit, cursor }, signal) => {
        const page = await client.listPage({ ...scope, limit: limit ?? 20, cursor, signal });
        const more = page.next_cursor ? `\n(more: cursor ${page.next_cursor})` : "";
        return result((page.results.map(line).join("\n") || "No memories yet.") + more, page);
      },
    ),
    define("memory_update", "Memory update", "Correct a memory's text; the old text stays in its history.",
      UpdateParams, async ({ id, text }, signal) => {
        const changed = await client.update(id, { text }, { ...scope, signal });
        return result(`${changed.event} ${changed.id}: ${changed.memory ?? text}`, changed);
      }),
    define("memory_delete", "Memory delete", "Forget one memory (its history is kept for audit).", IdParams,
      async ({ id }, signal) => {
        const deleted = await client.delete(id, { ...scope, signal });
        return result(`${deleted.event} ${deleted.id}`, deleted);
      }),
  ];
}

/** The tool factory OpenClaw calls for each run: the scope comes from the run's agent and sender. */
export function toolFactory(client: MemoryClient, config: ResolvedConfig) {
  return (ctx: OpenClawPluginToolContext): AnyAgentTool[] =>
    memoryTools(
      client,
      config,
      scopeFor(config, { agentId: ctx.agentId, senderId: ctx.requesterSenderId, channel: ctx.messageChannel }),
    );
}
