/* Local-stack web page: conversations, streaming chat, and the cache-warming surface.
 *
 * All networking goes through the typed client package (clients/js, served at /client/ from
 * its build): HttpApi for the REST routes, CacheWarmingClient for the WebSocket (requestId
 * matching, reconnect with backoff, subscriptions restored after every reconnect, keep-alive
 * pings, a fresh socket before the gateway's 2-hour limit). This file only keeps page state and
 * renders it. The page reads {httpUrl, wsUrl, token, anthropic, wsLimits} from
 * /devstack/config.json.
 */

// The client package's build, served from clients/js/dist. Imported dynamically so that a stack
// started without building it (`python -m devstack` instead of `make up`) says so on the page.
const [lib, markdown] = await Promise.all([
  import("/client/index.js"),
  import("/client/markdown.js"),
]).catch((error) => {
  document.querySelector(".conn-text").textContent = "client package missing";
  document.querySelector("[data-testid=connection]").dataset.state = "down";
  document.querySelector("[data-testid=panel-body]").textContent =
    "The page could not load the client package (clients/js/dist): run `make client`, or start the stack with `make up`.";
  throw error;
});
const { CacheWarmingClient, ClientError, HttpApi, SURFACE_ID, TIMER_COMPONENT, countdown, formatAgo, formatDuration } = lib;
const { renderMarkdown } = markdown;
const { HistoryChart } = await import("/web/chart.js");

// -----------------------------------------------------------------------------------------------
// Constants

const TICK_MS = 250;
// A reply that has been "generating" this long without a chat frame is checked over HTTP: its
// end may have been missed (a frame lost while reconnecting, or one too large for the gateway).
const STALE_TURN_MS = 6000;

// A long-enough system prompt so the prompt cache has something to keep warm: the model's
// minimum cacheable prefix is 1024-4096 tokens (about 4 characters a token).
const SYSTEM_PARAGRAPH =
  "You are a careful, friendly assistant inside a chat application. Answer the user's " +
  "questions accurately and concisely, prefer plain language over jargon, and say so " +
  "plainly when you do not know something instead of guessing. When the user asks for " +
  "code, give complete, runnable examples with a short explanation of what they do and " +
  "any assumptions they make. Keep a consistent tone across the conversation, remember " +
  "what the user told you earlier in it, and ask one clarifying question when a request " +
  "is ambiguous rather than answering a question that was not asked.";
const DEFAULT_SYSTEM = buildDefaultSystem(6000);

function buildDefaultSystem(minChars) {
  const parts = [];
  let length = 0;
  for (let i = 1; length < minChars; i += 1) {
    const part = `Guideline ${i}. ${SYSTEM_PARAGRAPH}`;
    parts.push(part);
    length += part.length + 2;
  }
  return parts.join("\n\n");
}

const STATUS_LABELS = {
  "off": "off",
  "waiting-for-first-turn": "waiting for first turn",
  "scheduled": "scheduled",
  "warming": "warming",
  "paused-idle": "paused (idle)",
  "cache-expired": "cache expired",
  "not-cacheable": "not cacheable",
  "error": "error",
  "closed": "closed",
  "context-full": "context full",
  "budget-exhausted": "budget used up",
};

// Stops that `toggle true` resumes (docs/contract.md, statuses): the panel offers one click.
const RESUMABLE = new Set(["paused-idle", "cache-expired", "error", "budget-exhausted"]);

// Each status that is not plain progress, said in place (docs/contract.md, "Statuses").
const STATUS_WHY = {
  "waiting-for-first-turn": "Nothing is cached yet: the first reply starts warming.",
  "paused-idle": "Paused: no message for as many warms as one rescue saves, so more warms would only cost. Resume, or send a message.",
  "cache-expired": "A warm would have come too late to find the cache alive, so none was sent. Resume, or send a message.",
  "error": "Three warms in a row failed upstream. Resume to try again.",
  "budget-exhausted": "Today's spend budget is used up; nothing was sent. Resume to try again (it renews at 00:00 UTC).",
  "not-cacheable": "The conversation is shorter than the model's minimum cacheable prompt: warming would only cost. A longer conversation starts it.",
  "context-full": "The conversation fills the model's context window: no further turn could use the cache. Start a new conversation.",
};

// An interval this many times shorter than the cache allows gets a warning: it keeps the same
// cache alive and only costs more (the interval field's costPerHourUsd says how much).
const SHORT_INTERVAL_RATIO = 1.5;

// data-testid of the control each known field id renders.
const FIELD_TESTIDS = {
  "enabled": "warming-toggle",
  "interval": "interval-input",
  "status": "status",
  "last-cache-pct": "cache-pct",
  "cache-retention": "cache-retention",
  "warm-cost": "warm-cost",
  "savings": "savings",
};

// -----------------------------------------------------------------------------------------------
// State

const state = {
  config: null,
  http: null,                   // HttpApi
  client: null,                 // CacheWarmingClient
  connection: { state: "connecting", retryAt: null },
  conversations: [],            // GET /conversations, newest first
  tabs: [],                     // open conversation ids, in tab order
  active: null,                 // the conversation id shown in the chat pane and the panel
  convs: new Map(),             // id -> ConversationState
};

function convState(id) {
  let conv = state.convs.get(id);
  if (!conv) {
    conv = {
      id,
      meta: null,                 // the conversation view from HTTP
      turns: new Map(),           // turnId -> turn
      fields: null,               // surface fields (latest surface/update)
      title: null,                // surface spec title
      loaded: false,
      cancelling: false,
      closing: false,
      lastChatAt: 0,              // when a chat frame last arrived (stale-turn check)
      checking: false,
    };
    state.convs.set(id, conv);
  }
  return conv;
}

const emulated = () => state.config && state.config.anthropic === "emulator";

// -----------------------------------------------------------------------------------------------
// DOM helpers

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "testid") node.dataset.testid = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const nf = new Intl.NumberFormat("en-US");

function fmtInt(n) {
  return n === null || n === undefined ? "—" : nf.format(n);
}

function fmtUsd(x) {
  if (x === null || x === undefined) return "—";
  if (x === 0) return "$0";
  const abs = Math.abs(x);
  const digits = abs >= 1 ? 2 : abs >= 0.01 ? 4 : 6;
  return `$${x.toFixed(digits)}`;
}

function fmtClock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function fmtDate(ms) {
  const d = new Date(ms);
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return fmtClock(ms);
  return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function toast(message, kind = "error") {
  const node = el("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status", testid: "toast", "data-kind": kind, text: message });
  $(".toasts").append(node);
  setTimeout(() => node.classList.add("leaving"), 5500);
  setTimeout(() => node.remove(), 6000);
}

// -----------------------------------------------------------------------------------------------
// Configuration and the two clients

async function loadConfig() {
  const response = await fetch("/devstack/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`/devstack/config.json answered HTTP ${response.status}`);
  const config = await response.json();
  const httpUrl = (config.httpUrl || window.location.origin).replace(/\/+$/, "");
  state.config = { ...config, httpUrl };
}

/** The token for the next connection attempt; after repeated failures the stack may have been
 *  restarted with a new one, so the config is read again. */
async function currentToken() {
  if (state.client && state.connection.attempt >= 2) {
    try {
      await loadConfig();
    } catch (_error) {
      // keep the old config; the next attempt tries again
    }
  }
  return state.config.token;
}

function socketTimings() {
  // Keep the socket alive within this gateway's limits (the stack can run shortened ones).
  const limits = state.config.wsLimits || {};
  const idleMs = (limits.idleTimeoutSeconds || 600) * 1000;
  const lifetimeMs = (limits.maxConnectionSeconds || 7200) * 1000;
  return {
    pingIntervalMs: Math.min(5 * 60_000, Math.floor(idleMs / 3)),
    maxConnectionMs: Math.max(1000, lifetimeMs - Math.min(5 * 60_000, Math.floor(lifetimeMs / 10))),
  };
}

function createClients() {
  state.http = new HttpApi({ baseUrl: state.config.httpUrl, token: () => state.config.token });
  const client = new CacheWarmingClient({
    url: state.config.wsUrl,
    token: currentToken,
    requestTimeoutMs: 15_000,
    backoff: { initialMs: 500, maxMs: 10_000 },
    ...socketTimings(),
  });
  client.on("state", onConnectionState);
  client.on("surface", (frame) => applySurface(frame.conversationId, frame.spec));
  client.on("update", (frame) => {
    applyFields(frame.conversationId, frame.fields);
    if (state.chart) state.chart.onUpdate(frame.conversationId, frame.cause);
  });
  client.on("chat", applyChat);
  client.on("error", (frame) => toast(`${frame.message} (${frame.code})`));
  client.on("unknown", (frame) => console.warn("a frame outside the contract", frame));
  client.on("resubscribed", onResubscribed);
  state.client = client;
}

function onConnectionState(change) {
  state.connection = {
    state: change.state,
    attempt: change.attempt,
    retryAt: change.retryInMs !== null ? Date.now() + change.retryInMs : null,
  };
  renderConnection();
}

/** After a reconnect the subscriptions are back; chat frames sent meanwhile are not: catch up. */
function onResubscribed(result) {
  // Tests (and curious users) can tell a reconnect that has restored its subscriptions.
  const badge = $("[data-testid=connection]");
  badge.dataset.resubscribed = String(Number(badge.dataset.resubscribed || 0) + 1);
  for (const failure of result.failed) {
    if (failure.error.code === "not_found") {
      toast("A conversation of an open tab no longer exists.");
      dropTab(failure.conversationId);
    }
  }
  refreshConversations();
  for (const id of state.tabs) loadConversation(id);
}

function renderConnection() {
  const node = $("[data-testid=connection]");
  const { state: current, retryAt } = state.connection;
  let kind = "connecting";
  let text = "connecting…";
  if (current === "open") {
    kind = "open";
    text = "live";
  } else if (current === "reconnecting") {
    kind = "down";
    const left = retryAt ? Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) : 0;
    text = left > 0 ? `disconnected · retrying in ${left} s` : "reconnecting…";
  } else if (current === "closed") {
    kind = "down";
    text = "closed";
  }
  node.dataset.state = kind;
  $(".conn-text", node).textContent = text;
}

function describeError(error) {
  return error instanceof ClientError ? error.message : String(error && error.message ? error.message : error);
}

// -----------------------------------------------------------------------------------------------
// Subscriptions

/** Subscribes a tab's conversation (surface and chat); the surface renders as it arrives. */
async function watch(id) {
  try {
    const surface = await state.client.watch(id);
    applySurface(id, surface.spec);
  } catch (error) {
    if (error instanceof ClientError && error.code === "not_found") {
      toast("That conversation no longer exists.");
      dropTab(id);
      refreshConversationsSoon();
    } else if (!(error instanceof ClientError && error.code === "closed")) {
      // Not fatal: the subscription is remembered and restored when the socket is back.
      console.warn("subscribing failed", id, error);
    }
  }
}

function unwatch(id) {
  state.client.unwatch(id).catch(() => undefined);
}

// -----------------------------------------------------------------------------------------------
// Conversations list and tabs

let refreshTimer = null;

function refreshConversationsSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshConversations, 300);
}

async function refreshConversations() {
  try {
    state.conversations = [...(await state.http.listConversations())];
    for (const c of state.conversations) {
      const conv = state.convs.get(c.conversationId);
      if (conv) conv.meta = { ...(conv.meta || {}), ...c };
    }
    renderConversationList();
    renderTabs();
  } catch (error) {
    toast(`Loading conversations failed: ${describeError(error)}`);
  }
}

async function newConversation() {
  const buttons = document.querySelectorAll("[data-action=new-conversation]");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const title = `Chat ${fmtClock(Date.now())}`;
    const conversation = await state.http.createConversation({ title, system: DEFAULT_SYSTEM });
    const conv = convState(conversation.conversationId);
    conv.meta = conversation;
    conv.loaded = true;
    state.conversations.unshift(conversation);
    renderConversationList();
    openTab(conversation.conversationId);
    $("[data-testid=composer]").focus();
  } catch (error) {
    toast(`Creating a conversation failed: ${describeError(error)}`);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function openTab(id) {
  const fresh = !state.tabs.includes(id);
  // The conversation's state must exist before its surface can arrive: a surface for a
  // conversation the page does not track is dropped (that was the panel that never rendered
  // when a conversation was opened from the list in a new browser session).
  convState(id);
  if (fresh) state.tabs.push(id);
  state.active = id;
  persistTabs();
  renderTabs();
  renderConversationList();
  renderChat();
  renderPanel();
  updateComposer();
  if (fresh) {
    watch(id);
    loadConversation(id);
  }
}

function activate(id) {
  if (state.active === id) return;
  state.active = id;
  persistTabs();
  renderTabs();
  renderConversationList();
  renderChat();
  renderPanel();
  updateComposer();
}

function dropTab(id) {
  const index = state.tabs.indexOf(id);
  if (index < 0) return;
  state.tabs.splice(index, 1);
  state.convs.delete(id);
  if (state.active === id) {
    state.active = state.tabs[Math.min(index, state.tabs.length - 1)] || null;
  }
  persistTabs();
  renderTabs();
  renderConversationList();
  renderChat();
  renderPanel();
  updateComposer();
}

function fieldOf(conv, id) {
  return conv && conv.fields ? conv.fields.find((f) => f.id === id) : undefined;
}

/** What closing the conversation would stop, in words (empty: nothing is running). */
function whatClosingStops(conv) {
  const stops = [];
  if (isGenerating(conv)) stops.push("stops the reply being written (what has arrived is kept)");
  const enabled = fieldOf(conv, "enabled");
  if (enabled && enabled.value) {
    const timer = fieldOf(conv, "timer");
    const next = timer && timer.value ? countdown(timer.value.nextWarmAt) : null;
    const when = next && next.state === "future" ? ` (next warm ${next.text})` : "";
    stops.push(`turns cache warming off${when}`);
  }
  return stops;
}

/** Asks before closing a conversation that is doing something; resolves true to go on. */
function confirmClose(conv, stops) {
  const dialog = $("[data-testid=close-dialog]");
  $("[data-testid=close-dialog-title]").textContent = `Close “${conversationTitle(conv.id)}”?`;
  $("[data-testid=close-dialog-text]").textContent =
    `Closing ${stops.join(" and ")}. The conversation stays in the list; a new message reopens it.`;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "close"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/** The tab's ×: closes the conversation (warming off, in-flight turn aborted), then drops it,
 * asking first when a reply is streaming or warming is on, and saying afterwards what stopped. */
async function closeTab(id) {
  const conv = convState(id);
  if (conv.closing) return;
  const stops = whatClosingStops(conv);
  if (stops.length > 0 && !(await confirmClose(conv, stops))) return;
  const title = conversationTitle(id);
  conv.closing = true;
  renderTabs();
  try {
    await state.client.closeConversation(id);
  } catch (error) {
    const code = error instanceof ClientError ? error.code : null;
    if (code === "disconnected" || code === "timeout" || code === "closed") {
      // The socket is not there right now: the same close over HTTP.
      try {
        await state.http.closeConversation(id);
      } catch (httpError) {
        conv.closing = false;
        renderTabs();
        toast(`Closing failed: ${describeError(httpError)}`);
        return;
      }
    } else if (code !== "not_found") {
      conv.closing = false;
      renderTabs();
      toast(`Closing failed: ${describeError(error)}`);
      return;
    }
  }
  unwatch(id);
  dropTab(id);
  refreshConversationsSoon();
  const done = stops.map((stop) => stop.replace(/^stops/, "stopped").replace(/^turns/, "turned").replace(/ \(next warm [^)]*\)/, ""));
  toast(done.length ? `Closed “${title}”: ${done.join("; ")}.` : `Closed “${title}”.`, "info");
}

function persistTabs() {
  try {
    localStorage.setItem("devstack.tabs", JSON.stringify({ tabs: state.tabs, active: state.active }));
  } catch (_error) {
    // storage unavailable: tabs are simply not restored
  }
}

function restoreTabs() {
  try {
    const saved = JSON.parse(localStorage.getItem("devstack.tabs") || "null");
    if (saved && Array.isArray(saved.tabs)) {
      state.tabs = saved.tabs.filter((id) => typeof id === "string");
      state.active = state.tabs.includes(saved.active) ? saved.active : state.tabs[0] || null;
    }
  } catch (_error) {
    state.tabs = [];
  }
  for (const id of state.tabs) convState(id);
}

async function loadConversation(id) {
  let data;
  try {
    data = await state.http.getConversation(id);
  } catch (error) {
    if (error instanceof ClientError && error.status === 404) {
      dropTab(id);
      refreshConversationsSoon();
    } else {
      toast(`Loading the conversation failed: ${describeError(error)}`);
    }
    return;
  }
  if (!state.tabs.includes(id)) return;
  const conv = convState(id);
  const { turns, ...meta } = data;
  conv.meta = meta;
  for (const t of turns || []) {
    const known = conv.turns.get(t.turnId);
    const fromHistory = {
      turnId: t.turnId,
      index: t.index,
      userText: t.userText,
      text: t.assistantText || "",
      status: t.status,
      usage: t.usage,
      costUsd: known ? known.costUsd : null,
      errorCode: t.errorCode,
      errorMessage: known ? known.errorMessage : null,
      abortReason: t.abortReason,
      // Opened while the reply streams: the text so far is not stored until it ends, so the
      // page shows what arrives from now on and the whole reply once it is sealed.
      joinedLate: t.status === "generating" && !(known && known.text),
    };
    if (!known) {
      conv.turns.set(t.turnId, fromHistory);
    } else if (t.status !== "generating") {
      // Finished on the server: the stored record is authoritative (frames may have been missed).
      Object.assign(known, fromHistory, { joinedLate: false });
    }
  }
  conv.loaded = true;
  conv.lastChatAt = Date.now();
  if (state.active === id) {
    renderChat();
    updateComposer();
  }
  renderTabs();
}

function conversationTitle(id) {
  const conv = state.convs.get(id);
  const fromList = state.conversations.find((c) => c.conversationId === id);
  return (conv && conv.meta && conv.meta.title) || (fromList && fromList.title) || id.slice(0, 8);
}

function surfaceStatus(conv) {
  if (conv && conv.fields) {
    const f = conv.fields.find((x) => x.id === "status");
    if (f) return f.value;
  }
  if (conv && conv.meta && conv.meta.warming) return conv.meta.warming.status;
  return null;
}

function renderTabs() {
  const nav = $("[data-testid=tabs]");
  nav.replaceChildren(
    ...state.tabs.map((id) => {
      const conv = state.convs.get(id);
      const status = surfaceStatus(conv);
      const active = id === state.active;
      return el(
        "div",
        {
          class: `tab${active ? " active" : ""}${conv && conv.closing ? " closing" : ""}`,
          testid: "tab",
          "data-conversation-id": id,
          role: "tab",
          "aria-selected": active ? "true" : "false",
        },
        el(
          "button",
          { type: "button", class: "tab-title", title: id, onclick: () => activate(id) },
          el("span", { class: `dot status-${status || "off"}`, title: status ? `warming: ${STATUS_LABELS[status] || status}` : "" }),
          conversationTitle(id),
        ),
        el("button", {
          type: "button",
          class: "tab-close",
          testid: "tab-close",
          title: "Close the conversation (stops warming and any reply in progress)",
          "aria-label": `Close ${conversationTitle(id)}`,
          onclick: (event) => { event.stopPropagation(); closeTab(id); },
          text: "×",
        }),
      );
    }),
  );
  nav.hidden = state.tabs.length === 0;
}

function renderConversationList() {
  const list = $("[data-testid=conversation-list]");
  if (state.conversations.length === 0) {
    list.replaceChildren(el("li", { class: "muted empty", text: "No conversations yet." }));
    return;
  }
  list.replaceChildren(
    ...state.conversations.map((c) => {
      const warming = c.warming || {};
      const status = c.closed ? "closed" : warming.status || "off";
      const open = state.tabs.includes(c.conversationId);
      return el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: `conv-item${c.conversationId === state.active ? " active" : ""}${open ? " open" : ""}`,
            testid: "conversation-item",
            "data-conversation-id": c.conversationId,
            onclick: () => openTab(c.conversationId),
          },
          el("span", { class: "conv-title", text: c.title || c.conversationId }),
          el(
            "span",
            { class: "conv-meta" },
            `${fmtDate(c.createdAt)} · ${c.turnCount} turn${c.turnCount === 1 ? "" : "s"}`,
          ),
          el("span", { class: `badge small status-${status}`, text: STATUS_LABELS[status] || status }),
        ),
      );
    }),
  );
}

// -----------------------------------------------------------------------------------------------
// Chat

function sortedTurns(conv) {
  return [...conv.turns.values()].sort((a, b) => (a.index ?? 1e9) - (b.index ?? 1e9) || (a.turnId < b.turnId ? -1 : 1));
}

function isGenerating(conv) {
  if (!conv) return false;
  for (const t of conv.turns.values()) if (t.status === "generating") return true;
  return false;
}

function renderChat() {
  const list = $("[data-testid=messages]");
  const empty = $("[data-testid=empty-state]");
  const conv = state.active ? state.convs.get(state.active) : null;
  empty.hidden = Boolean(conv);
  if (!conv) {
    list.replaceChildren();
    return;
  }
  const nodes = sortedTurns(conv).map(turnNode);
  if (nodes.length === 0) {
    nodes.push(
      el(
        "li",
        { class: "chat-hint muted" },
        conv.loaded
          ? "Say something to start. Once the first reply is sealed, its prompt is in the cache and warming (right) can keep it there."
          : "Loading…",
      ),
    );
  }
  list.replaceChildren(...nodes);
  scrollToBottom(true);
}

function turnNode(turn) {
  const li = el("li", { class: "turn", "data-turn-id": turn.turnId });
  fillTurn(li, turn);
  return li;
}

/** The reply's text as safe Markdown (no HTML from the reply ever reaches the page). */
function replyBody(turn) {
  const body = el("div", { class: "msg-text markdown" });
  if (turn.joinedLate && turn.status === "generating") {
    body.append(el("p", { class: "muted joined-late", testid: "joined-late", text: "…the beginning of this reply appears when it is complete." }));
  }
  body.append(renderMarkdown(turn.text || ""));
  if (turn.status === "generating") body.append(el("span", { class: "caret", "aria-hidden": "true" }));
  return body;
}

function fillTurn(li, turn) {
  li.dataset.status = turn.status;
  const user = el(
    "div",
    { class: "msg user", testid: "message-user" },
    el("div", { class: "msg-role", text: "You" }),
    el("div", { class: "msg-text", text: turn.userText || "" }),
  );
  const assistant = el(
    "div",
    {
      class: `msg assistant ${turn.status}`,
      testid: "message-assistant",
      "data-turn-id": turn.turnId,
      "data-status": turn.status,
    },
    el("div", { class: "msg-role" }, "Assistant", emulatedTag(), statusTag(turn)),
    replyBody(turn),
    turnFooter(turn),
  );
  li.replaceChildren(user, assistant);
}

function emulatedTag() {
  if (!emulated()) return null;
  return el("span", {
    class: "tag emulated",
    testid: "emulated",
    title: "Written by the local stack's Anthropic emulator (no model, no API key): placeholder words, real cache accounting.",
    text: "emulated",
  });
}

function statusTag(turn) {
  switch (turn.status) {
    case "generating":
      return el("span", { class: "tag live", text: "streaming" });
    case "aborted":
      return el("span", { class: "tag warn", text: `aborted${turn.abortReason ? ` (${turn.abortReason})` : ""}` });
    case "failed":
      return el("span", { class: "tag bad", text: "failed" });
    default:
      return null;
  }
}

function turnFooter(turn) {
  if (turn.status === "failed") {
    const message = turn.errorMessage || "The reply failed.";
    return el("div", { class: "msg-error", testid: "turn-error", text: `${message}${turn.errorCode ? ` (${turn.errorCode})` : ""}` });
  }
  if (turn.status === "aborted" && !turn.text) {
    return el("div", { class: "msg-meta", text: "No text was generated before the reply was stopped." });
  }
  if (turn.status !== "sealed" || !turn.usage) return null;
  const u = turn.usage;
  const inputTotal = (u.input_tokens || 0) + (u.cache_read_input_tokens || 0) + (u.cache_creation_input_tokens || 0);
  const pct = inputTotal ? ((100 * (u.cache_read_input_tokens || 0)) / inputTotal).toFixed(1) : null;
  const parts = [
    `in ${fmtInt(u.input_tokens)}`,
    `cache read ${fmtInt(u.cache_read_input_tokens)}`,
    `cache write ${fmtInt(u.cache_creation_input_tokens)}`,
    `out ${fmtInt(u.output_tokens)}`,
  ];
  if (pct !== null) parts.push(`${pct} % cached`);
  if (turn.costUsd !== null && turn.costUsd !== undefined) parts.push(fmtUsd(turn.costUsd));
  return el("div", { class: "msg-meta", testid: "turn-usage", text: parts.join(" · ") });
}

function scrollToBottom(force) {
  const pane = $("[data-testid=chat-pane]");
  const near = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 120;
  if (force || near) pane.scrollTop = pane.scrollHeight;
}

function upsertTurn(conv, turn) {
  if (state.active !== conv.id) return;
  const list = $("[data-testid=messages]");
  const hint = $(".chat-hint", list);
  if (hint) hint.remove();
  let li = list.querySelector(`li.turn[data-turn-id="${CSS.escape(turn.turnId)}"]`);
  if (!li) {
    li = turnNode(turn);
    const after = [...list.querySelectorAll("li.turn")].find((node) => {
      const other = conv.turns.get(node.dataset.turnId);
      return other && other.index !== undefined && turn.index !== undefined && other.index > turn.index;
    });
    list.insertBefore(li, after || null);
  } else {
    fillTurn(li, turn);
  }
  scrollToBottom(false);
}

// Deltas re-render the reply's Markdown at most once a frame.
const pendingRenders = new Map();

function scheduleReplyRender(conv, turn) {
  if (state.active !== conv.id) return;
  pendingRenders.set(turn.turnId, { conv, turn });
  if (pendingRenders.size > 1) return;
  requestAnimationFrame(() => {
    const jobs = [...pendingRenders.values()];
    pendingRenders.clear();
    for (const job of jobs) {
      const list = $("[data-testid=messages]");
      const li = list.querySelector(`li.turn[data-turn-id="${CSS.escape(job.turn.turnId)}"]`);
      if (!li) {
        upsertTurn(job.conv, job.turn);
        continue;
      }
      $(".msg.assistant .msg-text", li).replaceWith(replyBody(job.turn));
      scrollToBottom(false);
    }
  });
}

function applyChat(frame) {
  const id = frame.conversationId;
  if (!state.tabs.includes(id)) return;
  const conv = convState(id);
  conv.lastChatAt = Date.now();
  let turn = conv.turns.get(frame.turnId);
  if (!turn) {
    turn = { turnId: frame.turnId, index: indexFromTurnId(frame.turnId), userText: "", text: "", status: "generating" };
    conv.turns.set(frame.turnId, turn);
  }
  switch (frame.event) {
    case "turn-started":
      turn.userText = frame.userText ?? turn.userText;
      turn.status = "generating";
      turn.joinedLate = false;
      upsertTurn(conv, turn);
      break;
    case "delta":
      if (turn.status !== "generating") break; // a late delta after the end
      // Offsets make deltas idempotent and let a late subscriber's catch-up (offset 0) replace
      // what it had: the reply is what precedes the offset plus this text.
      turn.text = turn.text.slice(0, frame.offset ?? turn.text.length) + (frame.text || "");
      scheduleReplyRender(conv, turn);
      break;
    case "turn-sealed":
      Object.assign(turn, { status: "sealed", text: endText(turn, frame), usage: frame.usage || null, costUsd: frame.costUsd ?? null, joinedLate: false });
      conv.cancelling = false;
      upsertTurn(conv, turn);
      refreshConversationsSoon();
      if (frame.textTruncated) loadConversation(id); // the whole text is stored; read it
      break;
    case "turn-aborted":
      Object.assign(turn, { status: "aborted", text: endText(turn, frame), abortReason: frame.reason || null, joinedLate: false });
      conv.cancelling = false;
      upsertTurn(conv, turn);
      refreshConversationsSoon();
      break;
    case "turn-failed":
      Object.assign(turn, { status: "failed", text: endText(turn, frame), errorCode: frame.code || null, errorMessage: frame.message || null, joinedLate: false });
      conv.cancelling = false;
      upsertTurn(conv, turn);
      refreshConversationsSoon();
      break;
    default:
      console.warn("unknown chat event", frame);
  }
  if (state.active === id) updateComposer();
}

function indexFromTurnId(turnId) {
  const m = /(\d+)$/.exec(turnId || "");
  return m ? Number(m[1]) : undefined;
}

/** A turn's last frame carries the whole text, unless it was cut to fit API Gateway's 128 KB
 * (`textTruncated`): then the deltas already shown are the fuller text until HTTP has it. */
function endText(turn, frame) {
  if (frame.text === undefined) return turn.text;
  if (frame.textTruncated && turn.text.length > frame.text.length) return turn.text;
  return frame.text;
}

/** A reply quiet for a while is checked over HTTP: its last frame may never have arrived. */
function checkStaleTurns() {
  const now = Date.now();
  for (const id of state.tabs) {
    const conv = state.convs.get(id);
    if (!conv || conv.checking || !isGenerating(conv) || now - conv.lastChatAt < STALE_TURN_MS) continue;
    conv.checking = true;
    loadConversation(id).finally(() => {
      conv.checking = false;
      conv.lastChatAt = Date.now();
    });
  }
}

// -----------------------------------------------------------------------------------------------
// Composer

function updateComposer() {
  const conv = state.active ? state.convs.get(state.active) : null;
  const textarea = $("[data-testid=composer]");
  const send = $("[data-testid=send]");
  const cancel = $("[data-testid=cancel]");
  const generating = isGenerating(conv);
  textarea.disabled = !conv;
  send.disabled = !conv || generating || sending;
  cancel.hidden = !generating;
  cancel.disabled = Boolean(conv && conv.cancelling);
  cancel.textContent = conv && conv.cancelling ? "Cancelling…" : "Cancel";
  if (!conv) setNotice("");
}

function setNotice(text, kind = "info") {
  const node = $("[data-testid=composer-notice]");
  node.textContent = text;
  node.dataset.kind = kind;
}

let sending = false;

async function sendMessage() {
  const id = state.active;
  const textarea = $("[data-testid=composer]");
  const text = textarea.value;
  if (!id || !text.trim() || sending) return;
  sending = true;
  updateComposer();
  setNotice("");
  try {
    const result = await state.http.startTurn(id, text);
    textarea.value = "";
    const conv = convState(id);
    conv.lastChatAt = Date.now();
    if (!conv.turns.has(result.turnId)) {
      const turn = { turnId: result.turnId, index: result.index, userText: text, text: "", status: "generating" };
      conv.turns.set(result.turnId, turn);
      upsertTurn(conv, turn);
    } else {
      conv.turns.get(result.turnId).index = result.index;
    }
  } catch (error) {
    const code = error instanceof ClientError ? error.code : null;
    if (code === "turn_in_progress") {
      setNotice("A reply is still being generated. Wait for it, or cancel it first.", "warn");
      loadConversation(id); // show the turn that is generating, if this page missed it
    } else if (code === "rate_limited") {
      setNotice(`${describeError(error)} (your message is still in the box).`, "warn");
    } else if (code === "invalid_text") {
      setNotice(describeError(error), "error");
    } else {
      setNotice(`Sending failed: ${describeError(error)}`, "error");
    }
  } finally {
    sending = false;
    updateComposer();
  }
}

async function cancelTurn() {
  const id = state.active;
  if (!id) return;
  const conv = convState(id);
  conv.cancelling = true;
  updateComposer();
  try {
    const result = await state.http.cancelTurn(id);
    if (!result.aborting) {
      conv.cancelling = false;
      loadConversation(id);
    }
  } catch (error) {
    conv.cancelling = false;
    toast(`Cancelling failed: ${describeError(error)}`);
  }
  updateComposer();
}

// -----------------------------------------------------------------------------------------------
// The cache-warming surface, rendered generically from its fields

const panel = {
  conversationId: null,
  signature: null,              // "id:kind,..." of the built controls
  controls: new Map(),          // field id -> {update(field), tick?()}
};

function applySurface(id, spec) {
  if (!state.tabs.includes(id)) return;
  const conv = convState(id);
  conv.title = spec.title || "Cache warming";
  conv.fields = spec.fields || [];
  if (state.active === id) renderPanel(true);
  renderTabs();
}

function applyFields(id, fields) {
  if (!state.tabs.includes(id)) return;
  const conv = convState(id);
  const before = surfaceStatus(conv);
  conv.fields = fields;
  if (state.active === id) renderPanel(false);
  if (surfaceStatus(conv) !== before) {
    renderTabs();
    refreshConversationsSoon();
  }
}

function signatureOf(fields) {
  return fields.map((f) => `${f.id}:${f.kind}:${f.component || ""}`).join(",");
}

/** Builds the controls when the field set changes, otherwise updates them in place. */
function renderPanel(rebuild = true) {
  const body = $("[data-testid=panel-body]");
  const conv = state.active ? state.convs.get(state.active) : null;
  if (state.chart) state.chart.show(state.active);
  $("[data-testid=panel-conversation]").textContent = conv ? conversationTitle(conv.id) : "";
  body.dataset.conversationId = conv && conv.fields ? conv.id : "";
  if (!conv || !conv.fields) {
    panel.conversationId = null;
    panel.signature = null;
    panel.controls.clear();
    body.replaceChildren(
      el("p", { class: "muted", text: conv ? "Loading…" : "Open a conversation to control its cache warming." }),
    );
    return;
  }
  $(".panel-title").textContent = conv.title || "Cache warming";
  const signature = signatureOf(conv.fields);
  if (rebuild || panel.conversationId !== conv.id || panel.signature !== signature) {
    panel.conversationId = conv.id;
    panel.signature = signature;
    panel.controls.clear();
    body.replaceChildren(...conv.fields.map((field) => buildField(conv.id, field)));
  }
  for (const field of conv.fields) {
    const control = panel.controls.get(field.id);
    if (control) control.update(field);
  }
  tickPanel();
}

function tickPanel() {
  for (const control of panel.controls.values()) if (control.tick) control.tick();
}

function fieldRow(field, ...children) {
  return el(
    "div",
    { class: `field kind-${field.kind}`, "data-field-id": field.id, "data-kind": field.kind },
    el("div", { class: "field-label", text: field.label || field.id }),
    el("div", { class: "field-value" }, ...children),
  );
}

function fieldTestid(field) {
  return FIELD_TESTIDS[field.id] || `field-${field.id}`;
}

/** Runs a field's action: the reply is an update (also applied through the client's event). */
function invoke(conversationId, action, payload) {
  return state.client.request({ type: "invoke", surfaceId: SURFACE_ID, conversationId, action, payload });
}

function buildField(conversationId, field) {
  switch (field.kind) {
    case "toggle": return buildToggle(conversationId, field);
    case "number": return buildNumber(conversationId, field);
    case "custom":
      if (field.component === TIMER_COMPONENT) return buildTimer(field);
      return buildFallback(field);
    case "status": return buildStatus(field);
    case "percent": return buildPercent(field);
    // Two cost fields share the kind: warm-cost (tokens and dollars) and savings (spent/saved/net).
    case "cost": return field.value && "netUsd" in field.value ? buildSavings(field) : buildCost(field);
    case "text": return buildText(field);
    default: return buildFallback(field);
  }
}

function buildToggle(conversationId, field) {
  const input = el("input", { type: "checkbox", role: "switch", testid: fieldTestid(field) });
  const state_ = el("span", { class: "switch-state" });
  const error = el("div", { class: "field-error", testid: `${field.id}-error` });
  let pending = false;
  input.addEventListener("change", async () => {
    const wanted = input.checked;
    pending = true;
    input.disabled = true;
    error.textContent = "";
    try {
      await invoke(conversationId, field.action, wanted);
    } catch (err) {
      input.checked = !wanted;
      error.textContent = describeError(err);
    } finally {
      pending = false;
      input.disabled = false;
    }
  });
  const row = fieldRow(
    field,
    el("label", { class: "switch" }, input, el("span", { class: "switch-track", "aria-hidden": "true" }), state_),
    error,
  );
  panel.controls.set(field.id, {
    update(f) {
      if (!pending) input.checked = Boolean(f.value);
      state_.textContent = f.value ? "on" : "off";
      input.setAttribute("aria-label", f.label || f.id);
    },
  });
  return row;
}

function buildNumber(conversationId, field) {
  const input = el("input", { type: "number", step: "1", inputmode: "numeric", testid: fieldTestid(field) });
  const apply = el("button", { type: "submit", class: "btn small", testid: `${field.id}-apply`, text: "Apply" });
  const unit = el("span", { class: "unit" });
  const hint = el("div", { class: "field-hint" });
  const perHour = el("div", { class: "field-hint", testid: `${field.id}-cost-per-hour` });
  const warning = el("div", { class: "field-warn", testid: `${field.id}-warning` });
  const error = el("div", { class: "field-error", testid: `${field.id}-error`, role: "alert" });
  let dirty = false;
  let current = null;
  input.addEventListener("input", () => {
    dirty = true;
    error.textContent = "";
  });
  const form = el(
    "form",
    {
      class: "number-form",
      novalidate: true, // the server validates; its error is shown next to the input
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        const raw = input.value.trim();
        if (raw === "" || !Number.isFinite(Number(raw))) {
          error.textContent = "Enter a number of seconds.";
          return;
        }
        apply.disabled = true;
        try {
          await invoke(conversationId, field.action, Number(raw));
          dirty = false;
          input.value = current;
        } catch (err) {
          error.textContent = describeError(err);
        } finally {
          apply.disabled = false;
        }
      },
    },
    input,
    unit,
    apply,
  );
  const row = fieldRow(field, form, hint, perHour, warning, error);
  panel.controls.set(field.id, {
    update(f) {
      current = f.value;
      const cost = f.costPerHourUsd;
      perHour.textContent = cost === null || cost === undefined ? "" : `≈ ${fmtUsd(cost)} per hour of warming at this interval`;
      const ratio = f.max && f.value ? f.max / f.value : 1;
      warning.textContent = ratio >= SHORT_INTERVAL_RATIO
        ? `Shorter than ${f.max} s only costs more: any interval up to ${f.max} s keeps the same cache alive; ${f.value} s warms ${ratio.toFixed(1)}× as often.`
        : "";
      if (f.min !== undefined) input.min = f.min;
      if (f.max !== undefined) input.max = f.max;
      unit.textContent = f.unit || "";
      const range = f.min !== undefined && f.max !== undefined ? `${f.min}–${f.max} ${f.unit || ""}`.trim() : "";
      hint.textContent = range ? `${range} allowed` : "";
      if (!dirty && document.activeElement !== input) input.value = f.value;
    },
  });
  return row;
}

function buildTimer(field) {
  const countdownNode = el("span", { class: "countdown", testid: "countdown", text: "—" });
  const at = el("span", { class: "countdown-at muted" });
  const bar = el("div", { class: "progress", "aria-hidden": "true" }, el("div", { class: "progress-fill" }));
  const expiry = el("span", { class: "cache-expiry", testid: "cache-expiry" });
  const left = el("span", { class: "warms-left", testid: "warms-left" });
  const last = el("span", { class: "last-warm", testid: "last-warm", text: "never" });
  const lastCost = el("span", { class: "last-warm-cost", testid: "last-warm-cost" });
  const row = el(
    "div",
    { class: "field kind-custom timer", "data-field-id": field.id, "data-kind": field.kind },
    el("div", { class: "field-label", text: field.label || "Next warm" }),
    el(
      "div",
      { class: "field-value" },
      el("div", { class: "countdown-line" }, countdownNode, at),
      bar,
      el("div", { class: "timer-facts muted" }, expiry, left),
    ),
    el("div", { class: "field-label", text: "Last warm" }),
    el("div", { class: "field-value" }, last, " ", lastCost),
  );
  let value = { nextWarmAt: null, lastWarmAt: null, cacheExpiresAt: null, warmsLeft: null };
  let intervalSeconds = null;
  const control = {
    update(f) {
      value = f.value || { nextWarmAt: null, lastWarmAt: null, cacheExpiresAt: null, warmsLeft: null };
      countdownNode.dataset.nextWarmAt = value.nextWarmAt ?? "";
      last.dataset.lastWarmAt = value.lastWarmAt ?? "";
      expiry.dataset.cacheExpiresAt = value.cacheExpiresAt ?? "";
      at.textContent = value.nextWarmAt ? `at ${fmtClock(value.nextWarmAt)}` : "";
      const conv = state.convs.get(panel.conversationId);
      const interval = fieldOf(conv, "interval");
      intervalSeconds = interval ? interval.value : null;
      const n = value.warmsLeft;
      left.textContent = value.nextWarmAt && n !== null && n !== undefined
        ? `${fmtInt(n)} warm${n === 1 ? "" : "s"} left before the idle pause`
        : "";
      left.dataset.value = n ?? "";
      // One "Last warm": when, and what it cost.
      const cost = fieldOf(conv, "warm-cost");
      const lastUsd = cost && cost.value ? cost.value.lastUsd : null;
      lastCost.textContent = value.lastWarmAt && lastUsd !== null && lastUsd !== undefined ? `· ${fmtUsd(lastUsd)}` : "";
      lastCost.title = cost && cost.value && cost.value.lastTokens ? `${fmtInt(cost.value.lastTokens)} tokens` : "";
    },
    tick() {
      const now = Date.now();
      // The client's countdown: a nextWarmAt in the past reads "waiting…", never "in 0 s".
      const view = countdown(value.nextWarmAt, now);
      countdownNode.textContent = view.text;
      countdownNode.dataset.state = view.state;
      if (view.state === "future") {
        const span = intervalSeconds || Math.max(view.secondsLeft, 1);
        const done = Math.min(1, Math.max(0, 1 - view.secondsLeft / span));
        bar.firstChild.style.width = `${(done * 100).toFixed(1)}%`;
      } else {
        bar.firstChild.style.width = view.state === "due" ? "100%" : "0%";
      }
      const expires = value.cacheExpiresAt;
      expiry.textContent = !expires ? ""
        : expires > now ? `cache expires in ${formatDuration(Math.ceil((expires - now) / 1000))}`
        : "cache expired";
      expiry.title = expires ? `at ${fmtClock(expires)}` : "";
      last.textContent = formatAgo(value.lastWarmAt, now);
      last.title = value.lastWarmAt ? new Date(value.lastWarmAt).toLocaleString() : "";
    },
  };
  panel.controls.set(field.id, control);
  return row;
}

function buildStatus(field) {
  const badge = el("span", { class: "badge", testid: fieldTestid(field) });
  const resume = el("button", { type: "button", class: "btn primary resume", testid: "resume", text: "Resume", hidden: true });
  const why = el("div", { class: "status-why", testid: "status-why" });
  const error = el("div", { class: "field-error", testid: "resume-error", role: "alert" });
  resume.addEventListener("click", async () => {
    const conv = state.convs.get(panel.conversationId);
    const enabled = fieldOf(conv, "enabled");
    if (!conv || !enabled) return;
    resume.disabled = true;
    error.textContent = "";
    try {
      await invoke(conv.id, enabled.action, true);  // toggle true resumes a resumable stop
    } catch (err) {
      error.textContent = describeError(err);
    } finally {
      resume.disabled = false;
    }
  });
  const row = fieldRow(field, el("div", { class: "status-line" }, badge, resume), why, error);
  panel.controls.set(field.id, {
    update(f) {
      badge.textContent = STATUS_LABELS[f.value] || String(f.value);
      badge.dataset.value = f.value;
      badge.className = `badge status-${f.value}`;
      const enabled = fieldOf(state.convs.get(panel.conversationId), "enabled");
      resume.hidden = !(enabled && enabled.value && RESUMABLE.has(f.value));
      why.textContent = (enabled && enabled.value) || f.value === "context-full" ? STATUS_WHY[f.value] || "" : "";
    },
  });
  return row;
}

function buildPercent(field) {
  const node = el("span", { class: "percent", testid: fieldTestid(field) });
  const meter = el("div", { class: "meter", "aria-hidden": "true" }, el("div", { class: "meter-fill" }));
  const row = fieldRow(field, node, meter);
  panel.controls.set(field.id, {
    update(f) {
      const v = f.value;
      node.textContent = v === null || v === undefined ? "—" : `${Number(v).toFixed(1)} %`;
      node.dataset.value = v ?? "";
      meter.firstChild.style.width = `${Math.max(0, Math.min(100, Number(v) || 0))}%`;
    },
  });
  return row;
}

function buildText(field) {
  const node = el("span", { class: "text-value", testid: fieldTestid(field) });
  // A text field may say where its value comes from (`setting`) and why (`reason`): the cache in
  // use does, for the auto cache.
  const reason = el("div", { class: "field-reason muted", testid: `${fieldTestid(field)}-reason` });
  const row = fieldRow(field, el("div", {}, node, reason));
  panel.controls.set(field.id, {
    update(f) {
      const text = f.value === null || f.value === undefined ? "—" : String(f.value);
      node.textContent = f.setting && f.setting !== f.value ? `${text} (${f.setting})` : text;
      node.dataset.value = f.value ?? "";
      node.dataset.setting = f.setting ?? "";
      reason.textContent = f.reason || "";
    },
  });
  return row;
}

function buildSavings(field) {
  const tile = (caption, testid) => {
    const main = el("div", { class: "tile-main", testid });
    const sub = el("div", { class: "tile-sub" });
    const node = el("div", { class: "tile" }, el("div", { class: "tile-caption", text: caption }), main, sub);
    return { node, main, sub };
  };
  const spent = tile("Spent", "savings-spent");
  const saved = tile("Saved", "savings-saved");
  const net = tile("Net", "savings-net");
  const node = el("div", { class: "cost savings", testid: fieldTestid(field) }, spent.node, saved.node, net.node);
  const note = el("div", {
    class: "field-note",
    testid: "rescue-note",
    text: "A rescue is a message that found the cache still alive only because warming refreshed it: "
      + "it read the conversation at the cache-read price instead of writing it again. Saved is that difference.",
  });
  const row = fieldRow(field, node, note);
  panel.controls.set(field.id, {
    update(f) {
      const v = f.value || {};
      const rescues = v.rescues ?? 0;
      spent.main.textContent = fmtUsd(v.spentUsd ?? 0);
      spent.sub.textContent = "on warms";
      saved.main.textContent = fmtUsd(v.savedUsd ?? 0);
      saved.sub.textContent = `${fmtInt(rescues)} rescue${rescues === 1 ? "" : "s"}`;
      const value = v.netUsd ?? 0;
      const spentUsd = v.spentUsd ?? 0;
      const savedUsd = v.savedUsd ?? 0;
      net.main.textContent = `${value < 0 ? "−" : ""}${fmtUsd(Math.abs(value))}`;
      net.node.dataset.sign = value < 0 ? "negative" : value > 0 ? "positive" : "zero";
      // Nothing "paid off" until a rescue saved something.
      if (spentUsd === 0 && savedUsd === 0) net.sub.textContent = "nothing spent yet";
      else if (savedUsd === 0) net.sub.textContent = "nothing paid off yet";
      else net.sub.textContent = value >= 0 ? "warming paid off" : "saved less than it cost so far";
      net.sub.dataset.testid = "savings-verdict";
      node.dataset.rescues = rescues;
      node.title = "Spent: every warm, including those after which nobody came back. Saved: per rescue (a turn that read the cache only because warming kept it alive), the re-write it avoided minus its read.";
    },
  });
  return row;
}

function buildCost(field) {
  const tile = (caption) => {
    const main = el("div", { class: "tile-main" });
    const sub = el("div", { class: "tile-sub" });
    const node = el("div", { class: "tile" }, el("div", { class: "tile-caption", text: caption }), main, sub);
    return { node, main, sub };
  };
  const warms = tile("Warms");
  const total = tile("Total");
  const node = el("div", { class: "cost two", testid: fieldTestid(field) }, warms.node, total.node);
  const note = el("div", {
    class: "field-note",
    testid: "first-warm-note",
    text: "The first warm after each reply costs more than the next ones: it writes that exchange "
      + "to the cache at the write price; the warms after it only read.",
  });
  const row = fieldRow(field, node, note);
  panel.controls.set(field.id, {
    update(f) {
      const v = f.value || {};
      warms.main.textContent = fmtInt(v.warms ?? 0);
      warms.sub.textContent = v.warms ? "sent" : "none yet";
      total.main.textContent = fmtUsd(v.totalUsd ?? 0);
      total.sub.textContent = `${fmtInt(v.totalTokens ?? 0)} tok`;
      node.dataset.warms = v.warms ?? 0;
      const noLast = v.lastTokens === null || v.lastTokens === undefined;
      node.title = `${v.warms ?? 0} warms; last ${noLast ? "none" : `${v.lastTokens} tokens, ${fmtUsd(v.lastUsd)}`}; total ${v.totalTokens ?? 0} tokens, ${fmtUsd(v.totalUsd ?? 0)}`;
    },
  });
  return row;
}

function buildFallback(field) {
  const node = el("code", { class: "raw", testid: fieldTestid(field) });
  const row = fieldRow(field, node);
  panel.controls.set(field.id, {
    update(f) {
      node.textContent = typeof f.value === "string" ? f.value : JSON.stringify(f.value);
    },
  });
  return row;
}

// -----------------------------------------------------------------------------------------------
// Start

function wire() {
  document.querySelectorAll("[data-action=new-conversation]").forEach((b) => b.addEventListener("click", newConversation));
  const form = $("[data-testid=composer-form]");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  $("[data-testid=composer]").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  });
  $("[data-testid=cancel]").addEventListener("click", cancelTurn);
  setInterval(() => {
    tickPanel();
    if (state.connection.state === "reconnecting") renderConnection();
    checkStaleTurns();
  }, TICK_MS);
}

async function start() {
  wire();
  try {
    await loadConfig();
  } catch (error) {
    $("[data-testid=connection]").dataset.state = "down";
    $(".conn-text").textContent = "no config";
    toast(`The local stack's config could not be read: ${error.message}`);
    return;
  }
  if (emulated()) {
    $(".brand-sub").textContent = "server-side prompt-cache warming · local stack · Anthropic emulator";
  }
  createClients();
  state.chart = new HistoryChart($("[data-testid=history-chart]"), state.http);
  restoreTabs();
  renderTabs();
  renderChat();
  renderPanel();
  updateComposer();
  // Subscriptions made before the socket is open are sent as soon as it is (and again after
  // every reconnect): the panels of restored tabs render as their surfaces arrive.
  for (const id of state.tabs) watch(id);
  state.client.connect().catch(() => undefined);
  await refreshConversations();
  for (const id of state.tabs) loadConversation(id);
  document.body.dataset.ready = "true";
}

start();
