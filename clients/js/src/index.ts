export * from "./contract.gen.js";
export { ClientError, LOCAL_ERROR_CODES, isErrorCode } from "./errors.js";
export type { ClientErrorCode, ClientErrorDetails, LocalErrorCode } from "./errors.js";
export { CacheWarmingClient } from "./client.js";
export type {
  ClientEvents,
  ClientOptions,
  ConnectionState,
  Outgoing,
  ReplyFor,
  Resubscribed,
  StateChange,
  WebSocketLike,
} from "./client.js";
export { HttpApi } from "./http.js";
export type { HttpApiOptions, PageQuery, TokenSource } from "./http.js";
export { backoffDelay } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export { countdown, formatAgo, formatDuration } from "./countdown.js";
export type { CountdownView } from "./countdown.js";
export { fieldsById, readPanel } from "./fields.js";
export type { WarmingPanel } from "./fields.js";
