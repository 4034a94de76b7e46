"""Capacity at AWS's default quotas: the most conversations that can warm at a 290 s and a 3,590 s
interval in one Region, before and after the tick queue, and the first quota that binds.

No stack: arithmetic over AWS's published default quotas (below, with their pages, read
2026-12-01) and our measured per-warm work (the `calls` benchmark for DynamoDB units, the `timer`
benchmark for the billed warm-Lambda time per warm on each path; defaults below when they did not
run). N conversations at interval I make R = N / I warms per second; each quota caps R times what
one warm uses of it.

Assumptions, said out loud:
- A warm holds its Lambda for the measured billed time plus `ANTHROPIC_S` for the real Messages API
  call (the local emulator answers in milliseconds; Anthropic's latency for a cached `max_tokens: 0`
  request is not measured here).
- Every SQS batch holds one tick (batches of up to 10 are warmed side by side, which only lowers
  the concurrency used): conservative.
- The warm function's concurrency: the most the default account quota lets one function reserve
  (1,000 minus the 100 Lambda keeps unreserved); the deployed template reserves 300 by default
  (`WarmReservedConcurrency`, leaving 700 for the WebSocket, HTTP and generate functions), shown
  as a note.
- DynamoDB units of a ~20k-token conversation (2 PutItem + 1 Query, sized from the wire).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.common import Report

NAME = "capacity"
INTERVALS_S = (290, 3590)
ANTHROPIC_S = 1.0
# Before: a schedule booked at floor_to_minute(target - 59 s), the warm Lambda waiting from the
# firing to the target (60.7 s measured, docs/performance.md); direct invokes below 150 s.
PREVIOUS_WAIT_S = 60.7
PREVIOUS_DIRECT_BELOW_S = 150
QUEUE_MAX_DELAY_S = 900

# Default quotas per Region (sources in docs/performance.md, "Capacity").
LAMBDA_CONCURRENCY = 1000  # Lambda quotas: concurrent executions
UNRESERVED_MINIMUM = 100  # Lambda keeps this much unreserved for other functions
WARM_CEILING = LAMBDA_CONCURRENCY - UNRESERVED_MINIMUM
ESM_MAX_BATCHES = 1000  # SQS event source mapping: concurrent batches (MaximumConcurrency <= 1000)
TEMPLATE_RESERVED = 300  # infra/template.yaml WarmReservedConcurrency default
SCHEDULER_INVOCATIONS_TPS = 1000  # Scheduler: invocations throttle limit, primary Regions
SCHEDULER_CREATE_TPS = 5000  # Scheduler: CreateSchedule request rate, primary Regions
SCHEDULES = 10_000_000  # Scheduler: number of schedules per Region
DYNAMODB_TABLE_UNITS = 40_000  # DynamoDB on-demand: table-level RRU and WRU per second
SQS_IN_FLIGHT = 120_000  # SQS standard queue: approximate in-flight messages


@dataclass(frozen=True)
class PerWarm:
    lambda_s: float
    invocations: int
    scheduler: bool
    write_units: int
    read_units: float


def per_warm(
    after: bool, interval_s: int, billed: dict[str, float], units: tuple[int, int]
) -> PerWarm:
    wru, rru = units
    if not after:
        wait = interval_s if interval_s < PREVIOUS_DIRECT_BELOW_S else PREVIOUS_WAIT_S
        return PerWarm(wait + ANTHROPIC_S, 1, interval_s >= PREVIOUS_DIRECT_BELOW_S, wru, rru)
    if interval_s <= QUEUE_MAX_DELAY_S:
        return PerWarm(billed["queue"] + ANTHROPIC_S, 1, False, wru, rru)
    return PerWarm(billed["scheduler"] + ANTHROPIC_S, 2, True, wru, rru)


def limits(warm: PerWarm, interval_s: int, after: bool) -> list[tuple[str, float]]:
    """(quota, most conversations it allows) for one path and interval."""
    rows = [
        (
            f"Lambda concurrency ({LAMBDA_CONCURRENCY:,}; at most {WARM_CEILING} reserved for warm)",
            WARM_CEILING / warm.lambda_s,
        ),
        (
            f"DynamoDB on-demand table WRU ({DYNAMODB_TABLE_UNITS:,}/s)",
            DYNAMODB_TABLE_UNITS / warm.write_units,
        ),
        (
            f"DynamoDB on-demand table RRU ({DYNAMODB_TABLE_UNITS:,}/s)",
            DYNAMODB_TABLE_UNITS / warm.read_units,
        ),
    ]
    if after:
        rows.append((f"SQS ESM batches ({ESM_MAX_BATCHES:,})", ESM_MAX_BATCHES / warm.lambda_s))
        rows.append((f"SQS in-flight ({SQS_IN_FLIGHT:,})", SQS_IN_FLIGHT / warm.lambda_s))
    if warm.scheduler:
        rows += [
            (f"Scheduler invocations ({SCHEDULER_INVOCATIONS_TPS:,}/s)", SCHEDULER_INVOCATIONS_TPS),
            (f"Scheduler CreateSchedule ({SCHEDULER_CREATE_TPS:,}/s)", SCHEDULER_CREATE_TPS),
        ]
    # Each quota caps the warm rate R; N = R x I. The schedule count caps N itself.
    capped = [(name, rate * interval_s) for name, rate in rows]
    if warm.scheduler:
        capped.append((f"Scheduler schedules ({SCHEDULES:,})", float(SCHEDULES)))
    return sorted(capped, key=lambda row: row[1])


def run(calls_report: Report | None = None, timer_report: Report | None = None) -> Report:
    report = Report(NAME)
    billed = {"queue": 0.5, "scheduler": 0.5}
    source = "defaults (the timer benchmark did not run)"
    if timer_report is not None and "billed_scheduler_s" in timer_report.extra:
        billed = {
            "queue": float(timer_report.extra["billed_queue_s"]),
            "scheduler": float(timer_report.extra["billed_scheduler_s"]),
        }
        source = "the timer benchmark of this run"
    units = (20, 21)
    if calls_report is not None and "warm_long" in calls_report.extra:
        long = calls_report.extra["warm_long"]
        units = (long.write_units, long.read_units)
    report.note(
        f"billed warm-Lambda time per warm from {source}: queue path {billed['queue']:.2f} s, "
        f"Scheduler path {billed['scheduler']:.2f} s, + {ANTHROPIC_S:g} s assumed for the "
        f"Messages API call; DynamoDB per warm {units[0]} WRU + {units[1]} RRU (~20k tokens)"
    )
    for interval in INTERVALS_S:
        for after in (False, True):
            warm = per_warm(after, interval, billed, units)
            rows = limits(warm, interval, after)
            (binding, most), (second, then) = rows[0], rows[1]
            label = "after (tick queue)" if after else "before (in-Lambda wait)"
            report.add(
                f"most conversations warming every {interval} s, {label}",
                most,
                "conversations",
                note=f"binds first: {binding}; next: {second} at {then:,.0f}; "
                f"{warm.lambda_s:.1f} s of Lambda per warm",
            )
            ceiling = TEMPLATE_RESERVED / warm.lambda_s * interval
            report.note(
                f"{interval} s {label}, with the template's default WarmReservedConcurrency "
                f"{TEMPLATE_RESERVED}: {min(ceiling, most):,.0f} conversations"
            )
    return report
