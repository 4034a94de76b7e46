// The local stack the stack tests run against: DEVSTACK_ENDPOINTS names its endpoints file
// (written by `python -m devstack --endpoints-file`). tests/e2e/test_js_client.py sets it for the
// stack all e2e tests share; `npm test` starts one itself (scripts/test-with-stack.mjs).
import { readFileSync } from "node:fs";
import { after } from "node:test";
import WebSocket from "ws";
import { CacheWarmingClient, HttpApi } from "../../dist/index.js";
import { validator } from "./contract.mjs";

export function endpoints() {
  const path = process.env.DEVSTACK_ENDPOINTS;
  if (!path) throw new Error("DEVSTACK_ENDPOINTS is not set: run through `npm test` or `make test`");
  return JSON.parse(readFileSync(path, "utf8"));
}

let tagCounter = 0;

/** A unique User-Agent, so a test can find its own socket in the gateway's listing. */
export function uniqueAgent(label) {
  tagCounter += 1;
  return `js-client-test/${label}/${process.pid}-${tagCounter}-${Date.now()}`;
}

/**
 * A client on the stack whose every received frame is checked against the contract's schema:
 * `violations` lists the ones that are not (the test asserts it stays empty).
 */
export function newClient(stack, options = {}) {
  const agent = options.agent ?? uniqueAgent("client");
  const violations = [];
  const isServerFrame = validator("ServerFrame");
  const client = new CacheWarmingClient({
    url: stack.wsUrl,
    token: stack.token,
    createSocket: (url) => {
      const socket = new WebSocket(url, { headers: { "User-Agent": agent } });
      socket.on("message", (data) => {
        const frame = JSON.parse(String(data));
        if (!isServerFrame(frame)) violations.push(frame);
      });
      return socket;
    },
    requestTimeoutMs: 10_000,
    backoff: { initialMs: 100, maxMs: 1000 },
    ...options,
  });
  return { client, agent, violations };
}

export function newHttp(stack) {
  return new HttpApi({ baseUrl: stack.httpUrl, token: stack.token });
}

/** `conversation(title)` for one test file: creates a conversation (passing it to `check`) and
 * closes every one it created once the file's tests are done. */
export function conversations(http, check = () => undefined) {
  const opened = [];
  after(async () => {
    for (const id of opened) await http.closeConversation(id).catch(() => undefined);
  });
  return async (title) => {
    const created = await http.createConversation({ title });
    check(created);
    opened.push(created.conversationId);
    return created.conversationId;
  };
}

/** The gateway's live connections (a devstack-only listing on the management API). */
export async function connections(stack) {
  const response = await fetch(`${stack.managementUrl}/@connections`);
  if (!response.ok) throw new Error(`listing connections: HTTP ${response.status}`);
  return (await response.json()).connections;
}

export async function connectionIdsOf(stack, agent) {
  return (await connections(stack)).filter((c) => c.identity.userAgent === agent).map((c) => c.connectionId);
}

/** What API Gateway's DeleteConnection does: the gateway closes the socket. */
export async function dropConnection(stack, connectionId) {
  const response = await fetch(`${stack.managementUrl}/@connections/${encodeURIComponent(connectionId)}`, {
    method: "DELETE",
  });
  if (response.status !== 204) throw new Error(`DELETE connection: HTTP ${response.status}`);
}

export async function getConnection(stack, connectionId) {
  const response = await fetch(`${stack.managementUrl}/@connections/${encodeURIComponent(connectionId)}`);
  return response.ok ? await response.json() : null;
}

/** Collects a client's events of one kind. */
export function collect(client, event) {
  const seen = [];
  client.on(event, (payload) => seen.push(payload));
  return seen;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function until(condition, timeoutMs = 10_000, stepMs = 25) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${condition}`);
    await sleep(stepMs);
  }
}
