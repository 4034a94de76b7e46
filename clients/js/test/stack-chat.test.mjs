// Turns over HTTP, replies as chat frames over the WebSocket, on the real local stack.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientError, HttpApi } from "../dist/index.js";
import { assertContract } from "./support/contract.mjs";
import { collect, conversations, endpoints, newClient, newHttp, until } from "./support/stack.mjs";

const stack = endpoints();
const http = newHttp(stack);
const conversation = conversations(http, (created) => assertContract("Conversation", created));

test("a turn streams to a chat subscriber and ends sealed, matching the stored turn", async (t) => {
  const { client, violations } = newClient(stack);
  t.after(() => client.close());
  const id = await conversation("chat");
  await client.connect();
  await client.subscribeChat(id);
  const frames = collect(client, "chat");

  const started = await http.startTurn(id, "Tell me about prompt caching.");
  assertContract("StartTurnReply", started);
  assert.deepEqual(started, { turnId: "t000000", index: 0 });
  const busy = await http.startTurn(id, "And again?").catch((e) => e);
  assert.ok(busy instanceof ClientError);
  assert.equal(busy.code, "turn_in_progress");
  assert.equal(busy.status, 409);

  await until(() => frames.some((f) => f.event === "turn-sealed"), 30_000);
  const events = frames.map((f) => f.event);
  assert.equal(events[0], "turn-started");
  assert.equal(events.at(-1), "turn-sealed");
  assert.ok(events.filter((e) => e === "delta").length >= 2, "the reply streamed in pieces");
  const streamed = frames.filter((f) => f.event === "delta").map((f) => f.text).join("");
  const sealed = frames.at(-1);
  assert.equal(streamed, sealed.text);
  assert.ok(sealed.usage.output_tokens > 0);
  assert.ok(frames.every((f) => f.turnId === "t000000" && f.conversationId === id));

  const detail = await http.getConversation(id);
  assertContract("ConversationDetail", detail);
  assert.equal(detail.turns[0].status, "sealed");
  assert.equal(detail.turns[0].assistantText, sealed.text);
  assert.deepEqual(detail.turns[0].usage, sealed.usage);
  assert.deepEqual(violations, []);
});

test("cancel aborts the turn: turn-aborted with the partial text", async (t) => {
  const { client, violations } = newClient(stack);
  t.after(() => client.close());
  const id = await conversation("cancel");
  await client.connect();
  await client.subscribeChat(id);
  const frames = collect(client, "chat");
  await http.startTurn(id, "Write a long answer.");
  await until(() => frames.some((f) => f.event === "delta"), 15_000);
  const cancel = await http.cancelTurn(id);
  assertContract("CancelReply", cancel);
  assert.equal(cancel.aborting, true);
  await until(() => frames.some((f) => f.event === "turn-aborted"), 15_000);
  const aborted = frames.find((f) => f.event === "turn-aborted");
  assert.equal(aborted.reason, "cancelled");
  assert.ok(aborted.text.length > 0);
  const again = await http.cancelTurn(id);
  assert.equal(again.aborting, false, "nothing left to abort");
  assert.deepEqual(violations, []);
});

test("HTTP helpers: health, list, get, close, and the contract's error bodies", async () => {
  assert.deepEqual(await http.health(), { status: "ok" });
  const id = await conversation("http");
  const list = await http.listConversations();
  assert.ok(list.some((c) => c.conversationId === id));
  for (const c of list) assertContract("Conversation", c);
  const first = await http.listConversationsPage({ limit: 1 });
  assertContract("ConversationList", first);
  assert.equal(first.conversations.length, 1);
  if (first.nextCursor) {
    const next = await http.listConversationsPage({ limit: 1, cursor: first.nextCursor });
    assert.notEqual(next.conversations[0]?.conversationId, first.conversations[0].conversationId);
  }
  const history = await http.history(id, { limit: 5 });
  assertContract("HistoryPage", history);
  assert.equal(history.nextCursor, null);

  const empty = await http.startTurn(id, "   ").catch((e) => e);
  assert.equal(empty.code, "invalid_text");
  assert.equal(empty.status, 400);
  const missing = await http.getConversation("0".repeat(32)).catch((e) => e);
  assert.equal(missing.code, "not_found");
  assert.equal(missing.status, 404);
  const badId = await http.getConversation("not ok!").catch((e) => e);
  assert.equal(badId.status, 400);

  const closed = await http.closeConversation(id);
  assertContract("Conversation", closed);
  assert.equal(closed.closed, true);
  const twice = await http.closeConversation(id);
  assert.equal(twice.closed, true, "closing is idempotent");

  const unauthorized = await newHttpWithToken("forged.token.value").listConversations().catch((e) => e);
  assert.equal(unauthorized.code, "unauthorized");
  assert.equal(unauthorized.status, 401);
  const offline = await newHttpAt("http://127.0.0.1:9").health().catch((e) => e);
  assert.equal(offline.code, "network_error");
});

function newHttpWithToken(token) {
  return new HttpApi({ baseUrl: stack.httpUrl, token });
}

function newHttpAt(baseUrl) {
  return new HttpApi({ baseUrl, token: stack.token, timeoutMs: 3000 });
}
