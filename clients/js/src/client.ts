import {
  LIMITS,
  SERVER_FRAME_TYPES,
  SET_INTERVAL_ACTION,
  SURFACE_ID,
  TOGGLE_ACTION,
  type AckFrame,
  type ChatFrame,
  type ClientFrame,
  type ErrorFrame,
  type PongFrame,
  type ReplyTo,
  type ServerFrame,
  type SurfaceFrame,
  type UpdateFrame,
} from "./contract.gen.js";
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { ClientError } from "./errors.js";
import { resolveToken, type TokenSource } from "./http.js";

/** What the client needs of a WebSocket: the browser's, or `ws`'s in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "message", listener: (event: { readonly data: unknown }) => void): void;
  addEventListener(
    type: "close",
    listener: (event: { readonly code: number; readonly reason: string }) => void,
  ): void;
  addEventListener(type: "error", listener: () => void): void;
}

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface StateChange {
  readonly state: ConnectionState;
  /** Failed connection attempts since the last good connection. */
  readonly attempt: number;
  /** While `reconnecting`: the wait before the next attempt. */
  readonly retryInMs: number | null;
  /** The close that caused a reconnect (the gateway's code, or 4000 for a missed pong). */
  readonly closeCode: number | null;
  readonly closeReason: string | null;
}

/** After a reconnect, once every remembered subscription has been sent again and answered. */
export interface Resubscribed {
  readonly surfaces: readonly string[];
  readonly chats: readonly string[];
  /** Subscriptions the server refused (a `not_found` one is forgotten). */
  readonly failed: readonly { readonly conversationId: string; readonly error: ClientError }[];
}

export interface ClientEvents {
  /** Every `surface` frame: replies to subscribe, re-subscriptions after a reconnect included. */
  readonly surface: SurfaceFrame;
  /** Every `update` frame: replies to invoke and broadcasts. */
  readonly update: UpdateFrame;
  readonly chat: ChatFrame;
  /** An `error` frame that answers no pending request (e.g. one without a requestId). */
  readonly error: ErrorFrame;
  readonly state: StateChange;
  readonly resubscribed: Resubscribed;
  /** A frame that is not in the contract (e.g. API Gateway's "Internal server error"). */
  readonly unknown: unknown;
}

export interface ClientOptions {
  /** `wss://…/stage` (local stack: `ws://127.0.0.1:25205`); the token is added as `?token=`. */
  readonly url: string;
  /** Read again before every connection attempt, so a refreshed token is picked up. */
  readonly token: TokenSource;
  /** Defaults to `new WebSocket(url)` (the browser's, or Node 22's global). */
  readonly createSocket?: (url: string) => WebSocketLike;
  /** How long a request waits for its reply, queueing while disconnected included (10 s). */
  readonly requestTimeoutMs?: number;
  /**
   * Send a `ping` after this long without sending anything (default 5 min). API Gateway closes
   * a socket whose client sent nothing for 10 minutes; a missed pong also counts as a drop.
   */
  readonly pingIntervalMs?: number;
  /**
   * Move to a fresh socket (subscribed before the old one is closed) after this long; default
   * 1 h 55 min, before API Gateway's hard 2-hour limit. 0 turns it off.
   */
  readonly maxConnectionMs?: number;
  readonly backoff?: BackoffOptions;
  /** Client-side pacing (default 10/s, half the server's per-connection limit). */
  readonly maxFramesPerSecond?: number;
  /** For tests: the jitter source. */
  readonly random?: () => number;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A request's payload: a client frame without its requestId (the client assigns one). */
export type Outgoing = DistributiveOmit<ClientFrame, "requestId">;

/** The reply to an outgoing frame of that `type`. */
export type ReplyFor<F extends Outgoing> = ReplyTo<Extract<ClientFrame, { readonly type: F["type"] }>>;

type Listener<T> = (payload: T) => void;

interface Conn {
  readonly ws: WebSocketLike;
  readonly serial: number;
  opened: boolean;
  dead: boolean;
  /** Its pushes reach listeners: false for a rotation candidate until the switch, and after. */
  live: boolean;
  readonly queue: Queued[];
  readonly sentAt: number[];
  readonly inFlight: Set<string>;
  pumpTimer: ReturnType<typeof setTimeout> | null;
  retireTimer: ReturnType<typeof setTimeout> | null;
}

interface Queued {
  readonly requestId: string;
  readonly text: string;
  /** A re-subscription: redone by the next socket's own restore, so never carried over. */
  readonly internal: boolean;
}

interface Waiter {
  readonly resolve: (frame: ServerFrame) => void;
  readonly reject: (error: ClientError) => void;
}

interface Pending {
  readonly resolve: (frame: ServerFrame) => void;
  readonly reject: (error: ClientError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  conn: Conn | null;
}

const OPEN = 1;
const NO_PONG_CODE = 4000;
const encoder = new TextEncoder();

/**
 * The cache-warming backend's WebSocket, kept open: requests matched to replies by requestId
 * with timeouts, subscriptions remembered and restored after every reconnect (exponential
 * backoff with jitter), keep-alive pings, and a make-before-break move to a fresh socket before
 * API Gateway's 2-hour limit.
 */
export class CacheWarmingClient {
  private readonly options: ClientOptions;
  private readonly requestTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private readonly maxConnectionMs: number;
  private readonly maxFramesPerSecond: number;
  private readonly random: () => number;
  private readonly idPrefix: string;
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener<never>>>();
  private readonly pending = new Map<string, Pending>();
  /** Requests made while no socket is open, sent (in order) once one is. */
  private outbox: Queued[] = [];
  private readonly surfaceSubs = new Set<string>();
  private readonly chatSubs = new Set<string>();
  /** Subscriptions being restored on a new socket: what a subscribe call meanwhile waits for. */
  private readonly restoring = new Map<string, Promise<ServerFrame>>();
  /** Subscribe calls made while disconnected: answered by the next socket's restore. */
  private readonly awaiting = new Map<string, Set<Waiter>>();

  private current: Conn | null = null;
  private candidate: Conn | null = null;
  private serial = 0;
  private counter = 0;
  private attempt = 0;
  private everOpened = false;
  private stateValue: ConnectionState = "idle";
  private lastSentAt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private keepAliveTimer: ReturnType<typeof setTimeout> | null = null;
  private rotateTimer: ReturnType<typeof setTimeout> | null = null;
  private openWaiters: Array<{ resolve: () => void; reject: (error: ClientError) => void }> = [];

  constructor(options: ClientOptions) {
    this.options = options;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.pingIntervalMs = options.pingIntervalMs ?? 5 * 60_000;
    this.maxConnectionMs = options.maxConnectionMs ?? (2 * 60 - 5) * 60_000;
    this.maxFramesPerSecond = options.maxFramesPerSecond ?? 10;
    this.random = options.random ?? Math.random;
    this.idPrefix = `c${Math.floor(this.random() * 36 ** 6).toString(36)}`;
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Conversations whose surface / chat this client is subscribed to (restored on reconnect). */
  get subscriptions(): { readonly surfaces: readonly string[]; readonly chats: readonly string[] } {
    return { surfaces: [...this.surfaceSubs], chats: [...this.chatSubs] };
  }

  on<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Opens the socket; resolves once it is open (it keeps retrying with backoff until then). */
  connect(): Promise<void> {
    if (this.stateValue === "closed") {
      return Promise.reject(new ClientError("closed", "the client was closed"));
    }
    const opened = new Promise<void>((resolve, reject) => {
      if (this.current?.opened && !this.current.dead) resolve();
      else this.openWaiters.push({ resolve, reject });
    });
    if (this.stateValue === "idle") {
      this.setState("connecting", null, null, null);
      void this.open(false);
    }
    return opened;
  }

  /** Closes the socket for good: pending requests reject with `closed`. */
  close(): void {
    if (this.stateValue === "closed") return;
    this.clearTimers();
    const error = new ClientError("closed", "the client was closed");
    for (const conn of [this.current, this.candidate]) {
      if (conn) {
        conn.dead = true;
        safeClose(conn.ws, 1000, "client closed");
      }
    }
    this.current = null;
    this.candidate = null;
    for (const [requestId, entry] of this.pending) {
      clearTimeout(entry.timer);
      this.pending.delete(requestId);
      entry.reject(error);
    }
    this.outbox = [];
    for (const waiter of this.openWaiters) waiter.reject(error);
    this.openWaiters = [];
    this.setState("closed", null, null, null);
  }

  /**
   * Sends one frame and resolves with its reply (matched by a fresh requestId), or rejects with a
   * `ClientError`: the server's error code, `timeout`, `disconnected` (the socket dropped after
   * the frame was sent: it may or may not have taken effect) or `closed`. While disconnected the
   * frame waits (within the timeout) and is sent once the socket is back.
   */
  request<F extends Outgoing>(frame: F, options: { timeoutMs?: number } = {}): Promise<ReplyFor<F>> {
    return this.send(frame, options.timeoutMs) as Promise<ReplyFor<F>>;
  }

  ping(): Promise<PongFrame> {
    return this.request({ type: "ping" });
  }

  /** Subscribes to the conversation's surface and chat; resolves with the surface. */
  async watch(conversationId: string): Promise<SurfaceFrame> {
    const chat = this.subscribeChat(conversationId);
    const surface = this.subscribeSurface(conversationId);
    await chat;
    return await surface;
  }

  async unwatch(conversationId: string): Promise<void> {
    await Promise.all([this.unsubscribeSurface(conversationId), this.unsubscribeChat(conversationId)]);
  }

  /** Resolves with the `surface` frame; remembered and restored after every reconnect. */
  subscribeSurface(conversationId: string): Promise<SurfaceFrame> {
    return this.subscribe("surface", conversationId) as Promise<SurfaceFrame>;
  }

  /** Resolves with the `ack`; remembered and restored after every reconnect. */
  subscribeChat(conversationId: string): Promise<AckFrame> {
    return this.subscribe("chat", conversationId) as Promise<AckFrame>;
  }

  /** Forgets the subscription; asks the server too when connected (never touches warming). */
  unsubscribeSurface(conversationId: string): Promise<void> {
    this.surfaceSubs.delete(conversationId);
    return this.unsubscribe({ type: "unsubscribe", surfaceId: SURFACE_ID, conversationId });
  }

  /** Forgets the subscription; asks the server too when connected (never stops a turn). */
  unsubscribeChat(conversationId: string): Promise<void> {
    this.chatSubs.delete(conversationId);
    return this.unsubscribe({ type: "chat.unsubscribe", conversationId });
  }

  /** `true`/`false` set warming; `null` (or nothing) flips it. */
  toggle(conversationId: string, enabled: boolean | null = null): Promise<UpdateFrame> {
    return this.request({
      type: "invoke",
      surfaceId: SURFACE_ID,
      conversationId,
      action: TOGGLE_ACTION,
      payload: enabled,
    });
  }

  setInterval(conversationId: string, seconds: number): Promise<UpdateFrame> {
    return this.request({
      type: "invoke",
      surfaceId: SURFACE_ID,
      conversationId,
      action: SET_INTERVAL_ACTION,
      payload: seconds,
    });
  }

  /** Closes the conversation: warming off and any reply in progress aborted. */
  closeConversation(conversationId: string): Promise<AckFrame> {
    return this.request({ type: "close", conversationId });
  }

  // --- subscriptions ---------------------------------------------------------------------------

  private subscribe(kind: "surface" | "chat", conversationId: string): Promise<ServerFrame> {
    const subs = kind === "surface" ? this.surfaceSubs : this.chatSubs;
    subs.add(conversationId);
    const key = `${kind}:${conversationId}`;
    const restoring = this.restoring.get(key);
    if (restoring) return restoring;
    if (!this.isOpen()) return this.awaitRestore(key);
    const reply = this.send(subscribeFrame(kind, conversationId));
    reply.catch((error: unknown) => {
      if (error instanceof ClientError && error.code === "not_found") subs.delete(conversationId);
    });
    return reply;
  }

  private async unsubscribe(frame: Outgoing): Promise<void> {
    if (!this.isOpen()) return; // a new socket never had it
    try {
      await this.send(frame);
    } catch (error) {
      // The socket dropped meanwhile: that took the subscription with it.
      if (!(error instanceof ClientError) || error.code !== "disconnected") throw error;
    }
  }

  /** Resolves with the reply to the key's subscription on the next socket (within the timeout). */
  private awaitRestore(key: string): Promise<ServerFrame> {
    return new Promise<ServerFrame>((resolve, reject) => {
      let waiters = this.awaiting.get(key);
      if (!waiters) {
        waiters = new Set();
        this.awaiting.set(key, waiters);
      }
      const set = waiters;
      const timer = setTimeout(() => {
        set.delete(waiter);
        reject(new ClientError("timeout", `not reconnected within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      const waiter: Waiter = {
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      set.add(waiter);
    });
  }

  private settleAwaiting(key: string, outcome: { frame: ServerFrame } | { error: ClientError }): void {
    const waiters = this.awaiting.get(key);
    if (!waiters) return;
    this.awaiting.delete(key);
    for (const waiter of waiters) {
      if ("frame" in outcome) waiter.resolve(outcome.frame);
      else waiter.reject(outcome.error);
    }
  }

  /** Sends every remembered subscription on `conn` and waits for the replies. */
  private async restore(conn: Conn): Promise<Resubscribed> {
    const surfaces = [...this.surfaceSubs];
    const chats = [...this.chatSubs];
    const jobs: Array<{ key: string; kind: "surface" | "chat"; id: string; reply: Promise<ServerFrame> }> = [];
    for (const [kind, ids] of [["chat", chats], ["surface", surfaces]] as const) {
      for (const id of ids) {
        const key = `${kind}:${id}`;
        const reply = this.sendOn(conn, subscribeFrame(kind, id), true);
        jobs.push({ key, kind, id, reply });
        if (conn === this.current) {
          this.restoring.set(key, reply);
          reply.then(
            (frame) => this.settleAwaiting(key, { frame }),
            (error: unknown) => {
              // Dropped again: the waiters wait for the next socket (or their own timeout).
              if (error instanceof ClientError && error.code !== "disconnected") {
                this.settleAwaiting(key, { error });
              }
            },
          );
        }
        reply.catch(() => undefined);
      }
    }
    const failed: Array<{ conversationId: string; error: ClientError }> = [];
    for (const job of jobs) {
      try {
        await job.reply;
      } catch (error) {
        const failure = error instanceof ClientError ? error : new ClientError("bad_response", String(error));
        if (failure.code === "not_found") {
          (job.kind === "surface" ? this.surfaceSubs : this.chatSubs).delete(job.id);
        }
        if (failure.code !== "disconnected" && failure.code !== "closed") {
          failed.push({ conversationId: job.id, error: failure });
        }
      } finally {
        if (this.restoring.get(job.key) === job.reply) this.restoring.delete(job.key);
      }
    }
    return { surfaces, chats, failed };
  }

  // --- sending ---------------------------------------------------------------------------------

  private nextRequestId(): string {
    this.counter += 1;
    return `${this.idPrefix}-${this.counter}`;
  }

  private isOpen(): boolean {
    const conn = this.current;
    return conn !== null && conn.opened && !conn.dead;
  }

  /** Queue a frame for the current socket (or for the next one while there is none). */
  private send(frame: Outgoing, timeoutMs?: number): Promise<ServerFrame> {
    return this.enqueue(null, frame, timeoutMs, false);
  }

  /** Queue a frame for one socket in particular (re-subscriptions, on a new or fresh socket). */
  private sendOn(conn: Conn, frame: Outgoing, internal = false): Promise<ServerFrame> {
    return this.enqueue(conn, frame, undefined, internal);
  }

  private enqueue(
    target: Conn | null,
    frame: Outgoing,
    timeoutMs: number | undefined,
    internal: boolean,
  ): Promise<ServerFrame> {
    if (this.stateValue === "closed") {
      return Promise.reject(new ClientError("closed", "the client was closed"));
    }
    const requestId = this.nextRequestId();
    const text = JSON.stringify({ ...frame, requestId });
    const bytes = encoder.encode(text).length;
    if (bytes > LIMITS.maxFrameBytes) {
      // API Gateway closes the socket on a frame over 32 KB; the server would refuse it anyway.
      return Promise.reject(
        new ClientError("frame_too_large", `the frame is ${bytes} bytes; the limit is ${LIMITS.maxFrameBytes}`, {
          requestId,
        }),
      );
    }
    const conversationId = "conversationId" in frame ? frame.conversationId : null;
    return new Promise<ServerFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        const entry = this.pending.get(requestId);
        if (!entry) return;
        this.pending.delete(requestId);
        entry.conn?.inFlight.delete(requestId);
        this.outbox = this.outbox.filter((item) => item.requestId !== requestId);
        const waited = timeoutMs ?? this.requestTimeoutMs;
        reject(
          new ClientError("timeout", `no reply to ${frame.type} within ${waited} ms`, {
            requestId,
            conversationId,
          }),
        );
      }, timeoutMs ?? this.requestTimeoutMs);
      this.pending.set(requestId, { resolve, reject, timer, conn: null });
      const item: Queued = { requestId, text, internal };
      const conn = target ?? (this.isOpen() ? this.current : null);
      if (conn) {
        conn.queue.push(item);
        this.pump(conn);
      } else {
        this.outbox.push(item);
      }
    });
  }

  /** Sends what `conn` has queued, at most maxFramesPerSecond in any second. */
  private pump(conn: Conn): void {
    if (conn.pumpTimer !== null) return;
    while (conn.queue.length > 0) {
      if (conn.dead || !conn.opened || conn.ws.readyState !== OPEN) return;
      const now = Date.now();
      while (conn.sentAt.length > 0 && now - (conn.sentAt[0] ?? 0) >= 1000) conn.sentAt.shift();
      if (conn.sentAt.length >= this.maxFramesPerSecond) {
        const wait = 1000 - (now - (conn.sentAt[0] ?? now)) + 1;
        conn.pumpTimer = setTimeout(() => {
          conn.pumpTimer = null;
          this.pump(conn);
        }, wait);
        return;
      }
      const item = conn.queue.shift();
      if (!item) return;
      const entry = this.pending.get(item.requestId);
      if (!entry) continue; // timed out while queued
      try {
        conn.ws.send(item.text);
      } catch {
        conn.queue.unshift(item);
        return; // the close event follows
      }
      entry.conn = conn;
      conn.inFlight.add(item.requestId);
      conn.sentAt.push(now);
      if (conn === this.current) {
        this.lastSentAt = now;
        this.scheduleKeepAlive();
      }
    }
  }

  // --- connections -----------------------------------------------------------------------------

  private async socketUrl(): Promise<string> {
    const token = await resolveToken(this.options.token);
    const separator = this.options.url.includes("?") ? "&" : "?";
    return `${this.options.url}${separator}token=${encodeURIComponent(token)}`;
  }

  private createSocket(url: string): WebSocketLike {
    if (this.options.createSocket) return this.options.createSocket(url);
    const Native = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
    if (!Native) throw new Error("no global WebSocket: pass createSocket in the options");
    return new Native(url);
  }

  private async open(rotation: boolean): Promise<void> {
    let url: string;
    let ws: WebSocketLike;
    try {
      url = await this.socketUrl();
      if (this.stateValue === "closed") return;
      ws = this.createSocket(url);
    } catch {
      if (!rotation) this.scheduleReconnect(null, "could not open a socket");
      return;
    }
    this.serial += 1;
    const conn: Conn = {
      ws,
      serial: this.serial,
      opened: false,
      dead: false,
      live: !rotation,
      queue: [],
      sentAt: [],
      inFlight: new Set(),
      pumpTimer: null,
      retireTimer: null,
    };
    if (rotation) this.candidate = conn;
    else this.current = conn;
    ws.addEventListener("open", () => this.onOpen(conn));
    ws.addEventListener("message", (event) => this.onMessage(conn, event.data));
    ws.addEventListener("close", (event) => this.onClose(conn, event.code, event.reason));
    ws.addEventListener("error", () => {
      // A close event follows every error; that is where reconnecting happens.
    });
  }

  private onOpen(conn: Conn): void {
    if (conn.dead) return;
    conn.opened = true;
    if (conn === this.candidate) {
      void this.finishRotation(conn);
      return;
    }
    if (conn !== this.current) return;
    const reconnected = this.everOpened;
    this.everOpened = true;
    this.setState("open", null, null, null);
    for (const waiter of this.openWaiters) waiter.resolve();
    this.openWaiters = [];
    this.lastSentAt = Date.now();
    this.scheduleKeepAlive();
    this.scheduleRotation();
    // Re-subscriptions go first; requests made while disconnected follow them.
    const restored = this.restore(conn);
    const waiting = this.outbox;
    this.outbox = [];
    conn.queue.push(...waiting);
    this.pump(conn);
    if (reconnected) {
      void restored.then((result) => {
        if (conn === this.current && !conn.dead) this.emit("resubscribed", result);
      });
    }
  }

  private onMessage(conn: Conn, data: unknown): void {
    if (conn.dead) return;
    let frame: unknown;
    try {
      frame = JSON.parse(typeof data === "string" ? data : String(data));
    } catch {
      if (conn.live) this.emit("unknown", data);
      return;
    }
    if (conn === this.current) this.attempt = 0; // the server answers: this socket is good
    const type = isRecord(frame) ? frame["type"] : undefined;
    if (!isRecord(frame) || typeof type !== "string" || !(SERVER_FRAME_TYPES as readonly string[]).includes(type)) {
      if (conn.live) this.emit("unknown", frame);
      return;
    }
    const serverFrame = frame as unknown as ServerFrame;
    const requestId = typeof frame["requestId"] === "string" ? frame["requestId"] : null;
    const entry = requestId !== null ? this.pending.get(requestId) : undefined;
    if (requestId !== null && entry) {
      this.pending.delete(requestId);
      clearTimeout(entry.timer);
      conn.inFlight.delete(requestId);
      if (serverFrame.type === "error") {
        entry.reject(
          new ClientError(serverFrame.code, serverFrame.message, {
            conversationId: serverFrame.conversationId ?? null,
            requestId,
          }),
        );
      } else {
        // Replies that carry state are news for every listener, whoever asked.
        this.dispatch(serverFrame);
        entry.resolve(serverFrame);
      }
      if (conn !== this.current) this.maybeRetire(conn);
      return;
    }
    if (!conn.live) return; // a candidate not yet switched to, or a retired socket
    if (serverFrame.type === "error") this.emit("error", serverFrame);
    else this.dispatch(serverFrame);
  }

  private dispatch(frame: ServerFrame): void {
    switch (frame.type) {
      case "surface":
        this.emit("surface", frame);
        break;
      case "update":
        this.emit("update", frame);
        break;
      case "chat":
        this.emit("chat", frame);
        break;
      default:
        break;
    }
  }

  private onClose(conn: Conn, code: number, reason: string): void {
    if (conn.dead) return;
    this.drop(conn, code, reason);
  }

  /** A socket is gone (closed, or silent past a ping): fail its requests, reconnect if current. */
  private drop(conn: Conn, code: number | null, reason: string | null): void {
    conn.dead = true;
    if (conn.pumpTimer !== null) clearTimeout(conn.pumpTimer);
    if (conn.retireTimer !== null) clearTimeout(conn.retireTimer);
    const lost = new ClientError(
      "disconnected",
      "the connection dropped before the server answered; the request may or may not have taken effect",
    );
    for (const requestId of conn.inFlight) {
      const entry = this.pending.get(requestId);
      if (!entry) continue;
      this.pending.delete(requestId);
      clearTimeout(entry.timer);
      entry.reject(new ClientError(lost.code, lost.message, { requestId }));
    }
    conn.inFlight.clear();
    if (conn === this.candidate) {
      // The fresh socket failed before the switch: keep the current one and try again later.
      for (const item of conn.queue) this.failQueued(item, lost);
      this.candidate = null;
      this.scheduleRotation(Math.min(60_000, this.maxConnectionMs));
      return;
    }
    if (conn !== this.current) return; // a retired socket
    // Unsent requests wait for the next socket; re-subscriptions are redone by its restore.
    for (const item of conn.queue) if (item.internal) this.failQueued(item, lost);
    this.outbox = [...conn.queue.filter((item) => !item.internal), ...this.outbox];
    conn.queue.length = 0;
    this.current = null;
    if (this.candidate) {
      this.candidate.dead = true;
      safeClose(this.candidate.ws, 1000, "superseded");
      this.candidate = null;
    }
    this.clearTimer("keepAliveTimer");
    this.clearTimer("rotateTimer");
    this.scheduleReconnect(code, reason);
  }

  private failQueued(item: Queued, error: ClientError): void {
    const entry = this.pending.get(item.requestId);
    if (!entry) return;
    this.pending.delete(item.requestId);
    clearTimeout(entry.timer);
    entry.reject(new ClientError(error.code, error.message, { requestId: item.requestId }));
  }

  private scheduleReconnect(code: number | null, reason: string | null): void {
    if (this.stateValue === "closed") return;
    this.attempt += 1;
    const delay = backoffDelay(this.attempt, this.options.backoff, this.random);
    this.setState(this.everOpened ? "reconnecting" : "connecting", delay, code, reason);
    this.clearTimer("reconnectTimer");
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open(false);
    }, delay);
  }

  private scheduleKeepAlive(): void {
    this.clearTimer("keepAliveTimer");
    if (this.pingIntervalMs <= 0 || !this.isOpen()) return;
    const due = this.lastSentAt + this.pingIntervalMs - Date.now();
    this.keepAliveTimer = setTimeout(() => {
      this.keepAliveTimer = null;
      const conn = this.current;
      if (!conn || !this.isOpen()) return;
      if (Date.now() - this.lastSentAt < this.pingIntervalMs) {
        this.scheduleKeepAlive();
        return;
      }
      this.ping().catch((error: unknown) => {
        // No pong: the socket may be half-open (no close event will come). Treat it as dropped.
        if (error instanceof ClientError && error.code === "timeout" && conn === this.current && !conn.dead) {
          safeClose(conn.ws, NO_PONG_CODE, "no pong");
          this.drop(conn, NO_PONG_CODE, "no pong");
        }
      });
    }, Math.max(0, due));
  }

  private scheduleRotation(after: number = this.maxConnectionMs): void {
    this.clearTimer("rotateTimer");
    if (this.maxConnectionMs <= 0) return;
    this.rotateTimer = setTimeout(() => {
      this.rotateTimer = null;
      if (this.isOpen() && !this.candidate) void this.open(true);
    }, after);
  }

  /** The fresh socket is open: restore every subscription on it, then switch and retire the old. */
  private async finishRotation(conn: Conn): Promise<void> {
    const result = await this.restore(conn);
    if (conn.dead || conn !== this.candidate) return;
    const old = this.current;
    if (!old || old.dead) {
      this.candidate = null;
      conn.dead = true;
      safeClose(conn.ws, 1000, "superseded");
      return;
    }
    // Subscriptions made on the old socket during the move are not on the new one yet.
    const missing: Outgoing[] = [];
    for (const id of this.chatSubs) if (!result.chats.includes(id)) missing.push(subscribeFrame("chat", id));
    for (const id of this.surfaceSubs) if (!result.surfaces.includes(id)) missing.push(subscribeFrame("surface", id));
    this.candidate = null;
    this.current = conn;
    conn.live = true;
    old.live = false;
    this.attempt = 0;
    for (const frame of missing) void this.sendOn(conn, frame, true).catch(() => undefined);
    // What was queued on the old socket and not sent yet goes on the new one.
    conn.queue.push(...old.queue);
    old.queue.length = 0;
    this.pump(conn);
    this.lastSentAt = Date.now();
    this.scheduleKeepAlive();
    this.scheduleRotation();
    this.maybeRetire(old);
  }

  /** Close a replaced socket once its requests are answered (or have timed out). */
  private maybeRetire(conn: Conn): void {
    if (conn.dead || conn === this.current || conn === this.candidate) return;
    if (conn.inFlight.size > 0) {
      // Its last requests time out by then at the latest.
      conn.retireTimer ??= setTimeout(() => {
        conn.inFlight.clear();
        this.maybeRetire(conn);
      }, this.requestTimeoutMs);
      return;
    }
    if (conn.retireTimer !== null) clearTimeout(conn.retireTimer);
    conn.dead = true;
    safeClose(conn.ws, 1000, "replaced by a fresh connection");
  }

  // --- plumbing --------------------------------------------------------------------------------

  private setState(
    state: ConnectionState,
    retryInMs: number | null,
    closeCode: number | null,
    closeReason: string | null,
  ): void {
    this.stateValue = state;
    this.emit("state", { state, attempt: this.attempt, retryInMs, closeCode, closeReason });
  }

  private emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<ClientEvents[K]>)(payload);
      } catch (error) {
        // A listener's bug must not break the connection's bookkeeping.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  private clearTimer(name: "reconnectTimer" | "keepAliveTimer" | "rotateTimer"): void {
    const timer = this[name];
    if (timer !== null) clearTimeout(timer);
    this[name] = null;
  }

  private clearTimers(): void {
    this.clearTimer("reconnectTimer");
    this.clearTimer("keepAliveTimer");
    this.clearTimer("rotateTimer");
    for (const conn of [this.current, this.candidate]) {
      if (conn?.pumpTimer != null) clearTimeout(conn.pumpTimer);
    }
  }
}

function subscribeFrame(kind: "surface" | "chat", conversationId: string): Outgoing {
  return kind === "surface"
    ? { type: "subscribe", surfaceId: SURFACE_ID, conversationId }
    : { type: "chat.subscribe", conversationId };
}

function safeClose(ws: WebSocketLike, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
