// Reconnects, keep-alive and the move to a fresh socket against the real gateway.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readPanel } from "../dist/index.js";
import {
  collect,
  connectionIdsOf,
  conversations,
  dropConnection,
  endpoints,
  getConnection,
  newClient,
  newHttp,
  sleep,
  until,
} from "./support/stack.mjs";

const stack = endpoints();
const http = newHttp(stack);
const conversation = conversations(http);

test("the gateway drops the socket: the client reconnects, re-subscribes and hears broadcasts again", async (t) => {
  const watcher = newClient(stack);
  const actor = newClient(stack);
  t.after(() => {
    watcher.client.close();
    actor.client.close();
  });
  const id = await conversation("reconnect");
  await Promise.all([watcher.client.connect(), actor.client.connect()]);
  await watcher.client.watch(id);
  const states = collect(watcher.client, "state");
  const resubscribed = collect(watcher.client, "resubscribed");
  const surfaces = collect(watcher.client, "surface");
  const updates = collect(watcher.client, "update");

  const [before] = await connectionIdsOf(stack, watcher.agent);
  assert.ok(before, "the watcher's socket is listed");
  await dropConnection(stack, before);

  await until(() => resubscribed.length === 1);
  const [after_] = await connectionIdsOf(stack, watcher.agent);
  assert.ok(after_ && after_ !== before, "a new connection");
  assert.deepEqual(
    states.map((s) => s.state),
    ["reconnecting", "open"],
  );
  assert.deepEqual(resubscribed[0], { surfaces: [id], chats: [id], failed: [] });
  assert.equal(surfaces.length, 1, "the restored surface is delivered");

  // The server knows the new socket: another client's change reaches it.
  await actor.client.setInterval(id, 45);
  await until(() => updates.some((u) => readPanel(u.fields).intervalSeconds === 45));
  assert.deepEqual([...watcher.violations, ...actor.violations], []);
});

test("keep-alive pings reach the gateway while the application is silent", async (t) => {
  const { client, agent } = newClient(stack, { pingIntervalMs: 300 });
  t.after(() => client.close());
  await client.connect();
  const [id] = await connectionIdsOf(stack, agent);
  // lastActiveAt is null until the client has sent its first message (the first ping).
  let first;
  await until(async () => {
    first = await getConnection(stack, id);
    return Boolean(first.lastActiveAt);
  });
  await sleep(1200);
  const later = await getConnection(stack, id);
  // API Gateway's idle timer counts the client's messages; GetConnection's lastActiveAt shows it.
  assert.ok(Date.parse(later.lastActiveAt) > Date.parse(first.lastActiveAt));
  // A ping every 300 ms: the last one is recent (with room for a loaded machine's timers).
  assert.ok(Date.now() - Date.parse(later.lastActiveAt) < 1500, "a ping in the last interval or so");
  assert.equal(client.state, "open");
});

test("before the connection limit, a fresh socket takes over with no visible reconnect", async (t) => {
  const { client, agent, violations } = newClient(stack, { maxConnectionMs: 1500 });
  const actor = newClient(stack);
  t.after(() => {
    client.close();
    actor.client.close();
  });
  const id = await conversation("rotation");
  await Promise.all([client.connect(), actor.client.connect()]);
  await client.watch(id);
  const states = collect(client, "state");
  const [first] = await connectionIdsOf(stack, agent);

  await until(async () => {
    const ids = await connectionIdsOf(stack, agent);
    return ids.length === 1 && ids[0] !== first;
  });
  assert.deepEqual(states, [], "no reconnecting or connecting state on the way");
  const updates = collect(client, "update");
  await actor.client.toggle(id, true);
  await until(() => updates.some((u) => readPanel(u.fields).enabled));
  assert.equal((await client.ping()).type, "pong");
  assert.deepEqual(violations, []);
});

test("a refused token keeps retrying with growing delays and never opens", async (t) => {
  const { client } = newClient(stack, { token: "forged.token.value", backoff: { initialMs: 100, maxMs: 400 } });
  t.after(() => client.close());
  const states = collect(client, "state");
  let opened_ = false;
  client.connect().then(
    () => {
      opened_ = true;
    },
    () => undefined, // rejected with `closed` when the test closes the client
  );
  await until(() => states.filter((s) => s.retryInMs !== null).length >= 3, 10_000);
  assert.equal(opened_, false);
  assert.ok(states.every((s) => s.state === "connecting"));
  const delays = states.filter((s) => s.retryInMs !== null).map((s) => s.retryInMs);
  assert.ok(delays[2] >= delays[0], `${delays}`);
});
