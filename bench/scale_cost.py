"""The scale benchmark's AWS cost projection: per 1,000 warming conversations per hour, from the
per-warm call counts of the `calls` benchmark and the warm Lambda's billed time per warm."""

from __future__ import annotations

from collections import Counter

from bench.common import Report

# Prices (USD), as given for the projection.
SCHEDULER_PER_INVOCATION = 1.00 / 1e6
SQS_PER_REQUEST = 0.40 / 1e6  # standard queue, per request (64 KB chunk)
LAMBDA_PER_REQUEST = 0.20 / 1e6
LAMBDA_PER_GB_S = 0.0000133334  # arm64
LAMBDA_GB = 256 / 1024
DDB_PER_WRITE = 1.25 / 1e6
DDB_PER_READ = 0.25 / 1e6
WS_PER_MESSAGE = 1.00 / 1e6
ANTHROPIC_READ_PER_MTOK = 0.30  # Sonnet cache read
PREFIX_TOKENS = 20_000
PER_CONVERSATIONS = 1000


def projection(
    interval_s: float,
    counts: Counter[str],
    posts_per_warm: float,
    lambda_seconds: float,
    scheduled: bool,
) -> tuple[list[tuple[str, str, float]], float, float]:
    """Lines (item, arithmetic, USD per hour) for PER_CONVERSATIONS warming conversations.

    Per warm, counted conservatively as if every batch held one tick: one invocation and a
    ReceiveMessage + DeleteMessage by the event source mapping, plus the app's own calls; on the
    Scheduler path also Scheduler's SendMessage into the queue and the requeue (its SendMessage,
    its invocation, its receive and delete). The mapping's empty long polls are left out: a
    handful of pollers, one request per 20 s each, whatever the load."""
    warms = PER_CONVERSATIONS * 3600 / interval_s
    lines = [
        ("warms", f"{PER_CONVERSATIONS:,} x 3600 s / {interval_s:g} s", warms),
        *_aws_lines(warms, counts, posts_per_warm, lambda_seconds, scheduled),
    ]
    aws = sum(usd for _, _, usd in lines[1:])
    anthropic = warms * PREFIX_TOKENS * ANTHROPIC_READ_PER_MTOK / 1e6
    lines.append(("AWS total", "sum of the above", aws))
    lines.append(("Anthropic", f"{warms:,.0f} x {PREFIX_TOKENS:,} tokens x $0.30/MTok", anthropic))
    return lines, aws, anthropic


def _aws_lines(
    warms: float,
    counts: Counter[str],
    posts_per_warm: float,
    lambda_seconds: float,
    scheduled: bool,
) -> list[tuple[str, str, float]]:
    schedules = counts["CreateSchedule"]
    writes = sum(
        counts[n]
        for n in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
    )
    reads = counts["Query"] + counts["GetItem"]
    sqs = counts["SendMessage"] + 2 + (4 if scheduled else 0)
    invocations = 2 if scheduled else 1
    gb_s = warms * LAMBDA_GB * lambda_seconds
    return [
        (
            "Scheduler",
            f"{warms:,.0f} x {schedules} schedule x $1.00/M",
            warms * schedules * SCHEDULER_PER_INVOCATION,
        ),
        ("SQS requests", f"{warms:,.0f} x {sqs} x $0.40/M", warms * sqs * SQS_PER_REQUEST),
        (
            "Lambda requests",
            f"{warms:,.0f} x {invocations} x $0.20/M",
            warms * invocations * LAMBDA_PER_REQUEST,
        ),
        (
            "Lambda duration",
            f"{warms:,.0f} x {lambda_seconds:.2f} s x 0.25 GB = {gb_s:,.0f} GB-s x $0.0000133334",
            gb_s * LAMBDA_PER_GB_S,
        ),
        ("DynamoDB writes", f"{warms:,.0f} x {writes} x $1.25/M", warms * writes * DDB_PER_WRITE),
        ("DynamoDB reads", f"{warms:,.0f} x {reads} x $0.25/M", warms * reads * DDB_PER_READ),
        (
            "API Gateway messages",
            f"{warms:,.0f} x {posts_per_warm:g} x $1.00/M",
            warms * posts_per_warm * WS_PER_MESSAGE,
        ),
    ]


def project(
    report: Report, calls_report: Report, timer_report: Report | None, interval_s: int
) -> None:
    """Print and report the projection at the run's interval and at the two caches' defaults."""
    blocks = []
    for title, interval, counts, posts, seconds, on_scheduler in _cases(
        report, calls_report, timer_report, interval_s
    ):
        lines, aws, anthropic = projection(interval, counts, posts, seconds, on_scheduler)
        text = [
            f"Per {PER_CONVERSATIONS:,} warming conversations per hour, {title}, 1 subscriber each:"
        ]
        for item, arithmetic, usd in lines:
            amount = f"{usd:,.0f}" if item == "warms" else f"${usd:,.4f}"
            text.append(f"    {item:<21} {arithmetic:<64} = {amount}")
        print("\n".join(text), flush=True)
        blocks.append("\n".join(text))
        report.add(
            f"AWS cost per 1,000 warming conversations per hour, {interval} s interval",
            aws,
            "USD/h",
            reference=anthropic,
            reference_label=f"Anthropic cache reads, {PREFIX_TOKENS // 1000}k-token prefix",
        )
    report.extra["projection"] = blocks


def _cases(
    report: Report, calls_report: Report, timer_report: Report | None, interval_s: int
) -> list[tuple[str, int, Counter[str], float, float, bool]]:
    """(title, interval, per-warm call counts, posts per warm, billed s, on Scheduler) each."""
    queued = calls_report.extra["warm_direct"]  # measured with 10 subscribers
    scheduled = calls_report.extra["warm_scheduled"]  # measured with 1 subscriber
    billed_here = float(report.extra.get("billed_s", 1.0))
    billed_queue, billed_scheduler, source = billed_here, billed_here, "as measured here"
    if timer_report is not None and "billed_scheduler_s" in timer_report.extra:
        billed_queue = float(timer_report.extra.get("billed_queue_s", billed_here))
        billed_scheduler = float(timer_report.extra["billed_scheduler_s"])
        source = "measured in the timer benchmark"
    return [
        (
            f"{interval_s} s interval (this run; tick queue; billed Lambda time measured here)",
            interval_s,
            queued.counts(),
            queued.posts() / 10,
            billed_here,
            False,
        ),
        (
            f"290 s interval (the 5-minute cache's default; tick queue; billed Lambda time {source})",
            290,
            queued.counts(),
            queued.posts() / 10,
            billed_queue,
            False,
        ),
        (
            f"3,590 s interval (1-hour cache; Scheduler path; billed Lambda time {source})",
            3590,
            scheduled.counts(),
            scheduled.posts() / 1,
            billed_scheduler,
            True,
        ),
    ]
