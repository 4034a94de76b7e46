"""The cache and timer timings, in one value: the policy and the timer adapter both read it.

Why each figure is what it is:
- `ttl_margin_s`: a warm must *start* this long before the cache entry expires (its TTL counts
  from the start of the last request that read or wrote it, prompt-caching docs); it covers the
  timer's lateness and the request's own latency.
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
    ttl_margin_s: int = 30
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
        return self.min_interval_s, TTL_SECONDS[retention] - self.ttl_margin_s


TIMINGS = Timings()
