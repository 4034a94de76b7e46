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

import contextlib
import functools
import math
import os
import threading
import time
from collections import Counter

from bench import calls as calls_bench
from bench.client import (
    User,
    connect_users,
    run_parallel,
    system_prompt,
    wait_until,
    warm_samples,
)
from bench.common import Report, loadavg, percentile
from bench.scale_cost import project
from bench.stack import LocalStack, ProcSample, peak_rss_kib, proc_sample
from devstack.probe import ProbeError

NAME = "scale"
# The size: 1,000 conversations warming every 60 s, watched for 5 minutes.
CONVERSATIONS = 1000
MINUTES = 5.0
PER_USER = 5
INTERVAL_S = 60
TARGET_P99_S = 2.0
SAMPLE_EVERY_S = 5.0


def _prepare(user: User, first: int) -> int:
    """Conversations with warming on and one turn each: the sealed turn books the first warm one
    interval later. Returns failures (a conversation whose set-up failed twice is left out: the
    local stack's moto answers some concurrent transactions with HTTP 500).

    Warming is enabled before the turn on purpose. Enabling it on conversations whose cache was
    last refreshed more than an interval ago books an immediate warm by direct invoke, and that
    tick can reach the warm function before the state write that armed it (see
    docs/performance.md): many would be lost, and this benchmark measures steady warming."""
    failures = 0
    for j in range(PER_USER):
        for attempt in range(2):
            created = None
            try:
                created = user.create(system_prompt(f"{user.name}-{j}-{attempt}"))
                user.subscribe(created)
                user.invoke(created, "set-interval", INTERVAL_S)
                user.invoke(created, "toggle", True)
                user.turn(created, f"Hello from conversation {first + j}.")
                break
            except (ProbeError, RuntimeError):
                failures += 1
                if created is not None:
                    user.conversations.remove(created)
    return failures


def _sealed_ids(user: User) -> set[str]:
    """Conversations of the user that pushed the update following their sealed turn."""
    done = set()
    for received in user.socket.frames_since(0):
        frame = received.frame
        if frame.get("type") == "update" and "requestId" not in frame:
            fields = {f.get("id"): f.get("value") for f in frame.get("fields", [])}
            if fields.get("last-cache-pct") is not None:
                done.add(str(frame.get("conversationId")))
    return done


def _sealed(user: User) -> bool:
    return _sealed_ids(user) >= set(user.conversations)


def _sealed_one(user: User, conversation_id: str) -> bool:
    return conversation_id in _sealed_ids(user)


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[ProcSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(proc_sample(self.pid))
            except OSError:
                return
            self._stop.wait(SAMPLE_EVERY_S)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class KeepAlive:
    """A ping from every user's socket every few minutes, as a front end does (the stack's gateway
    closes a socket after 10 minutes without a client message, as API Gateway does): a long
    set-up must not cost the subscribers their sockets."""

    EVERY_S = 240.0

    def __init__(self, users: list[User]) -> None:
        self.users = users
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keepalive", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.EVERY_S):
            for user in self.users:
                with contextlib.suppress(ProbeError, RuntimeError, OSError):
                    user.request({"type": "ping"}, timeout_s=10)

    def start(self) -> KeepAlive:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


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


def _run(stack: LocalStack, report: Report, requested: int, minutes: float) -> None:
    conversations = requested
    minutes = max(minutes, INTERVAL_S / 60)  # a shorter window may hold no warm at all
    stack.configure_emulator(tokens_per_second=0, reply_tokens=20)
    users = connect_users(stack.endpoints, stack.tokens, math.ceil(conversations / PER_USER))
    started_ms = int(time.time() * 1000)
    sampler = Sampler(stack.pid).start()
    keepalive = KeepAlive(users).start()
    print(
        f"  setting up {conversations} conversations ({len(users)} users, {INTERVAL_S} s "
        f"interval) ...",
        flush=True,
    )
    began = time.monotonic()
    setup_first = proc_sample(stack.pid)
    failures = sum(
        run_parallel(
            [functools.partial(_prepare, u, i * PER_USER) for i, u in enumerate(users)], workers=8
        )
    )
    progress = [-1, time.monotonic()]

    def all_sealed() -> bool:
        sealed = sum(1 for u in users if _sealed(u))
        if sealed != progress[0]:
            progress[:] = [sealed, time.monotonic()]
        # A turn whose seal failed in the stack never seals: stop waiting once nothing moves.
        return sealed == len(users) or time.monotonic() - progress[1] > 60

    wait_until(all_sealed, timeout_s=900, step_s=1)
    for user in users:
        if not _sealed(user):
            user.conversations = [c for c in user.conversations if _sealed_one(user, c)]
    conversations = sum(len(u.conversations) for u in users)
    setup_s = time.monotonic() - began
    setup_last = proc_sample(stack.pid)
    setup_cores = (setup_last.cpu_s - setup_first.cpu_s) / (setup_last.at - setup_first.at)
    print(
        f"  set up in {setup_s:.0f} s; load {loadavg()}; watching for {minutes:g} min ...",
        flush=True,
    )
    # The window starts once every conversation has had time for its first warm.
    time.sleep(INTERVAL_S)
    window_start = time.time()
    first = proc_sample(stack.pid)
    client_cpu_start = sum(os.times()[:2])
    time.sleep(minutes * 60)
    last = proc_sample(stack.pid)
    client_cpu = sum(os.times()[:2]) - client_cpu_start
    window_end = time.time()
    peak_kib = peak_rss_kib(stack.pid)
    sampler.stop()
    keepalive.stop()
    load = loadavg()
    window_s = window_end - window_start
    ticks = stack.ticks()
    in_window = [
        t
        for t in ticks
        if t.get("latenessMs") is not None
        and window_start * 1000 <= t["target"] + t["latenessMs"] < window_end * 1000
    ]
    actions = Counter(t["action"] for t in in_window)
    warmed = actions["warmed"]
    warming = {t["conversationId"] for t in in_window if t["action"] == "warmed"}
    all_actions = Counter(t["action"] for t in ticks)
    samples = [
        s
        for s in warm_samples(users, started_ms)
        if window_start * 1000 <= s.started_ms < window_end * 1000
    ]
    errors = [s.error_ms / 1000 for s in samples]
    server_errors = [t["latenessMs"] / 1000 for t in in_window if t["action"] == "warmed"]
    runs = [
        r
        for r in stack.lambda_runs()
        if r["function"] == "warm" and window_start <= r["start"] + r["seconds"] < window_end
    ]
    durations = [r["seconds"] for r in runs]
    for user in users:
        user.close()

    offered = conversations / INTERVAL_S
    rate = warmed / window_s
    cores = (last.cpu_s - first.cpu_s) / (last.at - first.at)
    rss = [s.rss_kib for s in sampler.samples if s.at >= first.at] or [last.rss_kib]
    if failures or conversations != requested:
        report.note(
            f"{requested - conversations} of {requested} conversations left out: their "
            f"set-up failed in the local stack ({failures} failed attempts)"
        )
    report.note(
        f"{conversations} conversations set up in {setup_s:.0f} s, then a {window_s / 60:.1f}-min "
        f"window: {sum(actions.values())} ticks ({', '.join(f'{a} {n}' for a, n in sorted(actions.items()))}); "
        f"{len(errors)} warms seen by subscribers; load at the end {load}"
    )
    report.add("conversations x window", conversations, note=f"{window_s / 60:.1f} min window")
    report.add(
        "conversations that warmed in the window",
        len(warming),
        reference=conversations,
        reference_label="set up",
        target="all",
        met=len(warming) == conversations,
        note="all ticks of the run: "
        + ", ".join(f"{a} {n}" for a, n in sorted(all_actions.items())),
    )
    report.add(
        "set-up rate (create, subscribe, interval, toggle, sealed turn)",
        conversations / setup_s,
        "conversations/s",
        note=f"stack CPU {setup_cores * 100:.0f}% of one core during set-up",
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
    if errors:
        for q, label in ((50, "p50"), (99, "p99"), (100, "max")):
            value = percentile(errors, q)
            report.add(
                f"warm start - announced nextWarmAt under load, {label}",
                value,
                "s",
                target=f"p99 ≤ {TARGET_P99_S:g} s" if q == 99 else "",
                met=(value <= TARGET_P99_S) if q == 99 else None,
                note="subscribers' view" if q == 50 else "",
            )
    if server_errors:
        report.add(
            "same, server tick log, p99",
            percentile(server_errors, 99),
            "s",
            note=f"{len(server_errors)} warms",
        )
    report.add(
        "stack CPU (all threads, the stack and its moto process)",
        cores * 100,
        "% of one core",
        reference=(os.cpu_count() or 1) * 100,
        reference_label="the machine",
        note=f"bench clients used another {100 * client_cpu / window_s:.0f}%",
    )
    growth = (last.rss_kib - first.rss_kib) / 1024 / ((last.at - first.at) / 60)
    report.add(
        "stack memory RSS, end of window",
        last.rss_kib / 1024,
        "MiB",
        reference=first.rss_kib / 1024,
        reference_label="start of window",
        note=f"{growth:+.0f} MiB/min over the window; peak {peak_kib / 1024:.0f} MiB "
        f"(VmHWM), max sampled {max(rss) / 1024:.0f} MiB; {last.threads} threads",
    )
    if durations and warmed:
        records = sum(len(r.get("ticks") or []) for r in runs)
        billed = sum(durations) / warmed
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
