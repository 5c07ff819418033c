/**
 * Recall before the prompt is built (`before_prompt_build`) and capture after the turn (`agent_end`).
 * Memory must never break a turn: a failed recall or capture is logged and the turn goes on without it.
 */

import type { MemoryClient, Message } from "memstrata";
import { scopeFor, type ResolvedConfig } from "./config.js";

/** The slice of OpenClaw's hook context this plugin reads (`PluginHookAgentContext`). */
export interface HookContext {
  agentId?: string;
  senderId?: string;
  channel?: string;
  channelId?: string;
  sessionKey?: string;
  sessionId?: string;
}

export interface Logger {
  warn: (message: string) => void;
}

/** Marks the recalled block so it can be recognised (and is never captured back as a user message). */
export const RECALL_OPEN = "<memstrata-memories>";
export const RECALL_CLOSE = "</memstrata-memories>";

function identity(ctx: HookContext) {
  return { agentId: ctx.agentId, senderId: ctx.senderId, channel: ctx.channel ?? ctx.channelId };
}

/** `before_prompt_build`: the best memories for the user's message, within the token budget. */
export function recallHook(client: MemoryClient, config: ResolvedConfig, log: Logger) {
  return async (
    event: { prompt: string; currentUserMessage?: string },
    ctx: HookContext,
  ): Promise<{ prependContext: string } | undefined> => {
    const query = (event.currentUserMessage ?? event.prompt ?? "").trim();
    if (!query) return undefined;
    try {
      const found = await client.context(stripRecall(query), {
        ...scopeFor(config, identity(ctx)),
        conversationId: ctx.sessionKey ?? ctx.sessionId,
        tokenBudget: config.recallTokenBudget,
      });
      if (!found.items.length && !found.text.trim()) return undefined;
      return {
        prependContext:
          `${RECALL_OPEN}\nWhat you remember about this user (from long-term memory; may be outdated):\n` +
          `${found.text.trim()}\n${RECALL_CLOSE}`,
      };
    } catch (error) {
      log.warn(`memstrata: recall failed, answering without memories: ${String(error)}`);
      return undefined;
    }
  };
}

/** `agent_end`: store the turn's new user messages (and replies, when configured) after a successful run. */
export function captureHook(client: MemoryClient, config: ResolvedConfig, log: Logger) {
  return async (event: { messages: unknown[]; success: boolean }, ctx: HookContext): Promise<void> => {
    if (!event.success) return;
    const messages = lastTurn(event.messages, config.captureAssistant);
    if (!messages.length) return;
    try {
      await client.add(messages, {
        ...scopeFor(config, identity(ctx)),
        conversationId: ctx.sessionKey ?? ctx.sessionId,
      });
    } catch (error) {
      log.warn(`memstrata: capture failed, this turn was not stored: ${String(error)}`);
    }
  };
}

/** The messages of the last turn: from the last user message on, text only, recalled blocks removed. */
export function lastTurn(messages: unknown[], withAssistant: boolean): Message[] {
  const turns = messages.map(asMessage).filter((m): m is Message => m !== undefined);
  let start = turns.map((m) => m.role).lastIndexOf("user");
  if (start === -1) return [];
  while (start > 0 && turns[start - 1]?.role === "user") start--;
  return turns
    .slice(start)
    .filter((m) => m.role === "user" || (withAssistant && m.role === "assistant"))
    .map((m) => ({ ...m, content: stripRecall(m.content) }))
    .filter((m) => m.content !== "");
}

function asMessage(raw: unknown): Message | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const { role, content } = raw as { role?: unknown; content?: unknown };
  if (role !== "user" && role !== "assistant") return undefined;
  const text = textOf(content);
  return text ? { role, content: text } : undefined;
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content.trim();
  if (!Array.isArray(content)) return "";
  return content
    .map((part) => (typeof part === "object" && part !== null && (part as { type?: unknown }).type === "text"
      ? String((part as { text?: unknown }).text ?? "")
      : ""))
    .join("\n")
    .trim();
}

function stripRecall(text: string): string {
  const start = text.indexOf(RECALL_OPEN);
  const end = text.indexOf(RECALL_CLOSE);
  if (start === -1 || end === -1 || end < start) return text.trim();
  return (text.slice(0, start) + text.slice(end + RECALL_CLOSE.length)).trim();
}
