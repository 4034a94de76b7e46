"""Cold start: import time of what each Lambda loads, against a bare Chalice app importing boto3.

Each figure is the median over fresh interpreters of `python -X importtime -c "<imports>"`: the
sum of the cumulative times of the top-level imports the code makes (the interpreter's own
start-up imports, seen in a `-c pass` run, are left out). Runs are interleaved round-robin so a
burst of load from other processes hits every variant alike; one warm-up round (compiling .pyc,
filling the page cache) is discarded.

- WS handlers (`$connect`, `$default`, `$disconnect`) and the REST API: `import app`.
- warm: `import app` plus what the warm handler imports on its first call: the model adapter,
  which imports the `anthropic` SDK, and Powertools' metrics (`chalicelib.logs`).
- generate: the same set, measured separately.

`COLDSTART_BASELINE=REV` (a git revision) also packages REV and measures its WS handlers in the
same rounds as this tree's, printing both medians and their ratio (target: at most 5 % slower);
`COLDSTART_PACKAGE_ROUNDS=N` sets the package rounds (default 10); with a baseline,
`COLDSTART_WS_ONLY=1` measures only the package's bare app and WS handlers, both trees (more
rounds in the same minutes on a busy machine).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench import coldstart_package
from bench.common import PROJECT_DIR, Report, loadavg, median

NAME = "coldstart"
ROUNDS = 20
PACKAGE_ROUNDS = 10
TARGET_WS_RATIO = 1.3
# Logging and tracing may cost the WS handlers' cold start at most 5 % (issue 19).
TARGET_BASELINE_RATIO = 1.05
BASELINE_ENV = "COLDSTART_BASELINE"
ROUNDS_ENV = "COLDSTART_PACKAGE_ROUNDS"
WS_ONLY_ENV = "COLDSTART_WS_ONLY"
FIRST_CALL = (
    "import chalicelib.adapters.model; import anthropic; "
    "from aws_lambda_powertools import Metrics; "
    "from aws_lambda_powertools.metrics import MetricUnit"
)
VARIANTS = {
    "reference": "import bench.bare_app",
    "ws": "import app",
    "warm": f"import app; {FIRST_CALL}",
    "generate": f"import app; {FIRST_CALL}",
}
LABELS = {
    "ws": "WS handlers + REST (import app)",
    "warm": "warm function (app + anthropic + powertools)",
    "generate": "generate function (app + anthropic + powertools)",
}


def _importtime(
    code: str, runner: tuple[list[str], dict[str, str]] | None = None
) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) of every import, in order, indented names kept.
    `runner`: the command and environment to use instead of this interpreter in the project."""
    argv, env = runner or ([sys.executable, "-X", "importtime", "-c", code], dict(os.environ))
    done = subprocess.run(
        argv, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=True
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        rows.append((name[1:].rstrip(), int(self_us), int(cumulative_us)))
    return rows


def _top_level_ms(rows: list[tuple[str, int, int]], startup: set[str]) -> float:
    total = sum(
        c for name, _, c in rows if not name.startswith("  ") and name.strip() not in startup
    )
    return total / 1000


def top_modules(code: str, startup: set[str], count: int = 6) -> list[tuple[str, float]]:
    """The heaviest second-level imports of one run (what to look at first)."""
    rows = _importtime(code)
    nested = [
        (name.strip(), c / 1000)
        for name, _, c in rows
        if name.startswith("  ") and not name.startswith("    ")
    ]
    return sorted(nested, key=lambda item: -item[1])[:count]


def run() -> Report:
    report = Report(NAME)
    if os.environ.get(WS_ONLY_ENV) and os.environ.get(BASELINE_ENV):
        _package_rows(report, ws_only=True)  # more rounds in the same minutes, for the ratio
        return report
    startup = {name.strip() for name, _, _ in _importtime("pass")}
    times: dict[str, list[float]] = {key: [] for key in VARIANTS}
    print(f"  {ROUNDS} rounds of {len(VARIANTS)} fresh interpreters; load {loadavg()}", flush=True)
    for round_index in range(ROUNDS + 1):
        for key, code in VARIANTS.items():
            value = _top_level_ms(_importtime(code), startup)
            if round_index > 0:
                times[key].append(value)
    reference = median(times["reference"])
    report.add(
        "bare Chalice app + boto3 (reference), median",
        reference,
        "ms",
        note=f"min {min(times['reference']):.0f} ms, max {max(times['reference']):.0f} ms",
    )
    for key in ("ws", "warm", "generate"):
        value = median(times[key])
        is_ws = key == "ws"
        report.add(
            f"{LABELS[key]}, median",
            value,
            "ms",
            reference=reference,
            reference_label="bare app",
            target=f"≤ {TARGET_WS_RATIO}x bare" if is_ws else "",
            met=(value / reference <= TARGET_WS_RATIO) if is_ws else None,
            note=f"min {min(times[key]):.0f} ms, max {max(times[key]):.0f} ms",
        )
    heavy = top_modules("import app", startup | {"app"})
    report.note(
        "heaviest imports under `import app` (cumulative ms, one run): "
        + ", ".join(f"{name} {ms:.0f}" for name, ms in heavy)
    )
    _package_rows(report)
    return report


def _package_rows(report: Report, ws_only: bool = False) -> None:
    """The same imports from the deployment package, as Lambda runs them (bench/coldstart_package.py);
    with `COLDSTART_BASELINE=REV`, also the WS handlers of REV's package, interleaved with ours."""
    revision = os.environ.get(BASELINE_ENV, "").strip() or None
    rounds = int(os.environ.get(ROUNDS_ENV) or PACKAGE_ROUNDS)
    with (
        coldstart_package.unpacked() as (shipped, sources),
        coldstart_package.baseline(revision) as old,
    ):
        variants: dict[str, tuple[Path, str]] = {
            "bare": (shipped, coldstart_package.BARE),
            "ws": (shipped, "import app"),
        }
        if not ws_only:
            variants["warm"] = (shipped, f"import app; {FIRST_CALL}")
            variants["ws-sources"] = (sources, "import app")
            variants["warm-sources"] = (sources, f"import app; {FIRST_CALL}")
        if old is not None:
            variants["ws-baseline"] = (old, "import app")
        times = _interleaved(variants, shipped, rounds)
    _report_package(report, times)
    if revision is not None:
        _report_baseline(report, times, revision)


def _interleaved(
    variants: dict[str, tuple[Path, str]], shipped: Path, rounds: int
) -> dict[str, list[float]]:
    """Each variant's import time per round, round-robin, after one discarded warm-up round;
    every other round in reverse order, so that no variant always runs right after another."""
    startup_rows = _importtime("", coldstart_package.command(shipped, "pass"))
    startup = {name.strip() for name, _, _ in startup_rows}
    print(f"  package: {rounds} rounds of {len(variants)}; load {loadavg()}", flush=True)
    times: dict[str, list[float]] = {key: [] for key in variants}
    for round_index in range(rounds + 1):
        order = list(variants.items())
        for key, (root, code) in order[::-1] if round_index % 2 else order:
            runner = coldstart_package.command(root, code)
            value = _top_level_ms(_importtime(code, runner), startup)
            if round_index > 0:
                times[key].append(value)
    return times


def _spread(values: list[float]) -> str:
    return f"min {min(values):.0f} ms, max {max(values):.0f} ms"


def _report_package(report: Report, times: dict[str, list[float]]) -> None:
    bare = median(times["bare"])
    report.add(
        "package: bare Chalice app + boto3 (reference), median",
        bare,
        "ms",
        note=_spread(times["bare"]),
    )
    ws = median(times["ws"])
    report.add(
        "package: WS handlers + REST (import app), median",
        ws,
        "ms",
        reference=bare,
        reference_label="bare app, package",
        target=f"≤ {TARGET_WS_RATIO}x bare",
        met=ws / bare <= TARGET_WS_RATIO,
        note=_spread(times["ws"]),
    )
    if "warm" not in times:
        return
    warm = median(times["warm"])
    report.add(
        f"package: {LABELS['warm']}, median",
        warm,
        "ms",
        reference=bare,
        reference_label="bare app, package",
        note=_spread(times["warm"]),
    )
    for key, shipped_ms in (("ws", ws), ("warm", warm)):
        report.add(
            f"package without bytecode (as `chalice package` ships it): {LABELS[key]}, median",
            median(times[f"{key}-sources"]),
            "ms",
            reference=shipped_ms,
            reference_label="with bytecode",
        )


def _report_baseline(report: Report, times: dict[str, list[float]], revision: str) -> None:
    before, after = times["ws-baseline"], times["ws"]
    # The two ran back to back in each round: the ratio per round cancels most of a load swing
    # that hits both, and the minimum is the run least disturbed.
    paired = median([new / old for old, new in zip(before, after, strict=True)])
    print(
        f"  baseline {revision}: WS handlers median {median(before):.0f} ms ({_spread(before)}); "
        f"this tree {median(after):.0f} ms ({_spread(after)}); ratio of medians "
        f"{median(after) / median(before):.3f}, median of per-round ratios {paired:.3f}, "
        f"ratio of minimums {min(after) / min(before):.3f}",
        flush=True,
    )
    report.add(
        f"package: WS handlers + REST (import app), baseline {revision}, median",
        median(before),
        "ms",
        note=_spread(before),
    )
    report.add(
        f"package: WS handlers + REST (import app), this tree vs {revision}, median",
        median(after),
        "ms",
        reference=median(before),
        reference_label=f"baseline {revision}",
        target=f"≤ {TARGET_BASELINE_RATIO}x baseline",
        met=median(after) / median(before) <= TARGET_BASELINE_RATIO,
        note=f"{_spread(after)}; per-round ratio median {paired:.3f}, "
        f"minimums {min(after) / min(before):.3f}",
    )
