// Compile-time checks of the published declarations (dist/*.d.ts): `npm run build` type-checks
// this file and fails on any error, including an unused @ts-expect-error.
import WebSocketNode from "ws";
import {
  CacheWarmingClient,
  ERROR_HTTP_STATUS,
  HttpApi,
  countdown,
  fieldsById,
  readPanel,
  type AckFrame,
  type ChatFrame,
  type ClientError,
  type ClientEvents,
  type Conversation,
  type ConversationDetail,
  type ErrorCode,
  type PongFrame,
  type SurfaceFrame,
  type UpdateFrame,
  type WarmingStatus,
} from "../dist/index.js";
import { parseMarkdown, renderMarkdown } from "../dist/markdown.js";

type IsAny<T> = 0 extends 1 & T ? true : false;
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assert<T extends true>(): T | void {}

// Both the browser's WebSocket and the `ws` package's fit the client's socket option.
new CacheWarmingClient({ url: "ws://x", token: "t", createSocket: (url) => new WebSocket(url) });
new CacheWarmingClient({ url: "ws://x", token: () => "t", createSocket: (url) => new WebSocketNode(url) });

declare const client: CacheWarmingClient;
declare const api: HttpApi;

assert<Equal<ReturnType<typeof client.ping>, Promise<PongFrame>>>();
assert<Equal<ReturnType<typeof client.subscribeSurface>, Promise<SurfaceFrame>>>();
assert<Equal<ReturnType<typeof client.toggle>, Promise<UpdateFrame>>>();
assert<Equal<ReturnType<typeof client.closeConversation>, Promise<AckFrame>>>();
const pong = client.request({ type: "ping" });
assert<Equal<typeof pong, Promise<PongFrame>>>();
const update = client.request({
  type: "invoke",
  surfaceId: "cache-warming",
  conversationId: "c",
  action: "cache-warming/set-interval",
  payload: 60,
});
assert<Equal<typeof update, Promise<UpdateFrame>>>();
const ack = client.request({ type: "chat.subscribe", conversationId: "c" });
assert<Equal<typeof ack, Promise<AckFrame>>>();

// @ts-expect-error: an interval is a number of seconds
void client.setInterval("c", "20");
// @ts-expect-error: not a frame type of the contract
void client.request({ type: "chat.resume", conversationId: "c" });
// @ts-expect-error: set-interval needs its payload
void client.request({ type: "invoke", surfaceId: "cache-warming", conversationId: "c", action: "cache-warming/set-interval" });
// @ts-expect-error: the only surface is cache-warming
void client.request({ type: "subscribe", surfaceId: "other", conversationId: "c" });

// Error codes and their HTTP statuses are exhaustive and typed.
const status: number = ERROR_HTTP_STATUS.turn_in_progress;
void status;
// @ts-expect-error: not an error code
void ERROR_HTTP_STATUS.nope;
declare const failure: ClientError;
if (failure.code === "not_found") assert<Equal<typeof failure.code, "not_found">>();

// Events carry typed frames; chat frames narrow by event.
client.on("chat", (frame) => {
  assert<Equal<typeof frame, ChatFrame>>();
  if (frame.event === "turn-sealed") {
    // Both are null for a reply stopped at the generate function's deadline.
    const cost: number | null = frame.costUsd;
    const read: number | undefined = frame.usage?.cache_read_input_tokens;
    void cost;
    void read;
  }
  // @ts-expect-error: deltas carry no usage
  if (frame.event === "delta") void frame.usage;
});
client.on("update", (frame) => {
  const fields = fieldsById(frame.fields);
  const next: number | null = fields.timer.value.nextWarmAt;
  const statusValue: WarmingStatus = fields.status.value;
  // @ts-expect-error: not a status of the contract
  const wrong: WarmingStatus = "stopped";
  void next;
  void statusValue;
  void wrong;
  const panel = readPanel(frame.fields);
  assert<Equal<typeof panel.status, WarmingStatus>>();
});
// @ts-expect-error: not an event of the client
client.on("surfaces", () => undefined);

// HTTP helpers return the contract's shapes.
assert<Equal<ReturnType<typeof api.getConversation>, Promise<ConversationDetail>>>();
assert<Equal<ReturnType<typeof api.listConversations>, Promise<readonly Conversation[]>>>();

// No `any` leaks from the public API.
assert<IsAny<ClientEvents[keyof ClientEvents]> extends false ? true : false>();
assert<IsAny<Awaited<ReturnType<typeof api.getConversation>>["turns"][number]> extends false ? true : false>();
assert<IsAny<ReturnType<typeof countdown>> extends false ? true : false>();
assert<IsAny<ReturnType<typeof parseMarkdown>> extends false ? true : false>();
const fragment: DocumentFragment = renderMarkdown("**hi**", document);
void fragment;
const code: ErrorCode = "rate_limited";
void code;
