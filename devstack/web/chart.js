// The history chart: what warming spent against what it saved over time, and each request's
// cache hit, drawn from GET /conversations/{id}/history (docs/contract.md, "History") with uPlot
// (vendored under /web/vendor/uplot/, loaded as a classic script: `window.uPlot`).
//
// The contract's advice is followed as written: the newest page on load, and again after an
// `update` whose cause is a warm, a stop or a turn's end, merged by `seq`. Nothing is summed
// here: every entry carries the conversation's running totals.

const LIVE_CAUSES = new Set(["warm", "stop", "turn-sealed", "turn-ended"]);
const PAGE_SIZE = 100;
// A conversation keeps at most 1,000 entries: ten pages.
const MAX_PAGES = 10;
const HEIGHT = 170;
// The history read may trail the update by a moment (an eventually consistent read): one retry.
const RETRY_MS = 1000;

const COLORS = { spent: "#d03a3a", saved: "#1f9d55", warm: "#2f6fde", turn: "#b7791f" };

function usd(value) {
  if (value === null || value === undefined) return "—";
  if (value === 0) return "$0";
  return `$${value < 0.01 ? value.toFixed(5) : value.toFixed(4)}`;
}

/** Axis ticks in US cents: a fraction of a cent is the usual size here ("0.012¢"). */
function cents(value) {
  const c = value * 100;
  if (c === 0) return "0¢";
  return `${c < 0.1 ? c.toFixed(3) : c < 10 ? c.toFixed(2) : c.toFixed(0)}¢`;
}

/** uPlot's columns from entries sorted oldest first, the running totals carried on to `now`
 * (so the lines reach the present, and a lone entry still has a time span to be drawn on). */
export function columns(entries, now = Date.now()) {
  const xs = [], spent = [], saved = [], warmHit = [], turnHit = [];
  for (const entry of entries) {
    xs.push(entry.at / 1000);
    spent.push(entry.totals.spentUsd);
    saved.push(entry.totals.savedUsd);
    const pct = entry.cachePct ?? null;
    warmHit.push(entry.kind === "warm" ? pct : null);
    turnHit.push(entry.kind === "turn" ? pct : null);
  }
  const last = entries[entries.length - 1];
  if (last && now > last.at) {
    xs.push(now / 1000);
    spent.push(last.totals.spentUsd);
    saved.push(last.totals.savedUsd);
    warmHit.push(null);
    turnHit.push(null);
  }
  return [xs, spent, saved, warmHit, turnHit];
}

function options(width) {
  const { uPlot } = window;
  const stepped = uPlot.paths.stepped({ align: 1 });
  const dots = (color, size) => ({ show: true, size, fill: color, stroke: color });
  return {
    width,
    height: HEIGHT,
    legend: { show: true, live: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      // A lone entry (or a burst) would get uPlot's default span of years: a minute around it.
      x: { time: true, range: (u, min, max) => (max - min < 120 ? [min - 60, max + 60] : [min, max]) },
      usd: { range: (u, min, max) => [0, Math.max(max * 1.1, 0.0001)] },
      pct: { range: [0, 100] },
    },
    series: [
      {},
      { label: "Spent", scale: "usd", stroke: COLORS.spent, width: 2, paths: stepped, points: { show: false }, value: (u, v) => usd(v) },
      { label: "Saved", scale: "usd", stroke: COLORS.saved, width: 2, paths: stepped, points: { show: false }, value: (u, v) => usd(v) },
      { label: "Warm hit %", scale: "pct", stroke: COLORS.warm, paths: () => null, points: dots(COLORS.warm, 6) },
      { label: "Turn hit %", scale: "pct", stroke: COLORS.turn, paths: () => null, points: dots(COLORS.turn, 9) },
    ],
    axes: [
      { size: 30, font: "11px system-ui", grid: { stroke: "#eef0f3" } },
      { scale: "usd", size: 60, font: "11px system-ui", grid: { stroke: "#eef0f3" }, values: (u, ticks) => ticks.map(cents) },
      { scale: "pct", side: 1, size: 36, font: "11px system-ui", grid: { show: false }, values: (u, ticks) => ticks.map((t) => `${t}%`) },
    ],
  };
}

export class HistoryChart {
  /** `root`: the card's element; `http`: the client package's HttpApi. */
  constructor(root, http) {
    this.root = root;
    this.http = http;
    this.conversationId = null;
    this.entries = new Map();     // seq -> entry
    this.plot = null;
    this.canvasBox = root.querySelector("[data-role=plot]");
    this.summary = root.querySelector("[data-role=summary]");
    this.generation = 0;
    new ResizeObserver(() => this.resize()).observe(this.canvasBox);
  }

  /** Draws the history of another conversation (or none), all of its pages. */
  async show(conversationId) {
    if (conversationId === this.conversationId) return;
    this.conversationId = conversationId;
    this.entries = new Map();
    const generation = ++this.generation;
    this.render();
    if (!conversationId) return;
    const started = performance.now();
    let cursor = null;
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const answer = await this.read(conversationId, cursor);
      if (answer === null || generation !== this.generation) return;
      for (const entry of answer.entries) this.entries.set(entry.seq, entry);
      cursor = answer.nextCursor;
      if (!cursor) break;
    }
    const loaded = performance.now();
    this.render();
    // What the chart costs the page: reading the history, then its first draw, counted to the
    // next frame (uPlot commits its canvas in a microtask).
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    this.root.dataset.loadMs = (loaded - started).toFixed(1);
    this.root.dataset.renderMs = (performance.now() - loaded).toFixed(1);
  }

  /** An `update` of the conversation shown: a warm, a stop or a turn's end added an entry. */
  async onUpdate(conversationId, cause) {
    if (conversationId !== this.conversationId || !LIVE_CAUSES.has(cause)) return;
    const newest = this.newestSeq();
    await this.refresh(conversationId);
    if (this.newestSeq() === newest && conversationId === this.conversationId) {
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      await this.refresh(conversationId);
    }
  }

  async refresh(conversationId) {
    const generation = this.generation;
    const answer = await this.read(conversationId, null);
    if (answer === null || generation !== this.generation) return;
    for (const entry of answer.entries) this.entries.set(entry.seq, entry);
    this.render();
  }

  async read(conversationId, cursor) {
    try {
      return await this.http.history(conversationId, cursor ? { limit: PAGE_SIZE, cursor } : { limit: PAGE_SIZE });
    } catch (error) {
      this.summary.textContent = `The history could not be read: ${error.message || error}`;
      return null;
    }
  }

  newestSeq() {
    let newest = 0;
    for (const seq of this.entries.keys()) newest = Math.max(newest, seq);
    return newest;
  }

  sorted() {
    return [...this.entries.values()].sort((a, b) => a.seq - b.seq);
  }

  render() {
    const entries = this.sorted();
    this.root.dataset.entries = String(entries.length);
    this.root.dataset.conversationId = this.conversationId || "";
    this.renderSummary(entries);
    if (entries.length === 0) {
      this.destroy();
      this.canvasBox.dataset.empty = "true";
      return;
    }
    this.canvasBox.dataset.empty = "false";
    const data = columns(entries);
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    this.plot = new window.uPlot(options(this.width()), data, this.canvasBox);
  }

  renderSummary(entries) {
    if (!this.conversationId) {
      this.summary.textContent = "";
      return;
    }
    if (entries.length === 0) {
      this.summary.textContent = "Nothing yet: the chart starts with the first reply.";
      return;
    }
    const warms = entries.filter((e) => e.kind === "warm" && e.outcome === "warmed").length;
    const turns = entries.filter((e) => e.kind === "turn").length;
    const rescues = entries.filter((e) => e.rescue).length;
    const last = entries[entries.length - 1].totals;
    this.summary.textContent =
      `${warms} warm${warms === 1 ? "" : "s"} · ${turns} turn${turns === 1 ? "" : "s"} · ` +
      `${rescues} rescue${rescues === 1 ? "" : "s"} · spent ${usd(last.spentUsd)}, saved ${usd(last.savedUsd)}`;
    this.root.dataset.rescues = String(rescues);
    this.root.dataset.warms = String(warms);
  }

  width() {
    return Math.max(200, Math.floor(this.canvasBox.clientWidth || 300));
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: this.width(), height: HEIGHT });
  }

  destroy() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}
