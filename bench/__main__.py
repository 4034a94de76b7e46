"""``python -m bench [name ...]``: run every benchmark (or the named ones) and print the table.

Names: coldstart, calls, cost, timer, abort, immediate, scale, policy, capacity (arithmetic over
AWS's default quotas and the calls/timer measurements). `timer`, `abort` and `immediate`
share one local stack when they run together (the other two run while the timer's warms are still
minutes away, so they do not overlap them). `policy` needs no stack: pure arithmetic over simulated idle
gaps (`--gaps`, `--exact-decide`, `--jobs`). `--markdown FILE` also writes the results as Markdown (for docs/performance.md).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import abort, calls, capacity, coldstart, immediate, policy, scale, timer, warmcost
from bench.common import Report, loadavg, machine, print_row, table
from bench.stack import LocalStack

ORDER = (
    "coldstart",
    "calls",
    "cost",
    "timer",
    "abort",
    "immediate",
    "scale",
    "policy",
    "capacity",
)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(ORDER))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    selected = [name for name in ORDER if name in (args.names or ORDER)]
    info = machine()
    print(
        f"bench: {', '.join(selected)} on {info['nproc']} x {info['cpu']}, {info['memory']}, "
        f"Python {info['python']}; load {loadavg()}",
        flush=True,
    )
    began = time.monotonic()
    reports: dict[str, Report] = {}
    for name in selected:
        _run_one(name, selected, args, reports)
    total = time.monotonic() - began
    ordered = [reports[name] for name in ORDER if name in reports]
    markdown = render(ordered, info, total)
    print("\n" + markdown, flush=True)
    if args.markdown is not None:
        args.markdown.write_text(markdown + "\n")
    missed = [row for report in ordered for row in report.rows if row.met is False]
    print(f"\nbench: {total / 60:.1f} min; {len(missed)} target(s) missed", flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="name",
        help=f"benchmarks to run (default: all of {', '.join(ORDER)})",
    )
    parser.add_argument("--scale-conversations", type=int, default=scale.CONVERSATIONS)
    parser.add_argument("--scale-minutes", type=float, default=scale.MINUTES)
    parser.add_argument(
        "--gaps", type=int, default=policy.GAPS, help="policy: idle gaps per gap model"
    )
    parser.add_argument("--seed", type=int, default=policy.SEED, help="policy: RNG seed")
    parser.add_argument(
        "--exact-decide",
        action="store_true",
        help="policy: replay every gap through decide event by event (slower)",
    )
    parser.add_argument(
        "--jobs", type=int, default=0, help="policy: worker processes (0: one per CPU)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the results here")
    return parser


def _run_one(
    name: str, selected: Sequence[str], args: argparse.Namespace, reports: dict[str, Report]
) -> None:
    timed = functools.partial(_timed, reports)
    if name == "coldstart":
        timed(name, coldstart.run)
    elif name == "calls":
        timed(name, calls.run)
    elif name == "cost":
        timed(name, warmcost.run)
    elif name == "timer":
        _timer_sharing_its_stack([n for n in ("abort", "immediate") if n in selected], reports)
    elif name == "abort" and "timer" not in selected:
        timed(name, abort.run)
    elif name == "immediate" and "timer" not in selected:
        timed(name, immediate.run)
    elif name == "scale":
        timed(
            name,
            lambda: scale.run(
                args.scale_conversations,
                args.scale_minutes,
                reports.get("calls"),
                reports.get("timer"),
            ),
        )
    elif name == "policy":
        timed(name, lambda: policy.run(args.gaps, args.seed, args.jobs, args.exact_decide))
    elif name == "capacity":
        timed(name, lambda: capacity.run(reports.get("calls"), reports.get("timer")))


def _timer_sharing_its_stack(shared: Sequence[str], reports: dict[str, Report]) -> None:
    """The timer benchmark, with `abort` and `immediate` run on its stack while its warms are
    still minutes away."""
    timed = functools.partial(_timed, reports)
    users = timer.USERS + abort.USERS + immediate.USERS
    with LocalStack(users=users, extra=timer.STACK_ARGS) as stack:

        def during_wait(s: LocalStack = stack, shared: Sequence[str] = shared) -> None:
            if "abort" in shared:
                timed("abort", lambda: abort.run(s, user_offset=timer.USERS))
            if "immediate" in shared:
                timed(
                    "immediate",
                    lambda: immediate.run(s, user_offset=timer.USERS + abort.USERS),
                )

        timed("timer", functools.partial(timer.run, stack, during_wait=during_wait))


def _timed(reports: dict[str, Report], name: str, job: Callable[[], Report]) -> None:
    print(f"\n== {name} ==", flush=True)
    load_before, started = loadavg(), time.monotonic()
    try:
        report = job()
    except Exception:  # noqa: BLE001 - one crash must not hide the other benchmarks
        traceback.print_exc()
        report = Report(name)
        report.add("benchmark crashed", None, met=False, note="see the trace above")
    report.seconds = time.monotonic() - started
    report.load_before, report.load_after = load_before, loadavg()
    for row in report.rows:
        print_row(row)
    print(
        f"  ({report.seconds:.0f} s; load {report.load_before} -> {report.load_after})",
        flush=True,
    )
    reports[report.bench] = report


def render(reports: list[Report], info: dict[str, str], total_s: float) -> str:
    lines = [
        f"Machine: {info['nproc']} x {info['cpu']} (`nproc` {info['nproc']}), {info['memory']} "
        f"RAM, Python {info['python']}, Linux {info['kernel']}; {info['date']}; "
        f"total {total_s / 60:.1f} min.",
        "",
        table(reports),
        "",
        "Per benchmark (wall time; 1/5/15-min load average before -> after):",
        "",
    ]
    for report in reports:
        lines.append(
            f"- **{report.bench}** {report.seconds:.0f} s; load {report.load_before} -> "
            f"{report.load_after}"
        )
        lines += [f"  - {note}" for note in report.notes]
    for report in reports:
        for block in report.extra.get("projection", []):
            lines += ["", "```", block, "```"]
        for text in report.extra.get("markdown", []):
            lines += ["", text]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
