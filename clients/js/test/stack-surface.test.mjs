// The cache-warming surface over the real local stack: subscribe, invoke, broadcasts, errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientError, countdown, readPanel } from "../dist/index.js";
import { assertContract } from "./support/contract.mjs";
import { collect, conversations, endpoints, newClient, newHttp, until } from "./support/stack.mjs";

const stack = endpoints();
const http = newHttp(stack);
const conversation = conversations(http);

test("watch: the surface of a new conversation, all eight fields, warming off", async (t) => {
  const { client, violations } = newClient(stack);
  t.after(() => client.close());
  const id = await conversation("surface");
  await client.connect();
  const surface = await client.watch(id);
  assertContract("SurfaceFrame", surface);
  assert.equal(surface.conversationId, id);
  const panel = readPanel(surface.spec.fields);
  assert.equal(panel.enabled, false);
  assert.equal(panel.status, "off");
  assert.equal(panel.intervalSeconds, 290);
  assert.equal(panel.retention, "5m");
  assert.equal(panel.retentionSetting, "auto");
  assert.equal(panel.savings.netUsd, 0);
  assert.equal(countdown(panel.nextWarmAt).text, "—");
  assert.deepEqual(client.subscriptions, { surfaces: [id], chats: [id] });
  assert.deepEqual(violations, []);
});

test("invoke: the caller gets its update, every other subscriber the same as a broadcast", async (t) => {
  const alice = newClient(stack);
  const bob = newClient(stack);
  t.after(() => {
    alice.client.close();
    bob.client.close();
  });
  const id = await conversation("broadcast");
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  await Promise.all([alice.client.subscribeSurface(id), bob.client.subscribeSurface(id)]);
  const bobUpdates = collect(bob.client, "update");

  const interval = await alice.client.setInterval(id, 60);
  assertContract("UpdateFrame", interval);
  assert.equal(readPanel(interval.fields).intervalSeconds, 60);
  const toggled = await alice.client.toggle(id, true);
  assert.equal(readPanel(toggled.fields).enabled, true);
  // No turn yet: nothing is cached, so warming waits for the first one.
  assert.equal(readPanel(toggled.fields).status, "waiting-for-first-turn");

  await until(() => bobUpdates.length >= 2);
  assert.ok(bobUpdates.every((frame) => frame.requestId === undefined), "broadcasts carry no requestId");
  assert.equal(readPanel(bobUpdates.at(-1).fields).enabled, true);
  assert.deepEqual([...alice.violations, ...bob.violations], []);
});

test("errors: a bad interval, a toggle payload, an unknown conversation", async (t) => {
  const { client, violations } = newClient(stack);
  t.after(() => client.close());
  const id = await conversation("errors");
  await client.connect();

  const low = await client.setInterval(id, 5).catch((e) => e);
  assert.ok(low instanceof ClientError);
  assert.equal(low.code, "invalid_interval");
  assert.equal(low.status, 400);
  assert.equal(low.conversationId, id);
  const high = await client.setInterval(id, 291).catch((e) => e);
  assert.equal(high.code, "invalid_interval");

  const missing = await client.subscribeSurface("0".repeat(32)).catch((e) => e);
  assert.equal(missing.code, "not_found");
  assert.equal(missing.status, 404);
  assert.deepEqual(client.subscriptions.surfaces, [], "a refused subscription is forgotten");

  const raw = await client
    .request({ type: "invoke", surfaceId: "cache-warming", conversationId: id, action: "cache-warming/toggle", payload: "yes" })
    .catch((e) => e);
  assert.equal(raw.code, "invalid_payload");
  assert.deepEqual(violations, []);
});

test("ping, unsubscribe and close answer with pong and acks", async (t) => {
  const { client, violations } = newClient(stack);
  t.after(() => client.close());
  const id = await conversation("acks");
  await client.connect();
  const pong = await client.ping();
  assert.equal(pong.type, "pong");
  await client.watch(id);
  await client.unwatch(id);
  assert.deepEqual(client.subscriptions, { surfaces: [], chats: [] });
  const ack = await client.closeConversation(id);
  assertContract("AckFrame", ack);
  assert.equal(ack.of, "close");
  const detail = await http.getConversation(id);
  assert.equal(detail.closed, true);
  assert.equal(detail.warming.status, "closed");
  assert.deepEqual(violations, []);
});

test("a frame over 32 KB never leaves the client", async (t) => {
  const { client } = newClient(stack);
  t.after(() => client.close());
  await client.connect();
  const error = await client.request({ type: "chat.subscribe", conversationId: "x".repeat(33_000) }).catch((e) => e);
  assert.equal(error.code, "frame_too_large");
  const pong = await client.ping();
  assert.equal(pong.type, "pong", "the socket is still fine");
});
