/** The plugin's settings (`plugins.entries.memstrata.config`) and how a turn maps to a memstrata scope. */

import { InvalidArgumentError, type Scope } from "memstrata";

/** JSON Schema of the settings; `openclaw.plugin.json` carries the same object (a test keeps them equal). */
export const CONFIG_SCHEMA = {
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "baseUrl": {
      "type": "string",
      "description": "memstrata server URL (default http://127.0.0.1:8000 or MEMSTRATA_URL)"
    },
    "apiKey": {
      "type": "string",
      "description": "API key (default MEMSTRATA_API_KEY); none for a --no-auth server"
    },
    "userId": {
      "type": "string",
      "minLength": 1,
      "maxLength": 128,
      "description": "one user for every conversation; default: the sender"
    },
    "defaultUserId": {
      "type": "string",
      "minLength": 1,
      "maxLength": 128,
      "description": "user when a turn has no sender (default 'owner')"
    },
    "orgId": {
      "type": "string",
      "minLength": 1,
      "maxLength": 128
    },
    "scopeByAgent": {
      "type": "boolean",
      "description": "keep each OpenClaw agent's memories apart (default true)"
    },
    "autoRecall": {
      "type": "boolean",
      "description": "add relevant memories to the prompt before each turn (default true)"
    },
    "autoCapture": {
      "type": "boolean",
      "description": "store the user's messages after each successful turn (default true)"
    },
    "captureAssistant": {
      "type": "boolean",
      "description": "also store the assistant's replies (default false)"
    },
    "recallTokenBudget": {
      "type": "integer",
      "minimum": 50,
      "maximum": 8000,
      "description": "token budget of recalled context (default 600)"
    },
    "searchLimit": {
      "type": "integer",
      "minimum": 1,
      "maximum": 50,
      "description": "most results a memory_search returns (default 10)"
    },
    "timeoutMs": {
      "type": "integer",
      "minimum": 100,
      "maximum": 120000,
      "description": "per-request timeout (default 10000)"
    }
  }
} as const;

/** Settings read from `plugins.entries.memstrata.config` (all optional). */
export interface MemstrataPluginConfig {
  /** Server URL (default: `MEMSTRATA_URL`, else `http://127.0.0.1:8000`). */
  baseUrl?: string;
  /** API key (default: `MEMSTRATA_API_KEY`); none for a `--no-auth` server. */
  apiKey?: string;
  /** One memstrata user for every conversation (a personal gateway); default: scope by the message sender. */
  userId?: string;
  /** The user when a turn has no sender and no `userId` is set (default `owner`). */
  defaultUserId?: string;
  orgId?: string;
  /** Keep each OpenClaw agent's memories apart (default true). */
  scopeByAgent?: boolean;
  /** Add relevant memories to the prompt before each turn (default true). */
  autoRecall?: boolean;
  /** Store the user's messages after each successful turn (default true). */
  autoCapture?: boolean;
  /** Also store the assistant's replies (default false: what the user says is what is worth keeping). */
  captureAssistant?: boolean;
  /** Token budget of the recalled context (default 600). */
  recallTokenBudget?: number;
  /** Most results one `memory_search` returns (default 10). */
  searchLimit?: number;
  /** Per-request timeout in milliseconds (default 10 000). */
  timeoutMs?: number;
}

export type ResolvedConfig = Required<Omit<MemstrataPluginConfig, "baseUrl" | "apiKey" | "userId" | "orgId">> &
  Pick<MemstrataPluginConfig, "baseUrl" | "apiKey" | "userId" | "orgId">;

const BOOLEANS = ["scopeByAgent", "autoRecall", "autoCapture", "captureAssistant"] as const;
const STRINGS = ["baseUrl", "apiKey", "userId", "defaultUserId", "orgId"] as const;
const INTEGERS = { recallTokenBudget: [50, 8000], searchLimit: [1, 50], timeoutMs: [100, 120_000] } as const;

/**
 * Checks and completes the raw config. OpenClaw validates it against the manifest's schema first; this check
 * repeats the rules so a plugin loaded by other means still fails with a message naming the field.
 */
export function resolveConfig(raw: Record<string, unknown> | undefined): ResolvedConfig {
  const input = raw ?? {};
  const known = new Set<string>([...BOOLEANS, ...STRINGS, ...Object.keys(INTEGERS)]);
  for (const key of Object.keys(input)) {
    if (!known.has(key)) throw new InvalidArgumentError(`config.${key}`, "unknown setting");
  }
  for (const key of BOOLEANS) {
    if (input[key] !== undefined && typeof input[key] !== "boolean") {
      throw new InvalidArgumentError(`config.${key}`, "must be true or false");
    }
  }
  for (const key of STRINGS) {
    const v = input[key];
    if (v !== undefined && (typeof v !== "string" || v.trim() === "")) {
      throw new InvalidArgumentError(`config.${key}`, "must be a non-empty string");
    }
  }
  for (const [key, [min, max]] of Object.entries(INTEGERS)) {
    const v = input[key];
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < min || (v as number) > max)) {
      throw new InvalidArgumentError(`config.${key}`, `must be a whole number from ${min} to ${max}`);
    }
  }
  const c = input as MemstrataPluginConfig;
  return {
    baseUrl: c.baseUrl,
    apiKey: c.apiKey,
    userId: c.userId,
    orgId: c.orgId,
    defaultUserId: c.defaultUserId ?? "owner",
    scopeByAgent: c.scopeByAgent ?? true,
    autoRecall: c.autoRecall ?? true,
    autoCapture: c.autoCapture ?? true,
    captureAssistant: c.captureAssistant ?? false,
    recallTokenBudget: c.recallTokenBudget ?? 600,
    searchLimit: c.searchLimit ?? 10,
    timeoutMs: c.timeoutMs ?? 10_000,
  };
}

/** Who a turn or tool call belongs to, as OpenClaw reports it. */
export interface TurnIdentity {
  agentId?: string;
  senderId?: string;
  channel?: string;
}

/**
 * The memstrata scope of a turn: the configured user, else the sender (qualified by its channel, so the same
 * number on two networks stays two people), else `defaultUserId`; plus the agent when `scopeByAgent`.
 */
export function scopeFor(config: ResolvedConfig, who: TurnIdentity): Scope {
  const sender = who.senderId?.trim();
  const userId = config.userId ?? (sender ? (who.channel ? `${who.channel}:${sender}` : sender) : config.defaultUserId);
  return {
    userId: userId.slice(0, 128),
    agentId: config.scopeByAgent && who.agentId ? who.agentId : undefined,
    orgId: config.orgId,
  };
}
