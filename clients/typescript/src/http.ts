/**
 * The HTTP layer: one `request()` that adds auth headers, encodes the query, applies a per-attempt timeout,
 * honours the caller's AbortSignal, retries with backoff, and turns problem documents into typed errors.
 */

import {
  ConnectionError,
  MemstrataError,
  RateLimitError,
  RequestAbortedError,
  TimeoutError,
  errorFromProblem,
  type APIError,
  type Problem,
} from "./errors.js";

/** A `fetch`-compatible function (the global one by default). */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Settings shared by every request of a client. */
export interface TransportOptions {
  baseUrl: string;
  timeout: number;
  maxRetries: number;
  maxRetryDelay: number;
  headers: Record<string, string>;
  fetch: FetchLike;
}

/** Per-call overrides accepted by every client method. */
export interface RequestOptions {
  /** Abort the call (and any retry wait); the call rejects with `RequestAbortedError`. */
  signal?: AbortSignal;
  /** Milliseconds per attempt; overrides the client's `timeout`. */
  timeout?: number;
  /** Retries after the first attempt; overrides the client's `maxRetries`. */
  maxRetries?: number;
  /** Sent as `X-Request-ID` so the server log and the error name this call. */
  requestId?: string;
  /** Extra headers for this call. */
  headers?: Record<string, string>;
}

export type QueryValue = string | number | boolean | null | undefined;

export interface Call {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, QueryValue>;
  body?: unknown;
  /**
   * Whether repeating the call after a 5xx, a timeout or a lost connection is harmless. A 429 is always
   * retried: the server refused the request before doing anything.
   */
  idempotent: boolean;
}

const RETRY_STATUSES = new Set([500, 502, 503, 504]);
const BASE_DELAY_MS = 500;

export class Transport {
  readonly options: TransportOptions;
  // An ES private field: never shown by console.log / util.inspect, never serialised.
  readonly #apiKey: string | undefined;

  constructor(options: TransportOptions, apiKey: string | undefined) {
    this.options = options;
    this.#apiKey = apiKey;
  }

  /** Send one call (with retries) and return the parsed JSON body. */
  async request<T>(call: Call, opts: RequestOptions = {}): Promise<T> {
    const maxRetries = opts.maxRetries ?? this.options.maxRetries;
    const url = this.url(call.path, call.query);
    for (let attempt = 0; ; attempt++) {
      let error: MemstrataError;
      try {
        return (await this.attempt(call, url, opts)) as T;
      } catch (caught) {
        if (!(caught instanceof MemstrataError)) throw caught;
        error = caught;
      }
      const wait = this.retryDelay(error, call, attempt, maxRetries);
      if (wait === undefined) throw error;
      await sleep(wait, opts.signal);
    }
  }

  /** The full URL of a path and query (undefined and null values are left out). */
  url(path: string, query?: Record<string, QueryValue>): string {
    const url = new URL(this.options.baseUrl.replace(/\/+$/, "") + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  private async attempt(call: Call, url: string, opts: RequestOptions): Promise<unknown> {
    const timeout = opts.timeout ?? this.options.timeout;
    const timer = AbortSignal.timeout(timeout);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timer]) : timer;
    const headers: Record<string, string> = { Accept: "application/json", ...this.options.headers };
    if (this.#apiKey) headers.Authorization = `Bearer ${this.#apiKey}`;
    if (call.body !== undefined) headers["Content-Type"] = "application/json";
    if (opts.requestId) headers["X-Request-ID"] = opts.requestId;
    Object.assign(headers, opts.headers);
    let response: Response;
    let text: string;
    try {
      response = await this.options.fetch(url, {
        method: call.method,
        headers,
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
        signal,
      });
      text = await response.text();
    } catch (caught) {
      if (opts.signal?.aborted) {
        throw new RequestAbortedError(`request to ${url} was aborted`, { cause: opts.signal.reason });
      }
      if (timer.aborted) throw new TimeoutError(timeout, url);
      throw new ConnectionError(`could not reach ${url}: ${describe(caught)}`, { cause: caught });
    }
    if (!response.ok) throw problemError(response, text);
    if (text === "") return undefined;
    try {
      return JSON.parse(text);
    } catch (caught) {
      throw new ConnectionError(`${url} answered ${response.status} with a body that is not JSON`, {
        cause: caught,
      });
    }
  }

  private retryDelay(error: MemstrataError, call: Call, attempt: number, maxRetries: number): number | undefined {
    if (attempt >= maxRetries) return undefined;
    const backoff = Math.min(this.options.maxRetryDelay, BASE_DELAY_MS * 2 ** attempt) * (0.75 + Math.random() / 2);
    if (error instanceof RateLimitError) {
      const asked = error.retryAfter === undefined ? backoff : error.retryAfter * 1000;
      return Math.min(this.options.maxRetryDelay, asked);
    }
    if (!call.idempotent) return undefined;
    const status = (error as Partial<APIError>).status;
    const retryable =
      error instanceof ConnectionError || error instanceof TimeoutError || (status !== undefined && RETRY_STATUSES.has(status));
    return retryable ? backoff : undefined;
  }
}

function problemError(response: Response, text: string): APIError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const problem: Problem =
    isProblem(body) && body.status === response.status
      ? body
      : {
          type: "about:blank",
          title: response.statusText || `HTTP ${response.status}`,
          status: response.status,
          detail: text.slice(0, 500) || `the server answered ${response.status} with no body`,
        };
  return errorFromProblem(problem, response.headers);
}

function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.status === "number" && typeof v.detail === "string" && typeof v.title === "string";
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const code = typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined;
    return typeof code === "string" ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new RequestAbortedError("aborted while waiting to retry", { cause: signal.reason }));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new RequestAbortedError("aborted while waiting to retry", { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
