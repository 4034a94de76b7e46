import { ERROR_CODES, ERROR_HTTP_STATUS, type ErrorCode } from "./contract.gen.js";

/** Failures that happen on the client's side of the wire rather than in the server. */
export const LOCAL_ERROR_CODES = [
  "timeout",
  "disconnected",
  "closed",
  "network_error",
  "bad_response",
] as const;
export type LocalErrorCode = (typeof LOCAL_ERROR_CODES)[number];
export type ClientErrorCode = ErrorCode | LocalErrorCode;

export interface ClientErrorDetails {
  readonly status?: number | null;
  readonly conversationId?: string | null;
  readonly requestId?: string | null;
}

/**
 * Every rejection of the client: a server error (`code` is one of the contract's error codes,
 * `status` its HTTP status) or a local one (`timeout`, `disconnected`, `closed`,
 * `network_error`, `bad_response`; `status` null unless an HTTP response had one).
 */
export class ClientError extends Error {
  readonly code: ClientErrorCode;
  readonly status: number | null;
  readonly conversationId: string | null;
  readonly requestId: string | null;

  constructor(code: ClientErrorCode, message: string, details: ClientErrorDetails = {}) {
    super(message);
    this.name = "ClientError";
    this.code = code;
    this.status =
      details.status ?? (isErrorCode(code) ? ERROR_HTTP_STATUS[code] : null);
    this.conversationId = details.conversationId ?? null;
    this.requestId = details.requestId ?? null;
  }

  /** True for a server-side error code of the contract (as opposed to a local failure). */
  get fromServer(): boolean {
    return isErrorCode(this.code);
  }
}

const KNOWN = new Set<string>(ERROR_CODES);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && KNOWN.has(value);
}
