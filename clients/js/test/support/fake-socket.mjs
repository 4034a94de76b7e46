// A scripted stand-in for the server side of the WebSocket, for tests that need exact control
// over timing, ordering and drops. It answers every frame as the contract says unless told to
// hold replies, and records what the client sent on each socket.
import { SURFACE_ID } from "../../dist/index.js";

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

export const sampleFields = (overrides = {}) => [
  { id: "enabled", kind: "toggle", label: "Cache warming", value: false, action: "cache-warming/toggle" },
  { id: "interval", kind: "number", label: "Interval", value: 290, min: 20, max: 290, unit: "s", action: "cache-warming/set-interval", costPerHourUsd: null },
  { id: "timer", kind: "custom", component: "cache-warming-timer", label: "Next warm", value: { nextWarmAt: null, lastWarmAt: null, cacheExpiresAt: null, warmsLeft: null } },
  { id: "status", kind: "status", label: "Status", value: overrides.status ?? "off" },
  { id: "last-cache-pct", kind: "percent", label: "Last Cache %", value: null },
  { id: "cache-retention", kind: "text", label: "Cache retention", value: "5m", setting: "auto", reason: "auto: 5m for the first two turns, which measure this conversation's sizes; from the third on, each turn's request takes the cheaper cache" },
  { id: "warm-cost", kind: "cost", label: "Warm cost", value: { warms: 0, lastTokens: null, lastUsd: null, totalTokens: 0, totalUsd: 0 } },
  { id: "savings", kind: "cost", label: "Savings", value: { spentUsd: 0, savedUsd: 0, netUsd: 0, rescues: 0 } },
];

export class FakeSocket {
  constructor(server, url) {
    this.server = server;
    this.url = url;
    this.readyState = CONNECTING;
    this.listeners = { open: [], message: [], close: [], error: [] };
    this.sent = [];
    this.closedWith = null;
  }

  addEventListener(type, listener) {
    this.listeners[type].push(listener);
  }

  fire(type, event) {
    for (const listener of this.listeners[type]) listener(event);
  }

  send(text) {
    if (this.readyState !== OPEN) throw new Error("not open");
    const frame = JSON.parse(text);
    this.sent.push(frame);
    this.server.onFrame(this, frame);
  }

  close(code = 1000, reason = "") {
    if (this.readyState === CLOSED) return;
    this.closedWith = { code, reason };
    this.readyState = CLOSED;
    queueMicrotask(() => this.fire("close", { code, reason }));
  }

  // --- the server's side ---
  accept() {
    this.readyState = OPEN;
    this.fire("open", {});
  }

  push(frame) {
    this.fire("message", { data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  drop(code = 1001, reason = "Going away") {
    this.readyState = CLOSED;
    this.fire("close", { code, reason });
  }

  types() {
    return this.sent.map((frame) => (frame.type === "invoke" ? `invoke:${frame.action}` : frame.type) + (frame.conversationId ? `:${frame.conversationId}` : ""));
  }
}

export class FakeServer {
  constructor({ autoAccept = true, autoReply = true } = {}) {
    this.sockets = [];
    this.autoAccept = autoAccept;
    this.autoReply = autoReply;
    this.held = [];
  }

  createSocket = (url) => {
    const socket = new FakeSocket(this, url);
    this.sockets.push(socket);
    if (this.autoAccept) setTimeout(() => socket.accept(), 0);
    return socket;
  };

  get last() {
    return this.sockets[this.sockets.length - 1];
  }

  onFrame(socket, frame) {
    if (!this.autoReply) {
      this.held.push({ socket, frame });
      return;
    }
    setTimeout(() => this.reply(socket, frame), 0);
  }

  reply(socket, frame) {
    if (socket.readyState !== OPEN) return;
    const requestId = frame.requestId;
    const conversationId = frame.conversationId;
    switch (frame.type) {
      case "ping":
        return socket.push({ type: "pong", requestId });
      case "subscribe":
        if (conversationId === "missing") {
          return socket.push({ type: "error", code: "not_found", message: "no such conversation", conversationId, requestId });
        }
        return socket.push({ type: "surface", surfaceId: SURFACE_ID, conversationId, requestId, spec: { title: "Cache warming", actions: ["cache-warming/toggle", "cache-warming/set-interval"], fields: sampleFields() } });
      case "invoke":
        if (frame.action === "cache-warming/set-interval" && frame.payload < 20) {
          return socket.push({ type: "error", code: "invalid_interval", message: "interval must be between 20 and 290 seconds", conversationId, requestId });
        }
        const cause = frame.action === "cache-warming/set-interval" ? "interval" : "toggle";
        return socket.push({ type: "update", surfaceId: SURFACE_ID, conversationId, cause, requestId, fields: sampleFields({ status: frame.payload ? "scheduled" : "off" }) });
      default:
        return socket.push({ type: "ack", of: frame.type, conversationId, requestId });
    }
  }

  releaseHeld() {
    const held = this.held;
    this.held = [];
    for (const { socket, frame } of held) this.reply(socket, frame);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function until(condition, timeoutMs = 2000, stepMs = 5) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await sleep(stepMs);
  }
  if (!(await condition())) throw new Error(`condition not met within ${timeoutMs} ms: ${condition}`);
}
