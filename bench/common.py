"""What every benchmark shares: result rows, percentiles, machine load, the final table."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Row:
    """One measured figure, its reference (measured in the same run) and the target verdict."""

    bench: str
    metric: str
    value: float | None
    unit: str = ""
    reference: float | None = None
    reference_label: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.reference in (None, 0):
            return None
        assert self.reference is not None
        return self.value / self.reference


@dataclass
class Report:
    bench: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load_before: str = ""
    load_after: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, metric: str, value: float | None, unit: str = "", **kwargs: object) -> Row:
        row = Row(self.bench, metric, value, unit, **kwargs)  # type: ignore[arg-type]
        self.rows.append(row)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "n/a"


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
            memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    magnitude = abs(value)
    if isinstance(value, int):
        text = f"{value:,}"
    elif magnitude == 0:
        text = "0"
    elif magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.3f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def verdict(met: bool | None) -> str:
    return {True: "yes", False: "**NO**", None: "—"}[met]


def table(reports: Sequence[Report]) -> str:
    """The Markdown table printed at the end and pasted into docs/performance.md."""
    lines = [
        "| benchmark | metric | measured | reference | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        for row in report.rows:
            reference = "—"
            if row.reference is not None:
                reference = fmt(row.reference, row.unit)
                if row.reference_label:
                    reference += f" ({row.reference_label})"
            ratio = "—" if row.ratio is None else f"{row.ratio:.3g}"
            metric = row.metric + (f" — {row.note}" if row.note else "")
            lines.append(
                f"| {row.bench} | {metric} | {fmt(row.value, row.unit)} | {reference} | "
                f"{ratio} | {row.target or '—'} | {verdict(row.met)} |"
            )
    return "\n".join(lines)


def print_row(row: Row) -> None:
    parts = [f"  {row.metric}: {fmt(row.value, row.unit)}"]
    if row.reference is not None:
        parts.append(f"reference {fmt(row.reference, row.unit)} {row.reference_label}".rstrip())
    if row.ratio is not None:
        parts.append(f"ratio {row.ratio:.3g}")
    if row.target:
        parts.append(
            f"target {row.target}: {'met' if row.met else 'MISSED'}"
            if row.met is not None
            else f"target {row.target}"
        )
    print(" | ".join(parts), flush=True)
