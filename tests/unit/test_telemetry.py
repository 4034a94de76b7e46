"""The tick log line and the EMF metrics the warm and generate functions print."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.pricing import Usage
from chalicelib.logs import emit_turn_metrics, log_tick, record_fields, tick_record
from chalicelib.services import TickReport


def emf_lines(output: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def test_a_warm_logs_one_line_and_emits_its_metrics(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    usage = Usage(cache_read_input_tokens=9000, input_tokens=0)
    report = TickReport("c1", 4, 1000, "warmed", lateness_ms=120, usage=usage, cost_usd=0.0027)
    caplog.set_level("INFO", logger="cache_warming.ticks")
    log_tick(report)
    (record,) = caplog.records
    line = record_fields(record)
    assert (record.getMessage(), line) == ("tick", tick_record(report))
    assert (line["conversationId"], line["seq"], line["latenessMs"]) == ("c1", 4, 120)
    (emf,) = emf_lines(capsys.readouterr().out)
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}  # type: ignore[index]
    assert names == {"Warms", "WarmCostUsd", "CacheHitPct", "TickLatenessMs"}
    assert emf["CacheHitPct"] == [100.0] and emf["conversationId"] == "c1"
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "CacheWarming"  # type: ignore[index]


def test_a_noop_tick_emits_no_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    log_tick(TickReport("c1", 4, 1000, "noop"))
    assert emf_lines(capsys.readouterr().out) == []


@pytest.mark.parametrize("status,name", [("aborted", "TurnsAborted"), ("failed", "TurnsFailed")])
def test_turn_outcomes_are_counted(
    capsys: pytest.CaptureFixture[str], status: str, name: str
) -> None:
    emit_turn_metrics(status)
    (emf,) = emf_lines(capsys.readouterr().out)
    assert emf[name] == [1.0]
