"""The cache and timer timings, in one value: the policy and the timer adapter both read it.

Why each figure is what it is:
- `ttl_margin_s`: a warm must *start* this long before the cache entry expires (its TTL counts
  from the start of the last request that read or wrote it, prompt-caching docs); it covers the
  timer's lateness and the request's own latency.
- `scheduler_window_s`: EventBridge Scheduler fires a one-shot `at()` schedule anywhere in
  [at, at + 59 s] with `FlexibleTimeWindow: OFF` (shared/NOTES.md, "EventBridge Scheduler").
- `direct_invoke_below_s`: nearer targets cannot be booked on Scheduler (the `at()` would be too
  close to now, or past), so they go by a direct asynchronous invoke.
- `max_early_wait_s`: the longest a delivered tick may wait for its exact target (a schedule
  booked one window early, rounded down to the minute: under two windows).
- `max_event_age_s`: a tick older than this cannot keep a 5-minute cache alive; Scheduler and
  Lambda drop it instead of delivering it late.
- `warm_timeout_s`: the warm function's timeout (infra/template.yaml): a claim is held until the
  invocation's deadline, this long after it started when the caller does not know its deadline.
- `overdue_after_s`: a booked tick this late has been lost (dead-lettered, dropped): the warm
  starts within 2 s of its target when the timer works, and Lambda's first retry comes ~1 min
  after a failure. A user's toggle, interval change or opening the panel then re-arms it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.pricing import TTL_SECONDS


@dataclass(frozen=True)
class Timings:
    ttl_margin_s: int = 30
    min_interval_s: int = 20
    scheduler_window_s: int = 59
    direct_invoke_below_s: int = 150
    max_early_wait_s: int = 180
    max_event_age_s: int = 300
    warm_timeout_s: int = 300
    overdue_after_s: int = 60

    def ttl_ms(self, retention: str) -> int:
        return TTL_SECONDS[retention] * 1000

    def interval_bounds(self, retention: str) -> tuple[int, int]:
        return self.min_interval_s, TTL_SECONDS[retention] - self.ttl_margin_s


TIMINGS = Timings()
