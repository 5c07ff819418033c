/**
 * memstrata: a typed client for the memstrata REST API (long-term memory for AI agents).
 *
 * ```ts
 * import { MemoryClient } from "memstrata";
 * const memory = new MemoryClient({ apiKey: process.env.MEMSTRATA_API_KEY, scope: { userId: "alice" } });
 * await memory.add("I moved to Lisbon last month");
 * console.log((await memory.search("where do I live?")).results[0]?.memory);
 * ```
 *
 * @module
 */

export { MemoryClient, type ClientOptions } from "./client.js";
export { Pager, type CursorPage } from "./pagination.js";
export type { FetchLike, RequestOptions } from "./http.js";
export {
  APIError,
  AuthenticationError,
  BadRequestError,
  ConnectionError,
  InvalidArgumentError,
  MemstrataError,
  NotFoundError,
  NotSupportedError,
  PayloadTooLargeError,
  PermissionDeniedError,
  RateLimitError,
  RequestAbortedError,
  ServerError,
  TimeoutError,
  UnavailableError,
  UpstreamError,
  ValidationError,
  type FieldError,
  type Problem,
} from "./errors.js";
export type * from "./types.js";
export type { components, operations, paths } from "./generated/openapi.js";
