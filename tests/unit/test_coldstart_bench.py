"""The cold-start bench's same-run baseline rows: medians of both trees and the ≤ 5 % verdict."""

from __future__ import annotations

from bench import coldstart
from bench.common import Report


def baseline_rows(before: list[float], after: list[float]) -> tuple[float, float, bool | None]:
    report = Report(coldstart.NAME)
    coldstart._report_baseline(report, {"ws-baseline": before, "ws": after}, "f1e4bf3")
    old, new = report.rows
    assert "baseline f1e4bf3" in old.metric and new.reference == old.value
    assert new.ratio is not None
    return new.ratio, old.value or 0.0, new.met


def test_a_tree_within_five_percent_of_its_baseline_meets_the_target() -> None:
    ratio, before, met = baseline_rows([200, 210, 190], [204, 206, 300])
    assert (before, round(ratio, 3), met) == (200, 1.03, True)


def test_a_tree_more_than_five_percent_slower_misses_it() -> None:
    ratio, _, met = baseline_rows([200, 200, 200], [211, 212, 500])
    assert ratio > 1.05 and met is False
