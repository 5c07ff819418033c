/**
 * `@memstrata/openclaw`: an OpenClaw memory plugin whose memory lives in a memstrata server.
 *
 * It owns the `memory` slot (`plugins.slots.memory: "memstrata"`), registers the tools `memory_search`,
 * `memory_add`, `memory_get`, `memory_list`, `memory_update` and `memory_delete`, recalls relevant memories
 * into the prompt before each turn (`before_prompt_build`) and captures the user's messages after each
 * successful turn (`agent_end`). Every call is scoped to the turn's user (the sender, or a configured user)
 * and, by default, to the OpenClaw agent.
 *
 * @module
 */

import { buildJsonPluginConfigSchema, definePluginEntry } from "openclaw/plugin-sdk/plugin-entry";
import type { OpenClawPluginApi } from "openclaw/plugin-sdk/plugin-entry";
import { MemoryClient } from "memstrata";
import { CONFIG_SCHEMA, resolveConfig } from "./config.js";
import { captureHook, recallHook } from "./hooks.js";
import { TOOL_NAMES, toolFactory } from "./tools.js";

export { CONFIG_SCHEMA, resolveConfig, scopeFor, type MemstrataPluginConfig, type ResolvedConfig } from "./config.js";
export { captureHook, lastTurn, recallHook, RECALL_CLOSE, RECALL_OPEN } from "./hooks.js";
export { memoryTools, toolFactory, TOOL_NAMES } from "./tools.js";

/** Registers the tools and hooks on an OpenClaw plugin API (what the entry's `register` does). */
export function registerMemstrata(api: OpenClawPluginApi, client?: MemoryClient): void {
  const config = resolveConfig(api.pluginConfig);
  const memory =
    client ??
    new MemoryClient({
      baseUrl: config.baseUrl,
      apiKey: config.apiKey,
      timeout: config.timeoutMs,
      maxRetries: 1,
      headers: { "User-Agent": `memstrata-openclaw/${api.version ?? "dev"}` },
    });
  api.registerTool(toolFactory(memory, config), { names: [...TOOL_NAMES] });
  if (config.autoRecall) api.on("before_prompt_build", recallHook(memory, config, api.logger));
  if (config.autoCapture) api.on("agent_end", captureHook(memory, config, api.logger));
  api.logger.info?.(
    `memstrata: memory at ${memory.baseUrl} (recall ${config.autoRecall ? "on" : "off"}, ` +
      `capture ${config.autoCapture ? "on" : "off"})`,
  );
}

export default definePluginEntry({
  id: "memstrata",
  name: "memstrata Memory",
  description: "Long-term memory in a memstrata server: tools, recall before each prompt, capture after each turn.",
  configSchema: buildJsonPluginConfigSchema(CONFIG_SCHEMA as unknown as Record<string, unknown>),
  register: (api) => registerMemstrata(api),
});
