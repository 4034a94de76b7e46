// Pure helpers: countdown, backoff, fields, errors, and the package's generated contract.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import {
  ACTIONS,
  CHAT_EVENTS,
  ClientError,
  ERROR_CODES,
  ERROR_HTTP_STATUS,
  FIELD_IDS,
  LIMITS,
  ROUTES,
  SURFACE_ID,
  TURN_STATUSES,
  WARMING_STATUSES,
  backoffDelay,
  countdown,
  fieldsById,
  formatAgo,
  formatDuration,
  isErrorCode,
  readPanel,
} from "../dist/index.js";
import { sampleFields } from "./support/fake-socket.mjs";
import { validator, schema } from "./support/contract.mjs";

const NOW = 1_767_614_400_000;

test("countdown: future times count down in whole seconds, never showing 0", () => {
  assert.deepEqual(countdown(NOW + 42_000, NOW), { state: "future", text: "in 42 s", secondsLeft: 42 });
  assert.deepEqual(countdown(NOW + 1, NOW), { state: "future", text: "in 1 s", secondsLeft: 1 });
  assert.equal(countdown(NOW + 185_000, NOW).text, "in 3 m 05 s");
  assert.equal(countdown(NOW + 2 * 3600_000 + 7 * 60_000, NOW).text, "in 2 h 07 m");
});

test("countdown: a nextWarmAt in the past renders as waiting…, none as a dash", () => {
  assert.deepEqual(countdown(NOW, NOW), { state: "due", text: "waiting…", secondsLeft: null });
  assert.deepEqual(countdown(NOW - 5_000, NOW), { state: "due", text: "waiting…", secondsLeft: null });
  assert.deepEqual(countdown(null, NOW), { state: "none", text: "—", secondsLeft: null });
  assert.deepEqual(countdown(undefined, NOW), { state: "none", text: "—", secondsLeft: null });
  for (let ms = -3000; ms <= 3000; ms += 250) {
    assert.notEqual(countdown(NOW + ms, NOW).text, "in 0 s", `at ${ms} ms`);
  }
});

test("durations and ages", () => {
  assert.equal(formatDuration(0), "0 s");
  assert.equal(formatDuration(59.9), "59 s");
  assert.equal(formatDuration(60), "1 m 00 s");
  assert.equal(formatAgo(null, NOW), "never");
  assert.equal(formatAgo(NOW - 400, NOW), "just now");
  assert.equal(formatAgo(NOW - 12_000, NOW), "12 s ago");
});

test("backoff: exponential, capped, jittered within [half, full] of the nominal delay", () => {
  const options = { initialMs: 500, maxMs: 30_000, factor: 2 };
  assert.equal(backoffDelay(1, options, () => 0), 250);
  assert.equal(backoffDelay(1, options, () => 1), 500);
  assert.equal(backoffDelay(4, options, () => 1), 4000);
  assert.equal(backoffDelay(20, options, () => 1), 30_000);
  assert.equal(backoffDelay(20, options, () => 0), 15_000);
  const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(3)));
  assert.ok(spread.size > 10, "random jitter spreads reconnects");
  for (const value of spread) assert.ok(value >= 1000 && value <= 2000);
});

test("fields by id and the panel's state", () => {
  const fields = sampleFields({ status: "scheduled" });
  const byId = fieldsById(fields);
  assert.deepEqual(Object.keys(byId), [...FIELD_IDS]);
  assert.equal(byId.interval.max, 290);
  const panel = readPanel(fields);
  assert.equal(panel.status, "scheduled");
  assert.equal(panel.intervalSeconds, 290);
  assert.equal(panel.minIntervalSeconds, 20);
  assert.equal(panel.retention, "5m");
  assert.equal(panel.retentionSetting, "auto");
  assert.match(panel.retentionReason, /^auto: 5m/);
  assert.deepEqual(panel.savings, { spentUsd: 0, savedUsd: 0, netUsd: 0, rescues: 0 });
  assert.equal(panel.cacheExpiresAt, null);
  assert.equal(panel.warmsLeft, null);
  assert.equal(panel.costPerHourUsd, null);
  assert.throws(() => fieldsById(fields.slice(1)), /missing: enabled/);
});

test("ClientError: server codes carry their HTTP status, local ones none", () => {
  const server = new ClientError("turn_in_progress", "a reply is still being generated");
  assert.equal(server.status, 409);
  assert.equal(server.fromServer, true);
  const local = new ClientError("disconnected", "dropped");
  assert.equal(local.status, null);
  assert.equal(local.fromServer, false);
  assert.ok(isErrorCode("not_found"));
  assert.ok(!isErrorCode("disconnected"));
});

test("the generated constants are the schema's", () => {
  const defs = schema.$defs;
  assert.deepEqual([...ERROR_CODES], defs.ErrorCode.enum);
  assert.deepEqual(ERROR_HTTP_STATUS, schema["x-errorHttpStatus"]);
  assert.deepEqual([...WARMING_STATUSES], defs.WarmingStatus.enum);
  assert.deepEqual([...TURN_STATUSES], defs.TurnStatus.enum);
  assert.deepEqual([...CHAT_EVENTS], defs.ChatEvent.enum);
  assert.deepEqual([...FIELD_IDS], defs.FieldId.enum);
  assert.deepEqual([...ACTIONS], defs.Action.enum);
  assert.equal(SURFACE_ID, defs.SurfaceId.const);
  assert.deepEqual(LIMITS, schema["x-limits"]);
  assert.deepEqual(ROUTES, schema["x-routes"]);
  assert.ok(validator("SurfaceFields")(sampleFields()), "the test fixture itself is contract-shaped");
});

test("the committed generated file is up to date with the schema", () => {
  execFileSync(process.execPath, ["scripts/generate.mjs", "--check"], { stdio: "pipe" });
});

test("no `any` in the published declarations", () => {
  const dist = new URL("../dist/", import.meta.url);
  const files = readdirSync(dist).filter((name) => name.endsWith(".d.ts"));
  assert.ok(files.includes("index.d.ts") && files.includes("markdown.d.ts"));
  for (const name of files) {
    const text = readFileSync(new URL(name, dist), "utf8");
    const leaks = text.split("\n").filter((line) => /(:|<|\||,)\s*any\b|\bany\[\]/.test(line));
    assert.deepEqual(leaks, [], name);
  }
});
