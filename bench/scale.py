"""Scale: many conversations warming at 60 s intervals on one local stack.

Each conversation has one sealed turn, its surface subscribed by its user's socket (5
conversations per user), and a 60 s interval: every warm is a delayed message on the tick queue,
read by the event source mapping (devstack/esm.py) which invokes the warm function with batches of
up to 10 ticks; no Lambda sleeps for its target. After set-up, the stack is watched for a fixed
window: warms per second against the offered load (one warm per conversation per interval), the
warm-start error as in the timer benchmark, the billed warm-Lambda time per warm, and the stack
process's CPU and memory from /proc (everything — moto, the emulators, the gateway, the Lambda
threads — runs in that one process; the benchmark's own clients run in another).

The AWS cost projection takes the per-warm call counts from the `calls` benchmark (run here if it
did not run before) and the warm Lambda's measured billed time per warm from this run.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench import calls as calls_bench
from bench.client import (
    User,
    connect_users,
    warm_samples,
)
from bench.common import Report, loadavg, percentile
from bench.scale_cost import project
from bench.scale_parts import INTERVAL_S, PER_USER, KeepAlive, Sampler, SetUp, set_up
from bench.stack import LocalStack, ProcSample, peak_rss_kib, proc_sample

NAME = "scale"
# The size: 1,000 conversations warming every 60 s, watched for 5 minutes.
CONVERSATIONS = 1000
MINUTES = 5.0
TARGET_P99_S = 2.0


def run(
    conversations: int = CONVERSATIONS,
    minutes: float = MINUTES,
    calls_report: Report | None = None,
    timer_report: Report | None = None,
) -> Report:
    report = Report(NAME)
    users_needed = math.ceil(conversations / PER_USER)
    with LocalStack(users=users_needed) as stack:
        _run(stack, report, conversations, minutes)
    if calls_report is None or "warm_scheduled" not in calls_report.extra:
        print("  (running the calls benchmark for the per-warm call counts)", flush=True)
        calls_report = calls_bench.run()
    project(report, calls_report, timer_report, INTERVAL_S)
    return report


@dataclass(frozen=True)
class _Window:
    start: float
    end: float
    first: ProcSample
    last: ProcSample
    client_cpu_s: float
    peak_kib: int

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def holds(self, epoch_s: float) -> bool:
        return self.start <= epoch_s < self.end

    def holds_ms(self, epoch_ms: float) -> bool:
        return self.start * 1000 <= epoch_ms < self.end * 1000


@dataclass(frozen=True)
class _Seen:
    """What the stack's logs and the subscribers saw in the window."""

    actions: Counter[str]
    all_actions: Counter[str]
    warming: set[str]
    errors: list[float]
    server_errors: list[float]
    runs: list[dict[str, Any]]

    @property
    def warmed(self) -> int:
        return self.actions["warmed"]


def _run(stack: LocalStack, report: Report, requested: int, minutes: float) -> None:
    minutes = max(minutes, INTERVAL_S / 60)  # a shorter window may hold no warm at all
    stack.configure_emulator(tokens_per_second=0, reply_tokens=20)
    users = connect_users(stack.endpoints, stack.tokens, math.ceil(requested / PER_USER))
    started_ms = int(time.time() * 1000)
    sampler = Sampler(stack.pid).start()
    keepalive = KeepAlive(users).start()
    print(
        f"  setting up {requested} conversations ({len(users)} users, {INTERVAL_S} s interval) ...",
        flush=True,
    )
    setup = set_up(stack, users)
    print(
        f"  set up in {setup.seconds:.0f} s; load {loadavg()}; watching for {minutes:g} min ...",
        flush=True,
    )
    # The window starts once every conversation has had time for its first warm.
    time.sleep(INTERVAL_S)
    window = _watch(stack, minutes)
    sampler.stop()
    keepalive.stop()
    load = loadavg()
    seen = _seen(stack, users, started_ms, window)
    for user in users:
        user.close()
    _report_warming(report, requested, setup, window, seen, load)
    _report_resources(report, window, seen, sampler)


def _watch(stack: LocalStack, minutes: float) -> _Window:
    window_start = time.time()
    first = proc_sample(stack.pid)
    client_cpu_start = sum(os.times()[:2])
    time.sleep(minutes * 60)
    last = proc_sample(stack.pid)
    client_cpu = sum(os.times()[:2]) - client_cpu_start
    window_end = time.time()
    peak_kib = peak_rss_kib(stack.pid)
    return _Window(window_start, window_end, first, last, client_cpu, peak_kib)


def _seen(stack: LocalStack, users: list[User], started_ms: int, window: _Window) -> _Seen:
    ticks = stack.ticks()
    in_window = [
        t
        for t in ticks
        if t.get("latenessMs") is not None and window.holds_ms(t["target"] + t["latenessMs"])
    ]
    samples = [s for s in warm_samples(users, started_ms) if window.holds_ms(s.started_ms)]
    runs = [
        r
        for r in stack.lambda_runs()
        if r["function"] == "warm" and window.holds(r["start"] + r["seconds"])
    ]
    return _Seen(
        actions=Counter(t["action"] for t in in_window),
        all_actions=Counter(t["action"] for t in ticks),
        warming={t["conversationId"] for t in in_window if t["action"] == "warmed"},
        errors=[s.error_ms / 1000 for s in samples],
        server_errors=[t["latenessMs"] / 1000 for t in in_window if t["action"] == "warmed"],
        runs=runs,
    )


def _report_warming(
    report: Report, requested: int, setup: SetUp, window: _Window, seen: _Seen, load: str
) -> None:
    conversations, actions, window_s = setup.conversations, seen.actions, window.seconds
    offered = conversations / INTERVAL_S
    rate = seen.warmed / window_s
    if setup.failures or conversations != requested:
        report.note(
            f"{requested - conversations} of {requested} conversations left out: their "
            f"set-up failed in the local stack ({setup.failures} failed attempts)"
        )
    report.note(
        f"{conversations} conversations set up in {setup.seconds:.0f} s, then a {window_s / 60:.1f}-min "
        f"window: {sum(actions.values())} ticks ({', '.join(f'{a} {n}' for a, n in sorted(actions.items()))}); "
        f"{len(seen.errors)} warms seen by subscribers; load at the end {load}"
    )
    report.add("conversations x window", conversations, note=f"{window_s / 60:.1f} min window")
    report.add(
        "conversations that warmed in the window",
        len(seen.warming),
        reference=conversations,
        reference_label="set up",
        target="all",
        met=len(seen.warming) == conversations,
        note="all ticks of the run: "
        + ", ".join(f"{a} {n}" for a, n in sorted(seen.all_actions.items())),
    )
    report.add(
        "set-up rate (create, subscribe, interval, toggle, sealed turn)",
        conversations / setup.seconds,
        "conversations/s",
        note=f"stack CPU {setup.cores * 100:.0f}% of one core during set-up",
    )
    report.add(
        "warms per second, sustained",
        rate,
        "/s",
        reference=offered,
        reference_label=f"offered: {conversations}/{INTERVAL_S} s",
        target="≥ 0.95 x offered",
        met=rate >= 0.95 * offered,
    )
    _report_lateness(report, seen)


def _report_lateness(report: Report, seen: _Seen) -> None:
    if seen.errors:
        for q, label in ((50, "p50"), (99, "p99"), (100, "max")):
            value = percentile(seen.errors, q)
            report.add(
                f"warm start - announced nextWarmAt under load, {label}",
                value,
                "s",
                target=f"p99 ≤ {TARGET_P99_S:g} s" if q == 99 else "",
                met=(value <= TARGET_P99_S) if q == 99 else None,
                note="subscribers' view" if q == 50 else "",
            )
    if seen.server_errors:
        report.add(
            "same, server tick log, p99",
            percentile(seen.server_errors, 99),
            "s",
            note=f"{len(seen.server_errors)} warms",
        )


def _report_resources(report: Report, window: _Window, seen: _Seen, sampler: Sampler) -> None:
    first, last = window.first, window.last
    cores = (last.cpu_s - first.cpu_s) / (last.at - first.at)
    rss = [s.rss_kib for s in sampler.samples if s.at >= first.at] or [last.rss_kib]
    report.add(
        "stack CPU (all threads, the stack and its moto process)",
        cores * 100,
        "% of one core",
        reference=(os.cpu_count() or 1) * 100,
        reference_label="the machine",
        note=f"bench clients used another {100 * window.client_cpu_s / window.seconds:.0f}%",
    )
    growth = (last.rss_kib - first.rss_kib) / 1024 / ((last.at - first.at) / 60)
    report.add(
        "stack memory RSS, end of window",
        last.rss_kib / 1024,
        "MiB",
        reference=first.rss_kib / 1024,
        reference_label="start of window",
        note=f"{growth:+.0f} MiB/min over the window; peak {window.peak_kib / 1024:.0f} MiB "
        f"(VmHWM), max sampled {max(rss) / 1024:.0f} MiB; {last.threads} threads",
    )
    _report_billed(report, seen)


def _report_billed(report: Report, seen: _Seen) -> None:
    durations = [r["seconds"] for r in seen.runs]
    if durations and seen.warmed:
        records = sum(len(r.get("ticks") or []) for r in seen.runs)
        billed = sum(durations) / seen.warmed
        report.add(
            "billed warm-Lambda time per warm (invocations in the window / warms)",
            billed,
            "s",
            reference=INTERVAL_S,
            reference_label="previous design: a direct invoke slept the interval",
            target="mean ≤ 3 s",
            met=billed <= 3.0,
            note=f"{len(durations)} invocations, {records / len(durations):.1f} ticks each; "
            f"invocation p99 {percentile(durations, 99):.2f} s",
        )
        report.extra["billed_s"] = billed
