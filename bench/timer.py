"""Timer accuracy and billed Lambda time per warm, on both tick paths, in one run.

On the local stack with AWS's 60 s Scheduler precision emulated (the stack's scheduler runner fires
each one-shot schedule at a uniform random point of [at, at + 59 s]) and Lambda's SQS event source
mapping emulated (devstack/esm.py). Two groups of conversations warm in parallel, each with one
sealed turn:

- queue path: intervals of 100-170 s, sent straight to the tick queue as delayed messages;
- Scheduler path: intervals of 200-230 s, booked on Scheduler, whose delivery (minutes early) the
  warm function puts back on the queue with the remaining delay.

The stack's timer sends targets at most `QUEUE_MAX_DELAY_S` = 180 s away to the queue (SQS allows
900 s; `bench.stackproc --queue-max-delay`), so the Scheduler path fits in a few minutes. Same code
path, smaller numbers: the schedule fires 61 s before its target instead of 300 s.

Measured: the error of a warm is `lastWarmAt` in the update pushed after it minus the `nextWarmAt`
pushed before it (a subscribed WebSocket client reads both); the billed Lambda time of a warm is the
duration of the warm function's invocations that carried its ticks (the Lambda emulator's log,
each invocation split evenly over its records), the requeue invocation included on the Scheduler
path.

References, computed from the same run (no second batch):
- timer error of a naive `at(target)` booking: the delay after `at()` with which the runner fired
  each of this run's schedules (it would start the warm then; Lambda start-up excluded, a lower
  bound). Analytically U[0, 59 s]: p50 29.5 s, p99 58.4 s.
- billed time of the previous design (a schedule booked at floor_to_minute(target - 59 s), the warm
  Lambda sleeping from its firing to the target): for each schedule of this run, its target minus
  that booking's `at` minus the jitter the runner drew for it. Analytically about 60 s.
"""

from __future__ import annotations

import functools
import random
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bench.client import User, connect_users, run_parallel, system_prompt, wait_until, warm_samples
from bench.common import Report, loadavg, percentile
from bench.stack import LocalStack

NAME = "timer"
PER_USER = 4
QUEUE_GROUP = 32
SCHEDULER_GROUP = 32
CONVERSATIONS = QUEUE_GROUP + SCHEDULER_GROUP
USERS = CONVERSATIONS // PER_USER
QUEUE_INTERVALS_S = (100, 170)
SCHEDULER_INTERVALS_S = (200, 230)
QUEUE_MAX_DELAY_S = 180
STACK_ARGS = ["--queue-max-delay", str(QUEUE_MAX_DELAY_S)]
TARGET_P99_S = 2.0
TARGET_BILLED_S = 3.0
PATHS = ("queue", "scheduler")


def _old_at_ms(target_ms: int) -> int:
    """The previous design's booking: floor_to_minute(target - 59 s)."""
    seconds = (target_ms - 59_000) // 1000
    return (seconds - seconds % 60) * 1000


def _setup(user: User, index: int, path: str, rng: random.Random) -> list[str]:
    created = []
    low, high = QUEUE_INTERVALS_S if path == "queue" else SCHEDULER_INTERVALS_S
    for j in range(PER_USER):
        conversation_id = user.create(system_prompt(f"{user.name}-{j}"))
        user.subscribe(conversation_id)
        user.invoke(conversation_id, "set-interval", rng.randint(low, high))
        user.invoke(conversation_id, "toggle", True)
        user.turn(conversation_id, f"Hello from conversation {index}-{j}. What is a cache?")
        created.append(conversation_id)
    return created


def run(stack: LocalStack | None = None, during_wait: Callable[[], None] | None = None) -> Report:
    report = Report(NAME)
    if stack is None:
        with LocalStack(users=USERS, extra=STACK_ARGS) as own:
            return _run(own, report, during_wait)
    return _run(stack, report, during_wait)


def _run(stack: LocalStack, report: Report, during_wait: Callable[[], None] | None) -> Report:
    rng = random.Random(7)
    stack.configure_emulator(tokens_per_second=0, reply_tokens=20)  # quick set-up turns
    users = connect_users(stack.endpoints, stack.tokens, USERS)
    paths = ["queue"] * (QUEUE_GROUP // PER_USER) + ["scheduler"] * (SCHEDULER_GROUP // PER_USER)
    started = int(time.time() * 1000)
    print(
        f"  setting up {CONVERSATIONS} conversations ({QUEUE_GROUP} on the queue path, intervals "
        f"{QUEUE_INTERVALS_S[0]}-{QUEUE_INTERVALS_S[1]} s; {SCHEDULER_GROUP} on the Scheduler "
        f"path, {SCHEDULER_INTERVALS_S[0]}-{SCHEDULER_INTERVALS_S[1]} s) ...",
        flush=True,
    )
    began = time.monotonic()
    jobs = [
        functools.partial(_setup, u, i, p, rng)
        for i, (u, p) in enumerate(zip(users, paths, strict=True))
    ]
    created = run_parallel(jobs, workers=8)
    path_of = {c: p for ids, p in zip(created, paths, strict=True) for c in ids}
    print(f"  set up in {time.monotonic() - began:.1f} s; load {loadavg()}", flush=True)
    stack.configure_emulator(tokens_per_second=40, reply_tokens=300)  # the stack's defaults
    if during_wait is not None:
        during_wait()
    wait_until(
        lambda: {s.conversation_id for s in warm_samples(users, started)} >= set(path_of),
        timeout_s=SCHEDULER_INTERVALS_S[1] + (time.monotonic() - began) + 60,
        step_s=2,
    )
    time.sleep(3)  # the last warms' invocations end and are logged
    samples = warm_samples(users, started)
    for user in users:
        user.close()
    _report(stack, report, samples, path_of)
    return report


def _report(stack: LocalStack, report: Report, samples: list[Any], path_of: dict[str, str]) -> None:
    errors = {
        p: [s.error_ms / 1000 for s in samples if path_of.get(s.conversation_id) == p]
        for p in PATHS
    }
    fired = [(d, p) for d, p in stack.fired() if p.get("conversationId") in path_of]
    naive = [delay for delay, _ in fired]
    old_waits = [(int(p["target"]) - _old_at_ms(int(p["target"]))) / 1000 - d for d, p in fired]
    billed, warms = _billed(stack, path_of, samples)
    report.note(
        f"{len(samples)} warms of {CONVERSATIONS} conversations ({len(errors['queue'])} queue "
        f"path, {len(errors['scheduler'])} Scheduler path); {len(fired)} schedules fired by the "
        f"runner (jittered); load during the run {loadavg()}"
    )
    everything = errors["queue"] + errors["scheduler"]
    if not everything:
        report.add("warms observed", 0, target=f">= {CONVERSATIONS}", met=False)
        return
    _report_lateness(report, errors, naive)
    reference = sum(old_waits) / len(old_waits) if old_waits else None
    _report_billed(report, billed, warms, reference)
    if naive:
        report.note(
            "naive reference = the runner's own firing delays after at() for this run's schedules "
            f"(n={len(naive)}); previous-design reference = target - floor_to_minute(target - 59 s)"
            " - the same draw, per schedule; both computed, no second batch"
        )


def _report_lateness(report: Report, errors: dict[str, list[float]], naive: list[float]) -> None:
    everything = errors["queue"] + errors["scheduler"]
    for q, label in ((50, "p50"), (99, "p99"), (100, "max")):
        value = percentile(everything, q)
        report.add(
            f"warm start - announced nextWarmAt, both paths, {label}",
            value,
            "s",
            reference=percentile(naive, q) if naive else None,
            reference_label="naive at(target)",
            target=f"p99 ≤ {TARGET_P99_S:g} s" if q == 99 else "",
            met=(value <= TARGET_P99_S) if q == 99 else None,
        )
    for path in PATHS:
        if errors[path]:
            report.add(
                f"warm start - announced nextWarmAt, {path} path, p99",
                percentile(errors[path], 99),
                "s",
                note=f"{len(errors[path])} warms; min {min(errors[path]):.3f} s",
            )
    report.add(
        "warms observed", len(everything), target=f">= {CONVERSATIONS}",
        met=len(everything) >= CONVERSATIONS,
    )  # fmt: skip


def _report_billed(
    report: Report, billed: dict[str, float], warms: dict[str, int], reference: float | None
) -> None:
    for path in PATHS:
        if warms[path]:
            mean = billed[path] / warms[path]
            report.add(
                f"billed warm-Lambda time per warm, {path} path, mean",
                mean,
                "s",
                reference=reference,
                reference_label="previous design: in-process wait (this run's draws)",
                target=f"mean ≤ {TARGET_BILLED_S:g} s",
                met=mean <= TARGET_BILLED_S,
                note=f"{warms[path]} warms, {billed[path]:.1f} s of invocations",
            )
            report.extra[f"billed_{path}_s"] = mean
    if reference is not None:
        report.extra["previous_wait_s"] = reference


def _billed(
    stack: LocalStack, path_of: dict[str, str], samples: list[Any]
) -> tuple[dict[str, float], dict[str, int]]:
    """Invocation seconds spent on the observed warms' ticks, per path (each invocation split
    evenly over its records), and the number of those warms."""
    observed = {f"{s.conversation_id}@{s.announced_ms}": s for s in samples}
    seconds: dict[str, float] = defaultdict(float)
    for run in stack.lambda_runs():
        ticks = run.get("ticks") or []
        if run["function"] != "warm" or not ticks:
            continue
        share = run["seconds"] / len(ticks)
        for tick in ticks:
            sample = observed.get(tick)
            if sample is not None:
                seconds[path_of[sample.conversation_id]] += share
    warms = {p: sum(1 for s in samples if path_of.get(s.conversation_id) == p) for p in PATHS}
    return dict(seconds), warms
