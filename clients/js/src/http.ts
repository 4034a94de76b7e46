import type {
  CancelReply,
  Conversation,
  ConversationDetail,
  ConversationList,
  CreateConversationBody,
  Health,
  HistoryPage,
  StartTurnReply,
  UserSavings,
} from "./contract.gen.js";
import { ClientError, isErrorCode } from "./errors.js";

/** A token, or a function that returns the current one (called for every request). */
export type TokenSource = string | (() => string | Promise<string>);

export interface HttpApiOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:25203` or `https://…/api`. */
  readonly baseUrl: string;
  readonly token: TokenSource;
  /** Defaults to the global `fetch`. */
  readonly fetch?: typeof fetch;
  /** Per request (default 15 s). */
  readonly timeoutMs?: number;
}

export async function resolveToken(token: TokenSource): Promise<string> {
  return typeof token === "function" ? await token() : token;
}

/** The contract's HTTP routes; every failure rejects with a `ClientError`. */
export class HttpApi {
  readonly baseUrl: string;
  private readonly token: TokenSource;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(options: HttpApiOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token;
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") throw new Error("no fetch: pass one in the options");
    // A bare reference to window.fetch must keep its `this`.
    this.fetchImpl = fetchImpl.bind(globalThis);
    this.timeoutMs = options.timeoutMs ?? 15_000;
  }

  health(): Promise<Health> {
    return this.call<Health>("GET", "/health", undefined, false);
  }

  createConversation(body: CreateConversationBody = {}): Promise<Conversation> {
    return this.call<Conversation>("POST", "/conversations", body);
  }

  /** The newest page (up to 50) of the caller's conversations; `listConversationsPage` pages on. */
  async listConversations(): Promise<readonly Conversation[]> {
    return (await this.call<ConversationList>("GET", "/conversations")).conversations;
  }

  /** One page, newest first: pass the previous page's `nextCursor` as `cursor` (null on the last). */
  listConversationsPage(page: PageQuery = {}): Promise<ConversationList> {
    return this.call<ConversationList>("GET", `/conversations${pageQuery(page)}`);
  }

  /** One page of the conversation's warms and ended turns, newest first (docs/contract.md, "History"). */
  history(conversationId: string, page: PageQuery = {}): Promise<HistoryPage> {
    return this.call<HistoryPage>("GET", `${conversationPath(conversationId)}/history${pageQuery(page)}`);
  }

  /** What warming spent and saved over all of the caller's conversations. */
  savings(): Promise<UserSavings> {
    return this.call<UserSavings>("GET", "/savings");
  }

  getConversation(conversationId: string): Promise<ConversationDetail> {
    return this.call<ConversationDetail>("GET", conversationPath(conversationId));
  }

  /** 202: the reply streams as `chat` frames to chat subscribers. */
  startTurn(conversationId: string, text: string): Promise<StartTurnReply> {
    return this.call<StartTurnReply>("POST", `${conversationPath(conversationId)}/turns`, { text });
  }

  /** Aborts the in-flight turn only. */
  cancelTurn(conversationId: string): Promise<CancelReply> {
    return this.call<CancelReply>("POST", `${conversationPath(conversationId)}/cancel`);
  }

  /** Warming off and the in-flight turn aborted; idempotent. */
  closeConversation(conversationId: string): Promise<Conversation> {
    return this.call<Conversation>("POST", `${conversationPath(conversationId)}/close`);
  }

  private async call<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = {};
    if (auth) headers["Authorization"] = `Bearer ${await resolveToken(this.token)}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        signal: controller.signal,
      });
      text = await response.text();
    } catch (error) {
      const timedOut = controller.signal.aborted;
      throw new ClientError(
        timedOut ? "timeout" : "network_error",
        timedOut
          ? `${method} ${path}: no answer within ${this.timeoutMs} ms`
          : `${method} ${path}: the API could not be reached (${describe(error)})`,
      );
    } finally {
      clearTimeout(timer);
    }
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const error = isRecord(data) && isRecord(data["error"]) ? data["error"] : {};
      const code = error["code"];
      const message = typeof error["message"] === "string" ? error["message"] : "";
      throw new ClientError(
        isErrorCode(code) ? code : "bad_response",
        message || `${method} ${path} failed with HTTP ${response.status}`,
        { status: response.status },
      );
    }
    if (data === null) {
      throw new ClientError("bad_response", `${method} ${path}: the body is not JSON`, {
        status: response.status,
      });
    }
    return data as T;
  }
}

/** `limit`: 1-100 (the server's default 50); `cursor`: a `nextCursor` the API returned. */
export interface PageQuery {
  readonly limit?: number;
  readonly cursor?: string | null;
}

function pageQuery(page: PageQuery): string {
  const params = new URLSearchParams();
  if (page.limit !== undefined) params.set("limit", String(page.limit));
  if (page.cursor) params.set("cursor", page.cursor);
  const query = params.toString();
  return query ? `?${query}` : "";
}

function conversationPath(conversationId: string): string {
  return `/conversations/${encodeURIComponent(conversationId)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
