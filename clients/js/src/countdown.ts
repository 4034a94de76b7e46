/** What a countdown to `nextWarmAt` shows. */
export interface CountdownView {
  /** `none`: no warm booked; `future`: counting down; `due`: the time has passed. */
  readonly state: "none" | "future" | "due";
  /** "—", "in 42 s", "in 3 m 05 s", or "waiting…" once the time has passed. */
  readonly text: string;
  /** Whole seconds left, rounded up (never 0 while in the future); null unless `future`. */
  readonly secondsLeft: number | null;
}

/**
 * A countdown to the next warm. `nextWarmAt` is a promise that the warm starts within 2 s
 * after it, so a time in the past means "any moment now": it renders as "waiting…", never as a
 * stuck "in 0 s" (the refreshed surface, with the following `nextWarmAt`, arrives after the warm).
 */
export function countdown(nextWarmAt: number | null | undefined, now: number = Date.now()): CountdownView {
  if (nextWarmAt === null || nextWarmAt === undefined) {
    return { state: "none", text: "—", secondsLeft: null };
  }
  const leftMs = nextWarmAt - now;
  if (leftMs <= 0) return { state: "due", text: "waiting…", secondsLeft: null };
  const secondsLeft = Math.ceil(leftMs / 1000);
  return { state: "future", text: `in ${formatDuration(secondsLeft)}`, secondsLeft };
}

/** "42 s", "3 m 05 s", "2 h 07 m". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} m ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} m`;
}

/** "never", "just now", "12 s ago", "4 m 10 s ago". */
export function formatAgo(at: number | null | undefined, now: number = Date.now()): string {
  if (at === null || at === undefined) return "never";
  const seconds = (now - at) / 1000;
  return seconds < 1 ? "just now" : `${formatDuration(seconds)} ago`;
}
