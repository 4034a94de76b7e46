"""The part of EventBridge Scheduler that moto leaves out: firing one-shot schedules.

moto stores schedules (create/get/list/delete) but never fires them. This runner polls the moto
server about every 0.5 s through an ordinary boto3 ``scheduler`` client, and fires each due
``at(...)`` schedule the way the service does for the two templated targets the app may use
("Using templated targets in EventBridge Scheduler", read 2026-12-01): an SQS queue ARN gets
``SendMessage`` with the schedule's ``Target.Input`` as the body (the app's tick queue); a Lambda
ARN is invoked asynchronously (``InvocationType=Event``, through the Lambda emulator) with it.
Then it deletes the schedule when its ``ActionAfterCompletion`` is ``DELETE``.

Why the jitter: AWS fires a one-shot schedule with 60-second precision, anywhere in
``[at, at + 59 s]``. The app's precise timer is built to tolerate exactly that (it books
``floor_to_minute(target - 59 s)`` and waits out the rest in the warm function), so the local stack
reproduces it by default: each schedule gets one uniform delay in ``[0, 59]`` seconds, drawn once.
``exact=True`` (``--exact-scheduler``) fires at ``at`` instead.

Not emulated: ``rate()``/``cron()`` schedules (logged once and ignored), ``StartDate``/``EndDate``,
retries and dead-letter queues, and targets other than SQS and Lambda.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("devstack.scheduler")

POLL_INTERVAL_S = 0.5
MAX_JITTER_S = 59.0
LAMBDA_ARN_MARKER = ":lambda:"
SQS_ARN_MARKER = ":sqs:"


@dataclass(frozen=True)
class Due:
    """A one-shot schedule as the runner tracks it."""

    group: str
    name: str
    expression: str
    at_s: float  # epoch seconds of the `at()` time
    fire_at_s: float  # at_s plus this schedule's jitter


def parse_at(expression: str, timezone: str | None) -> float | None:
    """Epoch seconds of an ``at(yyyy-mm-ddThh:mm:ss)`` expression; None for rate/cron/invalid."""
    if not (expression.startswith("at(") and expression.endswith(")")):
        return None
    try:
        moment = datetime.strptime(expression[3:-1], "%Y-%m-%dT%H:%M:%S")
        zone = ZoneInfo(timezone or "UTC")
    except (ValueError, KeyError):
        return None
    return moment.replace(tzinfo=zone).timestamp()


def _aws_jitter() -> float:
    return random.uniform(0.0, MAX_JITTER_S)


def _no_jitter() -> float:
    return 0.0


class SchedulerRunner:
    """Fires due one-shot schedules of the given groups; ``tick()`` is one poll."""

    def __init__(
        self,
        scheduler: Any,
        lambda_client: Any,
        groups: Iterable[str],
        *,
        exact: bool = False,
        poll_interval_s: float = POLL_INTERVAL_S,
        jitter: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.time,
        sqs_client: Any = None,
    ) -> None:
        self.scheduler = scheduler
        self.lambda_client = lambda_client
        self.sqs_client = sqs_client
        self.groups = list(groups)
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self._jitter: Callable[[], float] = _no_jitter if exact else (jitter or _aws_jitter)
        self._known: dict[tuple[str, str], Due] = {}
        self._ignored: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired: list[Due] = []

    # --- one poll ------------------------------------------------------------------------

    def tick(self) -> list[Due]:
        """List the groups, learn new schedules, fire the due ones. Returns what was fired."""
        now = self.clock()
        live: set[tuple[str, str]] = set()
        for group in self.groups:
            for summary in self._list(group):
                key = (group, summary["Name"])
                live.add(key)
                if key not in self._known:
                    self._learn(group, summary["Name"])
        # Forget schedules deleted by the app (a cancelled warm) so memory stays bounded.
        for key in [key for key in self._known if key not in live]:
            del self._known[key]
        fired = []
        for due in sorted(self._known.values(), key=lambda d: d.fire_at_s):
            if due.fire_at_s > now:
                break
            if self._fire(due):
                fired.append(due)
        return fired

    def _list(self, group: str) -> list[dict[str, Any]]:
        summaries: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(1000):  # bounded pagination
            kwargs: dict[str, Any] = {"GroupName": group, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self.scheduler.list_schedules(**kwargs)
            summaries.extend(page.get("Schedules", []))
            token = page.get("NextToken")
            if not token:
                break
        return summaries

    def _get(self, group: str, name: str) -> dict[str, Any] | None:
        try:
            schedule: dict[str, Any] = self.scheduler.get_schedule(Name=name, GroupName=group)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return schedule

    def _learn(self, group: str, name: str) -> None:
        schedule = self._get(group, name)
        if schedule is None:
            return
        expression = str(schedule.get("ScheduleExpression", ""))
        at_s = parse_at(expression, schedule.get("ScheduleExpressionTimezone"))
        if at_s is None:
            marker = (group, name, expression)
            if marker not in self._ignored:
                self._ignored.add(marker)
                log.warning(
                    "schedule %s/%s: %r is not a one-shot at(); ignored", group, name, expression
                )
            return
        jitter = self._jitter()
        self._known[(group, name)] = Due(group, name, expression, at_s, at_s + jitter)

    def _fire(self, due: Due) -> bool:
        key = (due.group, due.name)
        # Read it again: the app may have deleted or replaced it since it was listed.
        schedule = self._get(due.group, due.name)
        if schedule is None or schedule.get("ScheduleExpression") != due.expression:
            self._known.pop(key, None)
            return False
        self._known.pop(key, None)
        if schedule.get("State", "ENABLED") != "ENABLED":
            return False
        self._deliver(due, schedule.get("Target") or {})
        if schedule.get("ActionAfterCompletion") == "DELETE":
            try:
                self.scheduler.delete_schedule(Name=due.name, GroupName=due.group)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
        self.fired.append(due)
        return True

    def _deliver(self, due: Due, target: dict[str, Any]) -> None:
        """Send the target its Input (an SQS message or an async Lambda invoke) and log it."""
        arn = str(target.get("Arn", ""))
        payload = target.get("Input") or "{}"
        if SQS_ARN_MARKER in arn and self.sqs_client is not None:
            self.sqs_client.send_message(QueueUrl=self._queue_url(arn), MessageBody=payload)
        elif LAMBDA_ARN_MARKER in arn:
            self.lambda_client.invoke(
                FunctionName=arn, InvocationType="Event", Payload=payload.encode()
            )
        else:
            log.warning(
                "schedule %s/%s targets %r, which is not SQS or Lambda; skipped",
                due.group,
                due.name,
                arn,
            )
            return
        late = self.clock() - due.at_s
        log.info(
            "fired %s/%s (at +%.1f s) -> %s %s",
            due.group,
            due.name,
            late,
            arn.rsplit(":", 1)[-1],
            _short(payload),
        )

    def _queue_url(self, arn: str) -> str:
        """arn:aws:sqs:<region>:<account>:<name> -> the queue's URL, as SQS names it."""
        *_, account, name = arn.split(":")
        url: str = self.sqs_client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)[
            "QueueUrl"
        ]
        return url

    # --- background loop -----------------------------------------------------------------

    def start(self) -> SchedulerRunner:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="scheduler-runner", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except (BotoCoreError, ClientError, OSError, ValueError) as error:
                log.warning("scheduler poll failed: %s", error)
            self._stop.wait(self.poll_interval_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None


def _short(payload: str, limit: int = 120) -> str:
    try:
        text = json.dumps(json.loads(payload), separators=(",", ":"))
    except ValueError:
        text = payload
    return text if len(text) <= limit else text[: limit - 1] + "…"
