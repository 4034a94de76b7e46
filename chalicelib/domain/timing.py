"""The cache and timer timings, in one value: the policy and the timer adapter both read it.

Why each figure is what it is:
- `ttl_margin_s`: the default (and longest) interval is TTL - 10 s: 290 s for the 5-minute cache,
  3590 s for the 1-hour cache. A cache entry lives its TTL from the *start* of the last request
  that read or wrote it, and a read refreshes it at no extra cost ("Choosing the TTL", Anthropic's
  prompt-caching guide as carried by anthropics/skills `skills/claude-api/shared/prompt-caching.md`,
  read 2026-12-01). The measured timer starts a warm 0.07 s after its target at p99 (0.98 s p99,
  1.17 s at most, under load: docs/performance.md, `timer` and `scale`), so 10 s leaves the
  late-tick guard below untouched on every on-time tick; each 10 s less margin buys about
  2 points of cost ÷ oracle at 0.1x reads (docs/performance.md, "Interval margin").
- `late_guard_s`: a tick that finds its cache expiring within this many seconds sends nothing
  (`cache-expired`): its request could start at or after the expiry and re-write the whole prefix
  at the write price (1.25x-2x) instead of reading it (0.025x-0.1x). 5 s covers what lies between
  the decision and the request's start at the API: the claim's conditional write, the request's
  trip to the API (a connection kept alive by the warm function's SDK client, or a new TLS
  handshake) and the SDK's own retries of a 408/409/429/5xx, each a new request, after
  0.375-0.5 s and then 0.75-1 s (anthropic 2.10.0 `_base_client._calculate_retry_timeout`,
  `INITIAL_RETRY_DELAY` 0.5 s, 2 retries). An on-time tick starts at TTL - 10 s, 5 s clear of the guard even at the worst
  lateness measured under load; only abnormal ticks (Lambda's retry a minute after a failure, a
  revived tick) land inside it. What it cannot cover: a `retry-after` header, which the SDK obeys
  however long it is (docs/performance.md, "Warming policy").
- `min_interval_s`: the shortest interval a user may set.
- `scheduler_window_s`: EventBridge Scheduler fires a one-shot `at()` schedule anywhere in
  [at, at + 59 s] with `FlexibleTimeWindow: OFF` (shared/NOTES.md, "EventBridge Scheduler").
- `queue_max_delay_s`: the longest per-message `DelaySeconds` of an SQS standard queue, 900 s
  ("Amazon SQS message timers", SQS Developer Guide, read 2026-12-01). A target at most this far
  away goes straight into the tick queue; a farther one is booked on Scheduler, whose delivery is
  put back on the queue with the remaining delay.
- `max_event_age_s`: a tick older than this cannot keep a 5-minute cache alive; Scheduler and
  Lambda drop it instead of delivering it late. A schedule is also booked to fire this long before
  its target (when the queue's delay allows), so a delivery Scheduler retries still lands in time.
- `max_early_wait_s`: the longest a delivered tick waits in-process for its exact target: the
  queue delivers a tick less than a second early (`DelaySeconds` is whole seconds, rounded down).
  A tick that arrives earlier than this (a Scheduler delivery) goes back on the timer instead of
  keeping a Lambda waiting.
- `warm_timeout_s`: the warm function's timeout (infra/template.yaml): a claim is held until the
  invocation's deadline, this long after it started when the caller does not know its deadline.
- `overdue_after_s`: a booked tick this late has been lost (dead-lettered, dropped): the warm
  starts within 2 s of its target when the timer works, and a tick that failed comes back from
  the queue within seconds (chalicelib/services/tick_batch.py). A user's toggle, interval change
  or opening the panel then re-arms it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.pricing import TTL_SECONDS


@dataclass(frozen=True)
class Timings:
    ttl_margin_s: int = 10
    late_guard_s: int = 5
    min_interval_s: int = 20
    scheduler_window_s: int = 59
    queue_max_delay_s: int = 900
    max_event_age_s: int = 300
    max_early_wait_s: int = 2
    warm_timeout_s: int = 300
    overdue_after_s: int = 60

    def ttl_ms(self, retention: str) -> int:
        return TTL_SECONDS[retention] * 1000

    def interval_bounds(self, retention: str) -> tuple[int, int]:
        """The interval a user may set on this cache; the upper bound is also the default."""
        return self.min_interval_s, TTL_SECONDS[retention] - self.ttl_margin_s


TIMINGS = Timings()
