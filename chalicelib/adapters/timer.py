"""The precise timer over EventBridge Scheduler (far targets) and a direct async invoke (near ones).

Scheduler fires a one-shot schedule anywhere in [at, at + 59 s]. Booking it at
floor_to_minute(target - 59 s) makes it fire no later than the target; the tick carries the exact
target and the warm function waits out the rest. Targets too near for that go by a direct
asynchronous invoke of the warm function, which waits in-process.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from hashlib import sha1
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from chalicelib.domain.timing import TIMINGS
from chalicelib.lazy import Lazy
from chalicelib.ports import FunctionInvoker

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

log = logging.getLogger("cache_warming")

SCHEDULER_WINDOW_MS = TIMINGS.scheduler_window_s * 1000
DIRECT_INVOKE_BELOW_MS = TIMINGS.direct_invoke_below_s * 1000
NAME_PREFIX = "warm-"
_NAME_OK = re.compile(r"^[0-9A-Za-z_.-]+$")


def schedule_at(target_ms: int) -> str:
    """The `at()` time, UTC, that makes Scheduler fire in [at, at + 59 s] and so by the target."""
    seconds = (target_ms - SCHEDULER_WINDOW_MS) // 1000
    moment = datetime.fromtimestamp(seconds - seconds % 60, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


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
        invoker: FunctionInvoker,
        *,
        group: str,
        warm_function_arn: str,
        role_arn: str,
        dead_letter_arn: str = "",
        new_token: Callable[[], str] = lambda: secrets.token_hex(4),
    ) -> None:
        self._scheduler = Lazy(scheduler_factory)
        self.invoker = invoker
        self.group = group
        self.warm_function_arn = warm_function_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn
        self.new_token = new_token

    @property
    def scheduler(self) -> EventBridgeSchedulerClient:
        return self._scheduler()

    def arm(self, conversation_id: str, seq: int, target_ms: int, now_ms: int) -> str | None:
        payload = tick_payload(conversation_id, seq, target_ms)
        if target_ms - now_ms < DIRECT_INVOKE_BELOW_MS:
            self.invoker.invoke(self.warm_function_arn, payload)
            return None
        name = schedule_name(conversation_id, seq, self.new_token())
        target: dict[str, object] = {
            "Arn": self.warm_function_arn,
            "RoleArn": self.role_arn,
            "Input": json.dumps(payload),
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
            ScheduleExpression=f"at({schedule_at(target_ms)})",
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
