"""The precise timer: a delayed SQS message for near targets, EventBridge Scheduler for far ones.

No Lambda waits for a target. A target at most `queue_max_delay_s` (900 s, SQS's maximum
`DelaySeconds`) away is sent straight to the tick queue with `DelaySeconds` rounded down, so the
message becomes visible less than a second before the target and the warm function sleeps only
that rest. A farther target is booked as a one-shot schedule whose target is the same queue
(Scheduler's templated SQS `SendMessage` target): it delivers the tick early and the warm function
puts it back on the queue with the remaining delay (`Ticks.handle`), which costs an invocation of a
few milliseconds instead of a minute of waiting.

Scheduler fires a one-shot schedule anywhere in [at, at + 59 s]. The schedule is booked to fire at
least `lead` before the target, where `lead` is Scheduler's maximum event age when the queue's
delay allows it: a delivery Scheduler retries (throttling, a failed `SendMessage`) is dropped at
that age, so any delivery it does make still lands before the target. The latest delivery is then
`lead` early and the earliest `lead + 119 s`, within the queue's maximum delay.

Facts and sources: "Amazon SQS message timers" (SQS Developer Guide: 0 to 900 s, standard queues
only); "Using templated targets in EventBridge Scheduler" (Scheduler User Guide: SQS `SendMessage`
by queue ARN, the execution role needs `sqs:SendMessage`); shared/NOTES.md for Scheduler's window,
names and retry policy. All read 2026-12-01.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from hashlib import sha1
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from chalicelib.domain.timing import TIMINGS
from chalicelib.lazy import Lazy
from chalicelib.ports import TickQueue

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

SCHEDULER_WINDOW_MS = TIMINGS.scheduler_window_s * 1000
BACKUP_AFTER_S = TIMINGS.backup_after_s
QUEUE_MAX_DELAY_MS = TIMINGS.queue_max_delay_s * 1000
# floor_to_minute loses up to 60 s and the window adds up to 59 s: what the lead must leave free.
_SCHEDULE_SPREAD_MS = 60_000 + SCHEDULER_WINDOW_MS
NAME_PREFIX = "warm-"
_NAME_OK = re.compile(r"^[0-9A-Za-z_.-]+$")


def schedule_lead_ms(queue_max_delay_ms: int = QUEUE_MAX_DELAY_MS) -> int:
    """How long before its target a schedule fires at the latest (300 s at SQS's 900 s)."""
    return max(0, min(TIMINGS.max_event_age_s * 1000, queue_max_delay_ms - _SCHEDULE_SPREAD_MS))


def schedule_at(target_ms: int, queue_max_delay_ms: int = QUEUE_MAX_DELAY_MS) -> str:
    """The `at()` time, UTC, that makes Scheduler fire in [at, at + 59 s], `lead` before target."""
    fire_by_ms = target_ms - schedule_lead_ms(queue_max_delay_ms) - SCHEDULER_WINDOW_MS
    seconds = fire_by_ms // 1000
    moment = datetime.fromtimestamp(seconds - seconds % 60, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def delay_seconds(target_ms: int, now_ms: int) -> int:
    """`DelaySeconds` for a target: rounded down, so the tick is never late for its target."""
    return max(0, min((target_ms - now_ms) // 1000, TIMINGS.queue_max_delay_s))


def schedule_name(conversation_id: str, seq: int, token: str) -> str:
    """Unique per booking attempt: a losing writer's cancel never deletes the winner's schedule."""
    name = f"{NAME_PREFIX}{conversation_id}-{seq}-{token}"
    if len(name) > 64 or not _NAME_OK.match(name):
        name = f"{NAME_PREFIX}{sha1(conversation_id.encode()).hexdigest()[:32]}-{seq}-{token}"
    return name[:64]


def tick_payload(conversation_id: str, seq: int, target_ms: int) -> dict[str, object]:
    return {"conversationId": conversation_id, "seq": seq, "target": target_ms}


class PreciseTimer:
    def __init__(
        self,
        scheduler_factory: Callable[[], EventBridgeSchedulerClient],
        queue: TickQueue,
        *,
        group: str,
        queue_arn: str,
        role_arn: str,
        dead_letter_arn: str = "",
        queue_max_delay_ms: int = QUEUE_MAX_DELAY_MS,
        new_token: Callable[[], str] = lambda: secrets.token_hex(4),
    ) -> None:
        self._scheduler = Lazy(scheduler_factory)
        self.queue = queue
        self.group = group
        self.queue_arn = queue_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn
        # Lower than SQS's 900 s only where a benchmark must see the Scheduler path in minutes.
        self.queue_max_delay_ms = min(queue_max_delay_ms, QUEUE_MAX_DELAY_MS)
        self.new_token = new_token

    @property
    def scheduler(self) -> EventBridgeSchedulerClient:
        return self._scheduler()

    def arm(self, conversation_id: str, seq: int, target_ms: int, now_ms: int) -> str | None:
        payload = tick_payload(conversation_id, seq, target_ms)
        if target_ms - now_ms <= self.queue_max_delay_ms - BACKUP_AFTER_S * 1000:
            # Not cancellable: a replaced tick still arrives and is a no-op by its seq. Its
            # backup warms if the invocation that receives the tick dies (domain/timing.py).
            delay = delay_seconds(target_ms, now_ms)
            self.queue.send_with_backup(payload, delay, delay + BACKUP_AFTER_S)
            return None
        return self._book(conversation_id, seq, target_ms, payload)

    def requeue(
        self, conversation_id: str, seq: int, target_ms: int, at_ms: int, now_ms: int
    ) -> None:
        # Rounded up: a second look that comes early would only be requeued again.
        delay = max(0, -(-(at_ms - now_ms) // 1000))
        self.queue.send(tick_payload(conversation_id, seq, target_ms), delay)

    def _book(
        self, conversation_id: str, seq: int, target_ms: int, payload: dict[str, object]
    ) -> str:
        name = schedule_name(conversation_id, seq, self.new_token())
        target: dict[str, object] = {
            "Arn": self.queue_arn,
            "RoleArn": self.role_arn,
            "Input": json.dumps(payload, separators=(",", ":")),
            "RetryPolicy": {
                "MaximumEventAgeInSeconds": TIMINGS.max_event_age_s,
                "MaximumRetryAttempts": 3,
            },
        }
        if self.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self.dead_letter_arn}
        self.scheduler.create_schedule(
            Name=name,
            GroupName=self.group,
            ScheduleExpression=f"at({schedule_at(target_ms, self.queue_max_delay_ms)})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target=target,  # type: ignore[arg-type]
        )
        return name

    def cancel(self, ref: str) -> None:
        try:
            self.scheduler.delete_schedule(Name=ref, GroupName=self.group)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
