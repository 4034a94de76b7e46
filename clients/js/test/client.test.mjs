// The WebSocket client against a scripted server (test/support/fake-socket.mjs): request/reply
// matching, timeouts, pacing, reconnect with re-subscription, keep-alive and the move to a fresh
// socket, where exact timing and ordering matter. test/stack-*.test.mjs covers the real stack.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CacheWarmingClient, ClientError, ERROR_HTTP_STATUS } from "../dist/index.js";
import { FakeServer, sleep, until } from "./support/fake-socket.mjs";

function makeClient(server, options = {}) {
  const client = new CacheWarmingClient({
    url: "wss://example.test/api",
    token: "tok en",
    createSocket: server.createSocket,
    requestTimeoutMs: 500,
    backoff: { initialMs: 20, maxMs: 80 },
    random: () => 0.5,
    ...options,
  });
  const states = [];
  client.on("state", (change) => states.push(change));
  return { client, states };
}

test("connects with the token in the query and resolves once open", async (t) => {
  const server = new FakeServer();
  const { client, states } = makeClient(server);
  t.after(() => client.close());
  await client.connect();
  assert.equal(server.sockets.length, 1);
  assert.equal(server.last.url, "wss://example.test/api?token=tok%20en");
  assert.equal(client.state, "open");
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open"]);
});

test("replies are matched by requestId, whatever their order", async (t) => {
  const server = new FakeServer({ autoReply: false });
  const { client } = makeClient(server);
  t.after(() => client.close());
  await client.connect();
  const first = client.ping();
  const second = client.toggle("c1", true);
  await until(() => server.held.length === 2);
  const [a, b] = server.held;
  server.held = [];
  assert.notEqual(a.frame.requestId, b.frame.requestId);
  server.reply(b.socket, b.frame); // the update first
  server.reply(a.socket, a.frame);
  const [pong, update] = await Promise.all([first, second]);
  assert.equal(pong.type, "pong");
  assert.equal(pong.requestId, a.frame.requestId);
  assert.equal(update.type, "update");
  assert.equal(update.requestId, b.frame.requestId);
  assert.equal(b.frame.payload, true);
});

test("an error reply rejects with the code, its HTTP status and the conversation", async (t) => {
  const server = new FakeServer();
  const { client } = makeClient(server);
  t.after(() => client.close());
  await client.connect();
  const error = await client.setInterval("c1", 5).catch((e) => e);
  assert.ok(error instanceof ClientError);
  assert.equal(error.code, "invalid_interval");
  assert.equal(error.status, ERROR_HTTP_STATUS.invalid_interval);
  assert.equal(error.status, 400);
  assert.equal(error.conversationId, "c1");
  assert.equal(error.fromServer, true);
  assert.match(error.requestId, /^c[0-9a-z]+-\d+$/);
});

test("a request without a reply times out, and a late reply is ignored", async (t) => {
  const server = new FakeServer({ autoReply: false });
  const { client } = makeClient(server, { requestTimeoutMs: 60 });
  t.after(() => client.close());
  await client.connect();
  const started = Date.now();
  const error = await client.ping().catch((e) => e);
  assert.equal(error.code, "timeout");
  assert.equal(error.fromServer, false);
  assert.ok(Date.now() - started >= 55);
  server.releaseHeld(); // must not throw or resolve anything
  await sleep(10);
});

test("a frame over 32 KB is refused locally and never sent", async (t) => {
  const server = new FakeServer();
  const { client } = makeClient(server);
  t.after(() => client.close());
  await client.connect();
  const error = await client.subscribeSurface("x".repeat(40_000)).catch((e) => e);
  assert.equal(error.code, "frame_too_large");
  assert.equal(error.status, 413);
  assert.equal(server.last.sent.length, 0);
});

test("frames are paced to maxFramesPerSecond", async (t) => {
  const server = new FakeServer();
  const { client } = makeClient(server, { maxFramesPerSecond: 4, requestTimeoutMs: 3000 });
  t.after(() => client.close());
  await client.connect();
  const started = Date.now();
  const pongs = Promise.all(Array.from({ length: 9 }, () => client.ping()));
  await sleep(100);
  assert.equal(server.last.sent.length, 4, "only the first second's budget goes at once");
  await pongs;
  assert.equal(server.last.sent.length, 9);
  assert.ok(Date.now() - started >= 2000, "nine frames at four a second take two windows");
});

test("after a drop it reconnects with backoff, restores subscriptions first, then sends what waited", async (t) => {
  const server = new FakeServer();
  const { client, states } = makeClient(server);
  t.after(() => client.close());
  const surfaces = [];
  client.on("surface", (frame) => surfaces.push(frame.conversationId));
  const resubscribed = [];
  client.on("resubscribed", (event) => resubscribed.push(event));
  await client.connect();
  await client.watch("c1");
  await client.subscribeChat("c2");
  assert.deepEqual(server.last.types(), ["chat.subscribe:c1", "subscribe:c1", "chat.subscribe:c2"]);

  // A request in flight when the gateway drops the socket may or may not have happened.
  server.autoReply = false;
  const inFlight = client.toggle("c1", null);
  await until(() => server.held.length === 1);
  server.held = [];
  server.autoReply = true;
  const first = server.last;
  first.drop(1001, "Going away");
  const lost = await inFlight.catch((e) => e);
  assert.equal(lost.code, "disconnected");

  const reconnecting = states.at(-1);
  assert.equal(reconnecting.state, "reconnecting");
  assert.equal(reconnecting.closeCode, 1001);
  assert.equal(reconnecting.retryInMs, 15); // equal jitter: half of 20 ms fixed, half at random 0.5

  // Made while disconnected: waits, then goes after the restored subscriptions.
  const queued = client.setInterval("c1", 60);
  await until(() => resubscribed.length === 1);
  await queued;
  const second = server.last;
  assert.notEqual(second, first);
  assert.deepEqual(second.types(), [
    "chat.subscribe:c1",
    "chat.subscribe:c2",
    "subscribe:c1",
    "invoke:cache-warming/set-interval:c1",
  ]);
  assert.deepEqual(resubscribed[0], { surfaces: ["c1"], chats: ["c1", "c2"], failed: [] });
  assert.deepEqual(surfaces, ["c1", "c1"], "the restored surface is news for the page");
  assert.equal(client.state, "open");
});

test("backoff grows while the server stays away and resets after a good connection", async (t) => {
  const server = new FakeServer({ autoAccept: false });
  const { client, states } = makeClient(server);
  t.after(() => client.close());
  void client.connect();
  for (let i = 0; i < 4; i += 1) {
    await until(() => server.sockets.length === i + 1);
    server.last.drop(1006, "");
  }
  const delays = states.filter((s) => s.retryInMs !== null).map((s) => s.retryInMs);
  assert.deepEqual(delays, [15, 30, 60, 60]); // 20, 40, 80, 80 (capped), with equal jitter
  assert.ok(states.every((s) => s.state === "connecting"), "never open yet: still connecting");
  await until(() => server.sockets.length === 5);
  server.last.accept();
  await client.connect();
  await client.ping(); // the server answered: this socket is good
  server.last.drop(1001, "Going away");
  assert.equal(states.at(-1).state, "reconnecting");
  assert.equal(states.at(-1).retryInMs, 15, "back to the first delay");
});

test("subscribing while disconnected resolves with the restored subscription (sent once)", async (t) => {
  const server = new FakeServer();
  const { client } = makeClient(server);
  t.after(() => client.close());
  await client.connect();
  server.last.drop();
  const surface = client.subscribeSurface("c9");
  const frame = await surface;
  assert.equal(frame.type, "surface");
  assert.equal(frame.conversationId, "c9");
  assert.deepEqual(server.last.types(), ["subscribe:c9"]);
});

test("a not_found subscription rejects and is forgotten", async (t) => {
  const server = new FakeServer();
  const { client } = makeClient(server);
  t.after(() => client.close());
  await client.connect();
  const error = await client.subscribeSurface("missing").catch((e) => e);
  assert.equal(error.code, "not_found");
  assert.equal(error.status, 404);
  assert.deepEqual(client.subscriptions.surfaces, []);
});

test("unsubscribing forgets the subscription across reconnects", async (t) => {
  const server = new FakeServer();
  const { client } = makeClient(server);
  t.after(() => client.close());
  await client.connect();
  await client.watch("c1");
  await client.unwatch("c1");
  assert.deepEqual(server.last.types().slice(-2).sort(), ["chat.unsubscribe:c1", "unsubscribe:c1"]);
  server.last.drop();
  await until(() => server.sockets.length === 2 && client.state === "open");
  await client.ping();
  assert.deepEqual(server.last.types(), ["ping"]);
});

test("keep-alive: a ping after pingIntervalMs of silence, none while the client talks", async (t) => {
  const server = new FakeServer();
  const { client } = makeClient(server, { pingIntervalMs: 120 });
  t.after(() => client.close());
  await client.connect();
  const started = Date.now();
  while (Date.now() - started < 300) {
    await client.toggle("c1", true); // busy: every 40 ms
    await sleep(40);
  }
  assert.ok(!server.last.types().includes("ping"), "no ping while frames flow");
  await until(() => server.last.types().includes("ping"), 400);
});

test("keep-alive: a missing pong counts as a dropped socket", async (t) => {
  const server = new FakeServer();
  const { client, states } = makeClient(server, { pingIntervalMs: 50, requestTimeoutMs: 80 });
  t.after(() => client.close());
  await client.connect();
  const first = server.last;
  server.autoReply = false; // a half-open socket: nothing comes back, no close event either
  await until(() => server.sockets.length === 2, 1000);
  assert.deepEqual(first.closedWith, { code: 4000, reason: "no pong" });
  assert.ok(states.some((s) => s.state === "reconnecting" && s.closeCode === 4000));
});

test("before the gateway's connection limit it moves to a fresh socket without a gap", async (t) => {
  const server = new FakeServer();
  const { client, states } = makeClient(server, { maxConnectionMs: 100 });
  t.after(() => client.close());
  const chats = [];
  client.on("chat", (frame) => chats.push(frame.text));
  await client.connect();
  await client.watch("c1");
  const old = server.last;
  server.autoReply = false;
  await until(() => server.sockets.length === 2);
  const fresh = server.last;
  // Until the fresh socket's subscriptions are answered, the old one still delivers and the
  // fresh one's pushes (duplicates of the old one's) are not delivered.
  await until(() => fresh.sent.length === 2);
  old.push({ type: "chat", conversationId: "c1", event: "delta", turnId: "t0", text: "old-1 " });
  fresh.push({ type: "chat", conversationId: "c1", event: "delta", turnId: "t0", text: "early-dup " });
  assert.equal(old.closedWith, null);
  server.autoReply = true;
  server.releaseHeld();
  await until(() => old.closedWith !== null);
  assert.deepEqual(old.closedWith.code, 1000);
  fresh.push({ type: "chat", conversationId: "c1", event: "delta", turnId: "t0", text: "new-1" });
  await sleep(5);
  assert.deepEqual(chats, ["old-1 ", "new-1"]);
  assert.deepEqual(fresh.types().sort(), ["chat.subscribe:c1", "subscribe:c1"]);
  assert.ok(!states.some((s) => s.state === "reconnecting"), "no reconnect was visible");
  assert.equal(client.state, "open");
  const pong = await client.ping();
  assert.equal(pong.type, "pong");
  assert.equal(fresh.types().at(-1), "ping");
});

test("frames outside the contract are reported as unknown, not dropped silently", async (t) => {
  const server = new FakeServer();
  const { client } = makeClient(server);
  t.after(() => client.close());
  const unknown = [];
  const errors = [];
  client.on("unknown", (frame) => unknown.push(frame));
  client.on("error", (frame) => errors.push(frame.code));
  await client.connect();
  server.last.push({ message: "Internal server error", connectionId: "x", requestId: "y" });
  server.last.push("not json");
  server.last.push({ type: "error", code: "bad_json", message: "the frame is not valid UTF-8 JSON" });
  await sleep(5);
  assert.equal(unknown.length, 2);
  assert.equal(unknown[0].message, "Internal server error");
  assert.deepEqual(errors, ["bad_json"]);
});

test("close() rejects what is pending and stops reconnecting", async (t) => {
  const server = new FakeServer({ autoReply: false });
  const { client } = makeClient(server);
  await client.connect();
  const pending = client.ping();
  await until(() => server.held.length === 1);
  client.close();
  const error = await pending.catch((e) => e);
  assert.equal(error.code, "closed");
  await sleep(60);
  assert.equal(server.sockets.length, 1);
  assert.equal(client.state, "closed");
  await assert.rejects(client.ping(), (e) => e.code === "closed");
  t.diagnostic(`closed with ${JSON.stringify(server.last.closedWith)}`);
});
