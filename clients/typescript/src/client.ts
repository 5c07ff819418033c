/** `MemoryClient`: the memstrata REST API as typed methods. */

import { InvalidArgumentError } from "./errors.js";
import { Transport, type FetchLike, type QueryValue, type RequestOptions } from "./http.js";
import { Pager } from "./pagination.js";
import type {
  AddOptions,
  AddResponse,
  CallOptions,
  ChangeResponse,
  Conflict,
  ConflictList,
  ConflictsOptions,
  ContextOptions,
  ContextResponse,
  DeleteAllResponse,
  DeletionReceipt,
  EntityList,
  EpisodeList,
  EpisodesOptions,
  HistoryItem,
  ListOptions,
  MemoryChanges,
  MemoryItem,
  MemoryPage,
  Message,
  Neighbourhood,
  PageOptions,
  Principal,
  ResolveOptions,
  Scope,
  SearchOptions,
  SearchResponse,
  TimeInput,
  UserExport,
  UserOptions,
} from "./types.js";

/** How a `MemoryClient` reaches the server. Every field is optional. */
export interface ClientOptions {
  /** Server URL (default: `MEMSTRATA_URL` or `http://127.0.0.1:8000`). */
  baseUrl?: string;
  /** API key, sent as `Authorization: Bearer` (default: `MEMSTRATA_API_KEY`; none for a `--no-auth` server). */
  apiKey?: string;
  /** Milliseconds per attempt before `TimeoutError` (default 60 000). */
  timeout?: number;
  /** Retries after a 429 (any call) or a 5xx / timeout / lost connection (calls safe to repeat). Default 2. */
  maxRetries?: number;
  /** Upper bound of one wait between retries, in milliseconds (default 8 000). */
  maxRetryDelay?: number;
  /** The scope used when a call names none (per-call ids override it id by id). */
  scope?: Scope;
  /** Headers added to every request. */
  headers?: Record<string, string>;
  /** A `fetch` implementation (default: the global one). */
  fetch?: FetchLike;
}

const SCOPE_KEYS = ["userId", "agentId", "runId", "orgId"] as const;
const REQUEST_KEYS = ["signal", "timeout", "maxRetries", "requestId", "headers"] as const;

/**
 * A client of a memstrata server.
 *
 * ```ts
 * const memory = new MemoryClient({ baseUrl: "http://127.0.0.1:8000", apiKey: process.env.MEMSTRATA_API_KEY });
 * await memory.add("I moved to Lisbon last month", { userId: "alice" });
 * const { results } = await memory.search("where do I live?", { userId: "alice" });
 * ```
 *
 * Results are the REST API's JSON as documented (snake_case); failures throw subclasses of `MemstrataError`.
 */
export class MemoryClient {
  /** The scope used when a call names none. */
  readonly scope: Readonly<Scope>;
  private readonly http: Transport;

  constructor(options: ClientOptions = {}) {
    const env = typeof process === "undefined" ? {} : process.env;
    const timeout = options.timeout ?? 60_000;
    const maxRetries = options.maxRetries ?? 2;
    if (!(timeout > 0)) throw new InvalidArgumentError("timeout", `must be a positive number of ms, got ${timeout}`);
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new InvalidArgumentError("maxRetries", `must be a whole number >= 0, got ${maxRetries}`);
    }
    const baseUrl = options.baseUrl ?? env.MEMSTRATA_URL ?? "http://127.0.0.1:8000";
    if (!URL.canParse(baseUrl)) throw new InvalidArgumentError("baseUrl", `is not a URL: ${JSON.stringify(baseUrl)}`);
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") {
      throw new InvalidArgumentError("fetch", "no global fetch in this runtime; pass one (Node 20+ has it)");
    }
    this.scope = Object.freeze({ ...options.scope });
    this.http = new Transport(
      {
        baseUrl,
        timeout,
        maxRetries,
        maxRetryDelay: options.maxRetryDelay ?? 8_000,
        headers: { ...options.headers },
        fetch: fetchImpl,
      },
      options.apiKey ?? env.MEMSTRATA_API_KEY,
    );
  }

  /** The server URL this client talks to. */
  get baseUrl(): string {
    return this.http.options.baseUrl;
  }

  /** Remember messages: stored verbatim as episodes, then what is worth keeping becomes memories. */
  add(messages: string | Message[], options: AddOptions = {}): Promise<AddResponse> {
    return this.post<AddResponse>("/v1/memories", false, options, {
      messages,
      conversation_id: options.conversationId,
      timestamp: time("timestamp", options.timestamp),
      metadata: options.metadata,
      infer: options.infer,
    });
  }

  /** Ranked memories for a query (semantic + keyword + graph + time); currently true facts unless asked. */
  search(query: string, options: SearchOptions = {}): Promise<SearchResponse> {
    return this.post<SearchResponse>("/v1/memories/search", true, options, {
      query,
      limit: options.limit,
      filters: options.filters,
      now: time("now", options.now),
      as_of: time("asOf", options.asOf),
      conversation_id: options.conversationId,
      preset: options.preset,
      explain: options.explain,
      include_superseded: options.includeSuperseded,
    });
  }

  /** Recent turns and the best memories for a query, as prompt-ready text within a token budget. */
  context(query: string, options: ContextOptions = {}): Promise<ContextResponse> {
    return this.post<ContextResponse>("/v1/memories/context", true, options, {
      query,
      conversation_id: options.conversationId,
      token_budget: options.tokenBudget,
      now: time("now", options.now),
      preset: options.preset,
      limit: options.limit,
      recent_turns: options.recentTurns,
    });
  }

  /** One memory of the scope by id (`NotFoundError` when it is not in this scope). */
  get(memoryId: string, options: CallOptions = {}): Promise<MemoryItem> {
    return this.send<MemoryItem>("GET", `/v1/memories/${segment("memoryId", memoryId)}`, options);
  }

  /**
   * Every memory of a scope, oldest first, as an async iterator that fetches `pageSize` at a time.
   * Use `.pages()` for the pages themselves and `.toArray()` to collect everything.
   */
  getAll(options: ListOptions = {}): Pager<MemoryItem> {
    const { pageSize, cursor, ...rest } = options;
    return new Pager((next) => this.listPage({ ...rest, limit: pageSize, cursor: next }), cursor);
  }

  /** One page of a scope's memories; pass its `next_cursor` back as `cursor` for the next. */
  listPage(options: PageOptions = {}): Promise<MemoryPage> {
    return this.send<MemoryPage>("GET", "/v1/memories", options, {
      limit: options.limit,
      cursor: options.cursor,
      include_superseded: options.includeSuperseded,
      conversation_id: options.conversationId,
    });
  }

  /** Change a memory's text and/or metadata; the old text stays in its history. */
  update(memoryId: string, changes: MemoryChanges, options: CallOptions = {}): Promise<ChangeResponse> {
    if (changes.text === undefined && changes.metadata === undefined) {
      throw new InvalidArgumentError("changes", "give text and/or metadata to change");
    }
    return this.send<ChangeResponse>("PATCH", `/v1/memories/${segment("memoryId", memoryId)}`, options, undefined, {
      text: changes.text,
      metadata: changes.metadata,
    });
  }

  /** Delete one memory; a DELETE event keeps its last text in history. */
  delete(memoryId: string, options: CallOptions = {}): Promise<ChangeResponse> {
    return this.send<ChangeResponse>("DELETE", `/v1/memories/${segment("memoryId", memoryId)}`, options);
  }

  /**
   * Delete every memory, episode, graph row and history event of one scope. The scope must name a user, an
   * agent or a run (the client's default scope counts); otherwise `InvalidArgumentError` and nothing is sent.
   */
  async deleteAll(options: CallOptions = {}): Promise<DeleteAllResponse> {
    const scope = this.scopeOf(options);
    if (scope.user_id === undefined && scope.agent_id === undefined && scope.run_id === undefined) {
      throw new InvalidArgumentError("scope", "name the scope to delete (userId, agentId or runId)");
    }
    return this.send<DeleteAllResponse>("DELETE", "/v1/memories", options);
  }

  /** Every event of a memory, oldest first (kept after deletion). */
  history(memoryId: string, options: CallOptions = {}): Promise<HistoryItem[]> {
    return this.send<HistoryItem[]>("GET", `/v1/memories/${segment("memoryId", memoryId)}/history`, options);
  }

  /** Conflicts raised when a new value for a subject's attribute met an old one (open ones by default). */
  conflicts(options: ConflictsOptions = {}): Promise<ConflictList> {
    return this.send<ConflictList>("GET", "/v1/conflicts", options, { status: options.status });
  }

  /** Close a conflict: keep the new value (default), the old one, or both. */
  resolveConflict(conflictId: string, options: ResolveOptions = {}): Promise<Conflict> {
    const path = `/v1/conflicts/${segment("conflictId", conflictId)}/resolve`;
    return this.post<Conflict>(path, true, options, { keep: options.keep });
  }

  /** Everything stored about a user, every tier and scope (GDPR access). Needs `read` on the user. */
  exportUser(userId: string, options: UserOptions = {}): Promise<UserExport> {
    const path = `/v1/users/${segment("userId", userId)}/export`;
    return this.http.request<UserExport>(
      { method: "GET", path, query: { org_id: options.orgId ?? this.scope.orgId }, idempotent: true },
      options,
    );
  }

  /** Erase a user from every tier (crypto-shredding when encrypted) and return the receipt. Needs `admin`. */
  forgetUser(userId: string, options: UserOptions = {}): Promise<DeletionReceipt> {
    const path = `/v1/users/${segment("userId", userId)}/forget`;
    return this.http.request<DeletionReceipt>(
      { method: "POST", path, query: { org_id: options.orgId ?? this.scope.orgId }, idempotent: true },
      options,
    );
  }

  /** Raw messages: full-text search with `query`, else a time range in time order. */
  episodes(options: EpisodesOptions = {}): Promise<EpisodeList> {
    return this.send<EpisodeList>("GET", "/v1/episodes", options, {
      query: options.query,
      conversation_id: options.conversationId,
      start: time("start", options.start),
      end: time("end", options.end),
      limit: options.limit,
    });
  }

  /** The scope's entity graph nodes, most mentioned first. */
  entities(options: CallOptions & { limit?: number } = {}): Promise<EntityList> {
    return this.send<EntityList>("GET", "/v1/entities", options, { limit: options.limit });
  }

  /** An entity (id, name or alias), what it connects to within `depth` hops, and the memories about it. */
  neighbourhood(entity: string, options: CallOptions & { depth?: number } = {}): Promise<Neighbourhood> {
    return this.send<Neighbourhood>("GET", "/v1/entities/neighbourhood", options, { entity, depth: options.depth });
  }

  /** Row counts of a scope. */
  stats(options: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.send<Record<string, unknown>>("GET", "/v1/stats", options);
  }

  /** What the presented key may do: org, scopes, bound users and agents. */
  me(options: RequestOptions = {}): Promise<Principal> {
    return this.http.request<Principal>({ method: "GET", path: "/v1/me", idempotent: true }, options);
  }

  /** Liveness: resolves `{ status: "ok" }` when the server process answers. */
  health(options: RequestOptions = {}): Promise<{ status: string }> {
    return this.http.request<{ status: string }>({ method: "GET", path: "/health", idempotent: true }, options);
  }

  private scopeOf(options: Scope): Record<string, string | undefined> {
    const ids: Record<string, string | undefined> = {};
    for (const key of SCOPE_KEYS) {
      const value = options[key] ?? this.scope[key];
      if (value !== undefined && typeof value !== "string") {
        throw new InvalidArgumentError(key, `must be a string, got ${typeof value}`);
      }
      ids[snake(key)] = value;
    }
    return ids;
  }

  private post<T>(path: string, idempotent: boolean, options: CallOptions, body: Record<string, unknown>): Promise<T> {
    return this.http.request<T>(
      { method: "POST", path, body: compact({ ...body, ...this.scopeOf(options) }), idempotent },
      requestOptions(options),
    );
  }

  private send<T>(
    method: "GET" | "PATCH" | "DELETE",
    path: string,
    options: CallOptions,
    query: Record<string, QueryValue> = {},
    body?: Record<string, unknown>,
  ): Promise<T> {
    return this.http.request<T>(
      {
        method,
        path,
        query: { ...query, ...this.scopeOf(options) },
        body: body === undefined ? undefined : compact(body),
        idempotent: true,
      },
      requestOptions(options),
    );
  }
}

function requestOptions(options: RequestOptions): RequestOptions {
  const out: Record<string, unknown> = {};
  for (const key of REQUEST_KEYS) if (options[key] !== undefined) out[key] = options[key];
  return out as RequestOptions;
}

function compact(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function segment(name: string, value: string): string {
  if (typeof value !== "string" || value === "") throw new InvalidArgumentError(name, "must be a non-empty string");
  return encodeURIComponent(value);
}

function time(field: string, value: TimeInput | undefined): string | number | undefined {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new InvalidArgumentError(field, "is an invalid Date");
    return value.toISOString();
  }
  return value;
}
