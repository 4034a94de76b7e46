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
- `late_guard_s`: a warm that would start within this many seconds of its cache's expiry is not
  sent (`cache-expired`): it could reach the API at or after the expiry and re-write the whole
  prefix at the write price (1.25x-2x) instead of reading it (0.025x-0.1x). It is checked twice:
  when the tick claims the warm, and again right before the request goes out (a claim write that
  botocore retried can take seconds). The warm request is sent with the SDK's own retries off
  (`max_retries=0`, chalicelib/adapters/model.py): each retry is the policy's, checked against
  this guard like the first, so 2 s only has to cover one request's trip to the API (a connection
  the warm function's client keeps alive, or one TLS handshake). What it cannot cover is a clock
  that runs ahead of Anthropic's; Lambda's clock is NTP-synchronised, and the refresh it records
  is the request's start as seen before sending, never later than the API's.
- The retry room: an on-time tick starts at TTL - `ttl_margin_s`, so every retry of a failed
  warm (DynamoDB throttled past botocore's retries, a 429/529, a crashed batch, a booking that
  failed after the warm) must start within `ttl_margin_s - late_guard_s` = 8 s of its target at
  the default interval. docs/architecture.md, "Room for one failure", walks each fault through
  these 8 s; `claim_takeover_s`, `backup_after_s`, `warm_retry_s` and `in_process_retry_s` below
  are sized to fit them.
- `claim_takeover_s`: a keep-alive warm's claim ends this long before the late guard, so that a
  tick finding the claim of a dead invocation can take it over and still warm in time
  (`steps.lease_until`). A rebuild has no expiry to meet: its claim runs to the deadline.
- `min_lease_s`: the shortest claim: a claimant gets at least this long to send its warm.
- `backup_after_s`: every booked tick goes to the queue twice, at its target and this much later
  (one `SendMessageBatch`). The backup is a no-op (one read) when the first did its work; it is
  what warms when the invocation that received the first crashed or timed out, whose batch only
  comes back after the queue's visibility timeout (`warm_visibility_s`).
- `warm_retry_s`: a warm the API refused (429, 529, 5xx, a timeout) is retried after this many
  seconds, doubled per failure in a row, while the cache lives; the third failure in a row stops
  warming (`error`).
- `in_process_retry_s`: a tick whose read or claim failed (DynamoDB throttled or unreachable past
  botocore's retries) is tried again in the same invocation while it is at most this late (the
  retry room of a default-interval tick), rather than after the queue's 5 s backoff, which would
  land past the guard at the default interval. Whether a retry is still in time is the guard's
  call, as for any warm; this only bounds how long an invocation keeps trying.
- `ahead_wait_s`: a tick whose booking write has not landed yet (its `seq` is ahead of the
  stored one) is put back on the queue until its target is this old: longer than the longest a
  booking write can take with the DynamoDB client's bounded timeouts (`adapters/store_table.py`).
  After that it was an orphan of a write that failed, and is dropped.
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
- `warm_timeout_s`: the warm function's timeout (.chalice/config.json): a claim is held until the
  invocation's deadline at the latest, this long after it started when the caller does not know
  its deadline. 60 s: a batch of ten warms side by side takes a few seconds; the warm request's
  own timeout (adapters/model.py) fits inside it.
- `warm_visibility_s`: the tick queue's visibility timeout, six times the function's timeout as
  Lambda recommends for an SQS event source; a failed tick comes back sooner (tick_batch.py), a
  crashed batch after this long, when its backups have long done the work.
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
    late_guard_s: int = 2
    min_interval_s: int = 20
    scheduler_window_s: int = 59
    queue_max_delay_s: int = 900
    max_event_age_s: int = 300
    max_early_wait_s: int = 2
    warm_timeout_s: int = 60
    warm_visibility_s: int = 360
    overdue_after_s: int = 60
    claim_takeover_s: float = 1.5
    min_lease_s: int = 3
    backup_after_s: int = 4
    warm_retry_s: int = 1
    in_process_retry_s: int = 8
    ahead_wait_s: int = 60

    def ttl_ms(self, retention: str) -> int:
        return TTL_SECONDS[retention] * 1000

    def interval_bounds(self, retention: str) -> tuple[int, int]:
        """The interval a user may set on this cache; the upper bound is also the default."""
        return self.min_interval_s, TTL_SECONDS[retention] - self.ttl_margin_s


TIMINGS = Timings()
