/**
 * Public types. Response shapes are the REST API's JSON as documented in `docs/openapi.json` (snake_case, as
 * the server writes them), generated into `./generated/openapi.ts` by `npm run generate`. Options are camelCase.
 */

import type { components } from "./generated/openapi.js";
import type { RequestOptions } from "./http.js";

type Schemas = components["schemas"];

/** A long-term memory: text, validity, confidence, provenance, entities; `score` on search results. */
export type MemoryItem = Schemas["MemoryItem"];
/** One change made by `add` (`event` is ADD, UPDATE, MERGE, SUPERSEDE or NONE). */
export type AddEvent = Schemas["AddEvent"];
/** What `add` did: the memory events and the ids of the stored episodes (raw messages). */
export type AddResponse = Schemas["AddResponse"];
/** Ranked memories for a query. */
export type SearchResponse = Schemas["SearchResponse"];
/** One page of `GET /v1/memories`; `next_cursor` is null on the last page. */
export type MemoryPage = Schemas["MemoryPage"];
/** Prompt-ready context: `text` to put in a prompt, the `items` it holds, and its token count. */
export type ContextResponse = Schemas["ContextResponse"];
export type ContextItem = Schemas["ContextItem"];
/** The result of `update` or `delete`. */
export type ChangeResponse = Schemas["ChangeResponse"];
/** Rows deleted per table by `deleteAll`. */
export type DeleteAllResponse = Schemas["DeleteAllResponse"];
/** One event (ADD, UPDATE, MERGE, SUPERSEDE, DELETE) in a memory's history. */
export type HistoryItem = Schemas["HistoryItem"];
/** A new value for a subject's attribute that met an old one. */
export type Conflict = Schemas["Conflict"];
export type ConflictList = Schemas["ConflictList"];
/** A raw message as it arrived. */
export type Episode = Schemas["Episode"];
export type EpisodeList = Schemas["EpisodeList"];
/** A node of the entity graph. */
export type Entity = Schemas["Entity"];
export type EntityList = Schemas["EntityList"];
/** An entity, its neighbours within `depth` hops, and the ids of the memories about it. */
export type Neighbourhood = Schemas["Neighbourhood"];
/** What the calling key may do. */
export type Principal = Schemas["PrincipalOut"] & { auth?: boolean };
/** A chat message for `add`. */
export type Message = Schemas["MessageIn"];
/** Retrieval preset: `fast`, `balanced` (default) or `thorough`. */
export type Preset = NonNullable<Schemas["SearchRequest"]["preset"]>;
/** A moment: an ISO 8601 string, epoch seconds, or a `Date`. */
export type TimeInput = string | number | Date;

/** Everything stored about a user (GDPR access), as written by `GET /v1/users/{user_id}/export`. */
export interface UserExport {
  format: string;
  version: number;
  exported_at: string;
  org_id: string;
  user_id: string;
  /** One block per scope of the user: episodes, memories, history, entities, edges, conflicts, ... */
  scopes: Array<Record<string, unknown>>;
  /** Audit entries about the user: who read or changed their data, and when. */
  access_log: Array<Record<string, unknown>>;
  [key: string]: unknown;
}

/** The deletion receipt of `forgetUser` (what was erased, and the destroyed key's fingerprint when encrypted). */
export type DeletionReceipt = Record<string, unknown>;

/**
 * The scope a call reads or writes. A key bound to exactly one user fills `userId` in when it is left out;
 * any id outside the key's binding is refused (403).
 */
export interface Scope {
  userId?: string;
  agentId?: string;
  runId?: string;
  /** Organisation; defaults to the key's org. */
  orgId?: string;
}

/** Scope plus per-call request options: what most methods accept. */
export type CallOptions = Scope & RequestOptions;

export interface AddOptions extends CallOptions {
  /** Groups messages into a conversation (short-term context, `conversationId` filters). */
  conversationId?: string;
  /** When the messages were said (default: now). */
  timestamp?: TimeInput;
  /** Stored with every memory extracted from these messages. */
  metadata?: Record<string, unknown>;
  /** `true` (default) extracts facts; `false` stores the text verbatim as one memory. */
  infer?: boolean;
}

export interface SearchOptions extends CallOptions {
  /** At most this many results (1-1000, default 10). */
  limit?: number;
  /** Metadata/column filters, e.g. `{ kind: "plan" }`. */
  filters?: Record<string, unknown>;
  /** Reference time for expressions such as "last week". */
  now?: TimeInput;
  /** What was believed at this moment. */
  asOf?: TimeInput;
  conversationId?: string;
  preset?: Preset;
  /** Include each retrieval stage's score in the results. */
  explain?: boolean;
  /** Include facts that a newer value superseded. */
  includeSuperseded?: boolean;
}

export interface ContextOptions extends CallOptions {
  conversationId?: string;
  /** Token budget of the returned text (default 2000). */
  tokenBudget?: number;
  now?: TimeInput;
  preset?: Preset;
  /** Candidate memories considered before trimming (default 50). */
  limit?: number;
  /** Recent turns of the conversation to include (default 6). */
  recentTurns?: number;
}

export interface ListOptions extends CallOptions {
  /** Memories per request (1-1000, default 100). */
  pageSize?: number;
  /** Start after this cursor (a `next_cursor` of an earlier page). */
  cursor?: string;
  includeSuperseded?: boolean;
  conversationId?: string;
}

export interface PageOptions extends CallOptions {
  /** Page size (1-1000, default 100). */
  limit?: number;
  cursor?: string;
  includeSuperseded?: boolean;
  conversationId?: string;
}

export interface MemoryChanges {
  /** New text; the old one stays in the memory's history. */
  text?: string;
  /** New metadata (replaces the old metadata). */
  metadata?: Record<string, unknown>;
}

export interface ConflictsOptions extends CallOptions {
  /** `open` (default), `resolved` or `all`. */
  status?: "open" | "resolved" | "all";
}

export interface ResolveOptions extends CallOptions {
  /** Keep the `new` value (default), the `old` one, or `both`. */
  keep?: "new" | "old" | "both";
}

export interface EpisodesOptions extends CallOptions {
  /** Full-text search; omit for a time range in time order. */
  query?: string;
  conversationId?: string;
  start?: TimeInput;
  end?: TimeInput;
  limit?: number;
}

export interface UserOptions extends RequestOptions {
  orgId?: string;
}
