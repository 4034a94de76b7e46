/* Local-stack web page: conversations, streaming chat, and the cache-warming surface.
 *
 * Built against docs/contract.md (wire contract v1). Plain JS, no build step, no dependencies.
 * The page reads {httpUrl, wsUrl, token} from /devstack/config.json, talks REST for
 * conversations and turns, and keeps one WebSocket for surfaces and chat frames.
 */
"use strict";

(() => {
  // ---------------------------------------------------------------------------------------------
  // Constants

  const SURFACE_ID = "cache-warming";
  const TICK_MS = 250;
  const REQUEST_TIMEOUT_MS = 15000;
  const PING_EVERY_MS = 45000;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 10000;

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
  };

  // data-testid of the control each known field id renders.
  const FIELD_TESTIDS = {
    "enabled": "warming-toggle",
    "interval": "interval-input",
    "status": "status",
    "last-cache-pct": "cache-pct",
    "cache-retention": "cache-retention",
    "warm-cost": "warm-cost",
  };

  // ---------------------------------------------------------------------------------------------
  // State

  const state = {
    config: null,
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
      };
      state.convs.set(id, conv);
    }
    return conv;
  }

  // ---------------------------------------------------------------------------------------------
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

  function fmtDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    const rest = s % 60;
    if (m < 60) return `${m} m ${String(rest).padStart(2, "0")} s`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} m`;
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
    const node = el("div", { class: `toast ${kind}`, role: "alert", text: message });
    $(".toasts").append(node);
    setTimeout(() => node.classList.add("leaving"), 5500);
    setTimeout(() => node.remove(), 6000);
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${state.config.token}` };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(state.config.httpUrl + path, init);
    } catch (error) {
      throw new ApiError(0, "network_error", `The API could not be reached (${error.message}).`);
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_error) {
        data = null;
      }
    }
    if (!response.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(
        response.status,
        err.code || `http_${response.status}`,
        err.message || `${method} ${path} failed with HTTP ${response.status}.`,
      );
    }
    return data;
  }

  async function loadConfig() {
    const response = await fetch("/devstack/config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`/devstack/config.json answered HTTP ${response.status}`);
    const config = await response.json();
    const httpUrl = (config.httpUrl || window.location.origin).replace(/\/+$/, "");
    state.config = { ...config, httpUrl };
  }

  // ---------------------------------------------------------------------------------------------
  // WebSocket: one socket, requestId-matched replies, reconnect with backoff

  const socket = {
    ws: null,
    attempt: 0,
    pending: new Map(),           // requestId -> {resolve, reject, timer, frame}
    seq: 0,
    reconnectTimer: null,
    reconnectAt: null,
    pingTimer: null,
  };

  function wsUrl() {
    const base = state.config.wsUrl;
    if (/[?&]token=/.test(base)) return base;
    const sep = base.includes("?") ? "&" : "?";
    return `${base}${sep}token=${encodeURIComponent(state.config.token)}`;
  }

  function setConnection(kind, text) {
    const node = $("[data-testid=connection]");
    node.dataset.state = kind;
    $(".conn-text", node).textContent = text;
  }

  function connect() {
    clearTimeout(socket.reconnectTimer);
    socket.reconnectTimer = null;
    setConnection("connecting", socket.attempt ? "reconnecting…" : "connecting…");
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (error) {
      scheduleReconnect();
      return;
    }
    socket.ws = ws;
    ws.addEventListener("open", () => {
      if (socket.ws !== ws) return;
      socket.attempt = 0;
      setConnection("open", "live");
      startPing();
      resubscribeAll();
    });
    ws.addEventListener("message", (event) => {
      if (socket.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (_error) {
        console.warn("non-JSON frame", event.data);
        return;
      }
      handleFrame(frame);
    });
    ws.addEventListener("close", () => {
      if (socket.ws !== ws) return;
      socket.ws = null;
      stopPing();
      failPending("The connection was lost before the server answered.");
      scheduleReconnect();
    });
    ws.addEventListener("error", () => {
      // A close event always follows; reconnecting happens there.
    });
  }

  function scheduleReconnect() {
    const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** socket.attempt);
    const delay = Math.round(exp * (0.8 + Math.random() * 0.4));
    socket.attempt += 1;
    socket.reconnectAt = Date.now() + delay;
    socket.reconnectTimer = setTimeout(async () => {
      socket.reconnectAt = null;
      if (socket.attempt > 1) {
        // The token may have been reissued (e.g. the stack restarted): read it again.
        try {
          await loadConfig();
        } catch (_error) {
          // keep the old config; the next attempt tries again
        }
      }
      connect();
    }, delay);
  }

  function tickConnection() {
    if (socket.reconnectAt) {
      const left = Math.max(0, (socket.reconnectAt - Date.now()) / 1000);
      setConnection("down", `disconnected · retrying in ${Math.ceil(left)} s`);
    }
  }

  function startPing() {
    stopPing();
    socket.pingTimer = setInterval(() => {
      request({ type: "ping" }, 10000).catch(() => {
        if (socket.ws) socket.ws.close();
      });
    }, PING_EVERY_MS);
  }

  function stopPing() {
    clearInterval(socket.pingTimer);
    socket.pingTimer = null;
  }

  function failPending(message) {
    for (const [id, entry] of socket.pending) {
      clearTimeout(entry.timer);
      entry.reject(new ApiError(0, "disconnected", message));
      socket.pending.delete(id);
    }
  }

  function isOpen() {
    return socket.ws !== null && socket.ws.readyState === WebSocket.OPEN;
  }

  function newRequestId() {
    socket.seq += 1;
    return `r${socket.seq}-${Math.random().toString(36).slice(2, 8)}`;
  }

  /** Sends a frame with a fresh requestId; resolves with the reply, rejects on an error frame. */
  function request(frame, timeoutMs = REQUEST_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      if (!isOpen()) {
        reject(new ApiError(0, "disconnected", "Not connected to the server; retrying."));
        return;
      }
      const requestId = newRequestId();
      const timer = setTimeout(() => {
        socket.pending.delete(requestId);
        reject(new ApiError(0, "timeout", "The server did not answer in time."));
      }, timeoutMs);
      socket.pending.set(requestId, { resolve, reject, timer, frame });
      socket.ws.send(JSON.stringify({ ...frame, requestId }));
    });
  }

  function handleFrame(frame) {
    const entry = frame.requestId ? socket.pending.get(frame.requestId) : undefined;
    if (entry) {
      socket.pending.delete(frame.requestId);
      clearTimeout(entry.timer);
    }
    switch (frame.type) {
      case "surface":
        if (frame.surfaceId === SURFACE_ID) applySurface(frame.conversationId, frame.spec || {});
        break;
      case "update":
        if (frame.surfaceId === SURFACE_ID) applyFields(frame.conversationId, frame.fields || []);
        break;
      case "chat":
        applyChat(frame);
        break;
      case "error":
        if (entry) {
          entry.reject(new ApiError(0, frame.code, frame.message));
          return;
        }
        toast(`${frame.message} (${frame.code})`);
        return;
      case "ack":
      case "pong":
        break;
      default:
        console.warn("unknown frame", frame);
    }
    if (entry) entry.resolve(frame);
  }

  async function subscribe(id) {
    if (!isOpen()) return;
    const results = await Promise.allSettled([
      request({ type: "chat.subscribe", conversationId: id }),
      request({ type: "subscribe", surfaceId: SURFACE_ID, conversationId: id }),
    ]);
    for (const result of results) {
      if (result.status === "rejected" && result.reason.code !== "disconnected") {
        if (result.reason.code === "not_found") {
          toast("That conversation no longer exists.");
          dropTab(id);
          return;
        }
        toast(`Subscribing failed: ${result.reason.message}`);
      }
    }
  }

  function unsubscribe(id) {
    if (!isOpen()) return;
    request({ type: "chat.unsubscribe", conversationId: id }).catch(() => {});
    request({ type: "unsubscribe", surfaceId: SURFACE_ID, conversationId: id }).catch(() => {});
  }

  /** After a (re)connect: subscribe every open tab again, one tab at a time (the server limits
   *  frames per second per connection), and reload its history to catch up on missed frames. */
  async function resubscribeAll() {
    refreshConversations();
    const ws = socket.ws;
    for (const id of [...state.tabs]) {
      if (socket.ws !== ws || !isOpen()) return; // dropped again: the next open starts over
      await subscribe(id);
      loadConversation(id);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Conversations list and tabs

  let refreshTimer = null;

  function refreshConversationsSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshConversations, 300);
  }

  async function refreshConversations() {
    try {
      const data = await api("GET", "/conversations");
      state.conversations = data.conversations || [];
      for (const c of state.conversations) {
        const conv = state.convs.get(c.conversationId);
        if (conv) conv.meta = { ...(conv.meta || {}), ...c };
      }
      renderConversationList();
      renderTabs();
    } catch (error) {
      toast(`Loading conversations failed: ${error.message}`);
    }
  }

  async function newConversation() {
    const buttons = document.querySelectorAll("[data-action=new-conversation]");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const title = `Chat ${fmtClock(Date.now())}`;
      const conversation = await api("POST", "/conversations", { title, system: DEFAULT_SYSTEM });
      const conv = convState(conversation.conversationId);
      conv.meta = conversation;
      conv.loaded = true;
      state.conversations.unshift(conversation);
      renderConversationList();
      openTab(conversation.conversationId);
      $("[data-testid=composer]").focus();
    } catch (error) {
      toast(`Creating a conversation failed: ${error.message}`);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function openTab(id) {
    const fresh = !state.tabs.includes(id);
    if (fresh) state.tabs.push(id);
    state.active = id;
    persistTabs();
    renderTabs();
    renderConversationList();
    renderChat();
    renderPanel();
    updateComposer();
    if (fresh) {
      subscribe(id).then(() => loadConversation(id));
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

  /** The tab's ×: closes the conversation (warming off, in-flight turn aborted), then drops it. */
  async function closeTab(id) {
    const conv = convState(id);
    if (conv.closing) return;
    conv.closing = true;
    renderTabs();
    try {
      if (isOpen()) {
        await request({ type: "close", conversationId: id });
      } else {
        await api("POST", `/conversations/${encodeURIComponent(id)}/close`);
      }
    } catch (error) {
      if (error.code === "disconnected" || error.code === "timeout") {
        try {
          await api("POST", `/conversations/${encodeURIComponent(id)}/close`);
        } catch (httpError) {
          conv.closing = false;
          renderTabs();
          toast(`Closing failed: ${httpError.message}`);
          return;
        }
      } else if (error.code !== "not_found") {
        conv.closing = false;
        renderTabs();
        toast(`Closing failed: ${error.message}`);
        return;
      }
    }
    unsubscribe(id);
    dropTab(id);
    refreshConversationsSoon();
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
  }

  async function loadConversation(id) {
    let data;
    try {
      data = await api("GET", `/conversations/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status === 404) {
        dropTab(id);
        refreshConversationsSoon();
      } else {
        toast(`Loading the conversation failed: ${error.message}`);
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
      };
      if (!known) {
        conv.turns.set(t.turnId, fromHistory);
      } else if (t.status !== "generating") {
        // Finished on the server: the stored record is authoritative (frames may have been missed).
        Object.assign(known, fromHistory);
      } else if (!known.text && fromHistory.text) {
        known.text = fromHistory.text;
      }
    }
    conv.loaded = true;
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

  // ---------------------------------------------------------------------------------------------
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

  function fillTurn(li, turn) {
    li.dataset.status = turn.status;
    const user = el(
      "div",
      { class: "msg user", testid: "message-user" },
      el("div", { class: "msg-role", text: "You" }),
      el("div", { class: "msg-text", text: turn.userText || "" }),
    );
    const body = el("div", { class: "msg-text", text: turn.text || "" });
    if (turn.status === "generating") body.append(el("span", { class: "caret", "aria-hidden": "true" }));
    const assistant = el(
      "div",
      {
        class: `msg assistant ${turn.status}`,
        testid: "message-assistant",
        "data-turn-id": turn.turnId,
        "data-status": turn.status,
      },
      el("div", { class: "msg-role" }, "Assistant", statusTag(turn)),
      body,
      turnFooter(turn),
    );
    li.replaceChildren(user, assistant);
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

  function appendDelta(conv, turn, text) {
    if (state.active !== conv.id) return;
    const list = $("[data-testid=messages]");
    const li = list.querySelector(`li.turn[data-turn-id="${CSS.escape(turn.turnId)}"]`);
    if (!li) {
      upsertTurn(conv, turn);
      return;
    }
    const body = $(".msg.assistant .msg-text", li);
    const caret = $(".caret", body);
    body.insertBefore(document.createTextNode(text), caret);
    scrollToBottom(false);
  }

  function applyChat(frame) {
    const id = frame.conversationId;
    if (!state.tabs.includes(id)) return;
    const conv = convState(id);
    let turn = conv.turns.get(frame.turnId);
    if (!turn) {
      turn = { turnId: frame.turnId, index: indexFromTurnId(frame.turnId), userText: "", text: "", status: "generating" };
      conv.turns.set(frame.turnId, turn);
    }
    switch (frame.event) {
      case "turn-started":
        turn.userText = frame.userText ?? turn.userText;
        turn.status = "generating";
        upsertTurn(conv, turn);
        break;
      case "delta":
        if (turn.status !== "generating") break; // a late delta after the end
        turn.text += frame.text || "";
        appendDelta(conv, turn, frame.text || "");
        break;
      case "turn-sealed":
        Object.assign(turn, { status: "sealed", text: frame.text ?? turn.text, usage: frame.usage || null, costUsd: frame.costUsd ?? null });
        conv.cancelling = false;
        upsertTurn(conv, turn);
        refreshConversationsSoon();
        break;
      case "turn-aborted":
        Object.assign(turn, { status: "aborted", text: frame.text ?? turn.text, abortReason: frame.reason || null });
        conv.cancelling = false;
        upsertTurn(conv, turn);
        refreshConversationsSoon();
        break;
      case "turn-failed":
        Object.assign(turn, { status: "failed", text: frame.text ?? turn.text, errorCode: frame.code || null, errorMessage: frame.message || null });
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

  // ---------------------------------------------------------------------------------------------
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
      const result = await api("POST", `/conversations/${encodeURIComponent(id)}/turns`, { text });
      textarea.value = "";
      const conv = convState(id);
      if (!conv.turns.has(result.turnId)) {
        const turn = { turnId: result.turnId, index: result.index, userText: text, text: "", status: "generating" };
        conv.turns.set(result.turnId, turn);
        upsertTurn(conv, turn);
      } else {
        conv.turns.get(result.turnId).index = result.index;
      }
    } catch (error) {
      if (error.code === "turn_in_progress") {
        setNotice("A reply is still being generated. Wait for it, or cancel it first.", "warn");
        loadConversation(id); // show the turn that is generating, if this page missed it
      } else if (error.code === "rate_limited") {
        setNotice(`${error.message} (your message is still in the box).`, "warn");
      } else if (error.code === "invalid_text") {
        setNotice(error.message, "error");
      } else {
        setNotice(`Sending failed: ${error.message}`, "error");
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
      const result = await api("POST", `/conversations/${encodeURIComponent(id)}/cancel`);
      if (!result.aborting) {
        conv.cancelling = false;
        loadConversation(id);
      }
    } catch (error) {
      conv.cancelling = false;
      toast(`Cancelling failed: ${error.message}`);
    }
    updateComposer();
  }

  // ---------------------------------------------------------------------------------------------
  // The cache-warming surface, rendered generically from its fields

  const panel = {
    conversationId: null,
    signature: null,              // "id:kind,..." of the built controls
    controls: new Map(),          // field id -> {update(field), tick?()}
  };

  function applySurface(id, spec) {
    const conv = state.convs.get(id);
    if (!conv || !state.tabs.includes(id)) return;
    conv.title = spec.title || "Cache warming";
    conv.fields = spec.fields || [];
    if (state.active === id) renderPanel(true);
    renderTabs();
  }

  function applyFields(id, fields) {
    const conv = state.convs.get(id);
    if (!conv || !state.tabs.includes(id)) return;
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
    $("[data-testid=panel-conversation]").textContent = conv ? conversationTitle(conv.id) : "";
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

  function invoke(conversationId, action, payload) {
    return request({ type: "invoke", surfaceId: SURFACE_ID, conversationId, action, payload });
  }

  function buildField(conversationId, field) {
    switch (field.kind) {
      case "toggle": return buildToggle(conversationId, field);
      case "number": return buildNumber(conversationId, field);
      case "custom":
        if (field.component === "cache-warming-timer") return buildTimer(field);
        return buildFallback(field);
      case "status": return buildStatus(field);
      case "percent": return buildPercent(field);
      case "cost": return buildCost(field);
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
        error.textContent = err.message;
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
        novalidate: true, // the server validates; its error frame is shown next to the input
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
            error.textContent = err.message;
          } finally {
            apply.disabled = false;
          }
        },
      },
      input,
      unit,
      apply,
    );
    const row = fieldRow(field, form, hint, error);
    panel.controls.set(field.id, {
      update(f) {
        current = f.value;
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
    const countdown = el("span", { class: "countdown", testid: "countdown", text: "—" });
    const at = el("span", { class: "countdown-at muted" });
    const bar = el("div", { class: "progress", "aria-hidden": "true" }, el("div", { class: "progress-fill" }));
    const last = el("span", { class: "last-warm", testid: "last-warm", text: "never" });
    const row = el(
      "div",
      { class: "field kind-custom timer", "data-field-id": field.id, "data-kind": field.kind },
      el("div", { class: "field-label", text: field.label || "Next warm" }),
      el("div", { class: "field-value" }, el("div", { class: "countdown-line" }, countdown, at), bar),
      el("div", { class: "field-label", text: "Last warm" }),
      el("div", { class: "field-value" }, last),
    );
    let value = { nextWarmAt: null, lastWarmAt: null };
    let intervalSeconds = null;
    const control = {
      update(f) {
        value = f.value || { nextWarmAt: null, lastWarmAt: null };
        countdown.dataset.nextWarmAt = value.nextWarmAt ?? "";
        last.dataset.lastWarmAt = value.lastWarmAt ?? "";
        at.textContent = value.nextWarmAt ? `at ${fmtClock(value.nextWarmAt)}` : "";
        const conv = state.convs.get(panel.conversationId);
        const interval = conv && conv.fields ? conv.fields.find((x) => x.id === "interval") : null;
        intervalSeconds = interval ? interval.value : null;
      },
      tick() {
        const now = Date.now();
        if (value.nextWarmAt === null || value.nextWarmAt === undefined) {
          countdown.textContent = "—";
          countdown.dataset.state = "none";
          bar.firstChild.style.width = "0%";
        } else if (value.nextWarmAt <= now) {
          countdown.textContent = "waiting…";
          countdown.dataset.state = "due";
          bar.firstChild.style.width = "100%";
        } else {
          const left = (value.nextWarmAt - now) / 1000;
          countdown.textContent = `in ${fmtDuration(Math.ceil(left))}`;
          countdown.dataset.state = "future";
          const span = intervalSeconds || Math.max(left, 1);
          const done = Math.min(1, Math.max(0, 1 - left / span));
          bar.firstChild.style.width = `${(done * 100).toFixed(1)}%`;
        }
        if (value.lastWarmAt === null || value.lastWarmAt === undefined) {
          last.textContent = "never";
          last.title = "";
        } else {
          const ago = Math.max(0, (now - value.lastWarmAt) / 1000);
          last.textContent = ago < 1 ? "just now" : `${fmtDuration(ago)} ago`;
          last.title = new Date(value.lastWarmAt).toLocaleString();
        }
      },
    };
    panel.controls.set(field.id, control);
    return row;
  }

  function buildStatus(field) {
    const badge = el("span", { class: "badge", testid: fieldTestid(field) });
    const row = fieldRow(field, badge);
    panel.controls.set(field.id, {
      update(f) {
        badge.textContent = STATUS_LABELS[f.value] || String(f.value);
        badge.dataset.value = f.value;
        badge.className = `badge status-${f.value}`;
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
    const row = fieldRow(field, node);
    panel.controls.set(field.id, {
      update(f) {
        node.textContent = f.value === null || f.value === undefined ? "—" : String(f.value);
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
    const last = tile("Last warm");
    const total = tile("Total");
    const node = el("div", { class: "cost", testid: fieldTestid(field) }, warms.node, last.node, total.node);
    const row = fieldRow(field, node);
    panel.controls.set(field.id, {
      update(f) {
        const v = f.value || {};
        warms.main.textContent = fmtInt(v.warms ?? 0);
        warms.sub.textContent = "";
        const noLast = v.lastTokens === null || v.lastTokens === undefined;
        last.main.textContent = noLast ? "—" : fmtUsd(v.lastUsd);
        last.sub.textContent = noLast ? "" : `${fmtInt(v.lastTokens)} tok`;
        total.main.textContent = fmtUsd(v.totalUsd ?? 0);
        total.sub.textContent = `${fmtInt(v.totalTokens ?? 0)} tok`;
        node.dataset.warms = v.warms ?? 0;
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

  // ---------------------------------------------------------------------------------------------
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
      tickConnection();
    }, TICK_MS);
  }

  async function start() {
    wire();
    try {
      await loadConfig();
    } catch (error) {
      setConnection("down", "no config");
      toast(`The local stack's config could not be read: ${error.message}`);
      return;
    }
    restoreTabs();
    renderTabs();
    renderChat();
    renderPanel();
    updateComposer();
    await refreshConversations();
    for (const id of state.tabs) {
      convState(id);
      loadConversation(id);
    }
    connect(); // on open: subscribes every tab (and reloads its history)
    document.body.dataset.ready = "true";
  }

  start();
})();
