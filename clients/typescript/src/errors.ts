/**
 * Every error the client throws, in one tree:
 *
 * ```text
 * MemstrataError                   anything this package throws
 * ├── InvalidArgumentError         the call was refused before any request (e.g. deleteAll with no scope)
 * ├── ConnectionError              no HTTP response: refused, reset, DNS failure
 * ├── TimeoutError                 an attempt took longer than `timeout`
 * ├── RequestAbortedError          the caller's AbortSignal fired
 * └── APIError                     the server answered with a problem document (RFC 9457)
 *     ├── BadRequestError          400  body not JSON / not UTF-8 / Host not served
 *     ├── AuthenticationError      401  no key, unknown key, revoked key
 *     ├── PermissionDeniedError    403  the key lacks the scope or the binding
 *     ├── NotFoundError            404  no such memory, conflict or entity in this scope
 *     ├── PayloadTooLargeError     413  body over the server's limit
 *     ├── ValidationError          422  a field is missing, of the wrong type, or invalid
 *     ├── RateLimitError           429  `retryAfter` says when to come back
 *     └── ServerError              5xx
 *         ├── NotSupportedError    501  the server build lacks the feature (export, erasure, audit)
 *         ├── UpstreamError        502 / 504  an LLM or embedding provider failed or timed out
 *         └── UnavailableError     503  the store is unreachable
 * ```
 *
 * @module
 */

/** One entry of a 422 problem's `errors` list. */
export interface FieldError {
  field: string;
  message: string;
}

/** An RFC 9457 problem document as the memstrata server writes it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  field?: string | null;
  request_id?: string | null;
  errors?: FieldError[];
  [key: string]: unknown;
}

/** The root of every error this package throws. */
export class MemstrataError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The arguments were refused before any request was sent. */
export class InvalidArgumentError extends MemstrataError {
  /** The option or argument at fault. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** The request never got an HTTP response (connection refused or reset, DNS failure, TLS error). */
export class ConnectionError extends MemstrataError {}

/** One attempt took longer than the client's `timeout` (after any retries). */
export class TimeoutError extends MemstrataError {
  /** The per-attempt limit that was exceeded, in milliseconds. */
  readonly timeout: number;

  constructor(timeout: number, url: string) {
    super(`request to ${url} timed out after ${timeout} ms`);
    this.timeout = timeout;
  }
}

/** The caller's `AbortSignal` fired; `cause` holds the signal's reason. */
export class RequestAbortedError extends MemstrataError {}

/** The server answered with an error status; the fields come from its problem document. */
export class APIError extends MemstrataError {
  /** HTTP status code. */
  readonly status: number;
  /** Problem type URI, e.g. `urn:memstrata:problem:invalid-input`. */
  readonly type: string;
  /** Short human title of the status. */
  readonly title: string;
  /** What went wrong; names the field when one is at fault. */
  readonly detail: string;
  /** The request field at fault, when the server named one. */
  readonly field: string | undefined;
  /** Every invalid field (422 only). */
  readonly errors: FieldError[];
  /** The server's request id (also in its log): quote it when reporting a problem. */
  readonly requestId: string | undefined;
  /** Response headers. */
  readonly headers: Headers;
  /** The problem document as received (or synthesised when the body was not one). */
  readonly problem: Problem;

  constructor(problem: Problem, headers: Headers) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
    this.status = problem.status;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    this.field = problem.field ?? undefined;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.requestId = problem.request_id ?? headers.get("x-request-id") ?? undefined;
    this.headers = headers;
    this.problem = problem;
  }
}

/** 400: the body is not JSON or not UTF-8, or the server does not serve this Host. */
export class BadRequestError extends APIError {}
/** 401: no API key, an unknown key, or a revoked key. */
export class AuthenticationError extends APIError {}
/** 403: the key lacks the scope (read, write, admin) or the user/agent/org is outside its binding. */
export class PermissionDeniedError extends APIError {}
/** 404: no such memory, conflict or entity in this scope. */
export class NotFoundError extends APIError {}
/** 413: the body is larger than the server's `--max-body-bytes`. */
export class PayloadTooLargeError extends APIError {}
/** 422: a field is missing, of the wrong type, or invalid; `field` and `errors` name them. */
export class ValidationError extends APIError {}

/** 429: the key's rate limit. */
export class RateLimitError extends APIError {
  /** Seconds the server asked the client to wait (`Retry-After`), when it said. */
  readonly retryAfter: number | undefined;

  constructor(problem: Problem, headers: Headers) {
    super(problem, headers);
    this.retryAfter = parseRetryAfter(headers.get("retry-after"));
  }
}

/** 5xx: the server or something behind it failed. */
export class ServerError extends APIError {}
/** 501: this server build lacks the feature (user export, erasure, audit). */
export class NotSupportedError extends ServerError {}
/** 502 or 504: an LLM or embedding provider failed or timed out. */
export class UpstreamError extends ServerError {}
/** 503: the store is unreachable (or the server is not ready). */
export class UnavailableError extends ServerError {}

const BY_STATUS: Record<number, new (problem: Problem, headers: Headers) => APIError> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  413: PayloadTooLargeError,
  422: ValidationError,
  429: RateLimitError,
  501: NotSupportedError,
  502: UpstreamError,
  503: UnavailableError,
  504: UpstreamError,
};

/** The most specific error class for a status and problem document. */
export function errorFromProblem(problem: Problem, headers: Headers): APIError {
  const cls = BY_STATUS[problem.status] ?? (problem.status >= 500 ? ServerError : APIError);
  return new cls(problem, headers);
}

/** Seconds from a `Retry-After` header (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}
