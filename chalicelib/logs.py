"""Structured logs and CloudWatch metrics: one JSON line per tick, EMF metrics per warm and turn.

Metrics go through Powertools' embedded metric format (a JSON log line CloudWatch turns into
metrics, no API call). Powertools is imported inside the functions: only the warm and generate
Lambdas pay for it, never the WebSocket handlers' cold start.
"""

from __future__ import annotations

import json
import logging

from chalicelib.metrics import namespace
from chalicelib.services.ticks import TickReport

log = logging.getLogger("cache_warming.ticks")


def tick_record(report: TickReport) -> dict[str, object]:
    return {
        "event": "tick",
        "conversationId": report.conversation_id,
        "seq": report.seq,
        "target": report.target,
        "action": report.action,
        "latenessMs": report.lateness_ms,
        "usage": report.usage.to_dict() if report.usage else None,
        "costUsd": report.cost_usd,
        "error": report.error,
        **report.extra,
    }


def log_tick(report: TickReport) -> None:
    log.info(json.dumps(tick_record(report), separators=(",", ":")))
    if report.action in ("warmed", "warm-failed"):
        emit_tick_metrics(report)


def emit_tick_metrics(report: TickReport) -> None:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics(namespace=namespace(), service="warm")
    if report.action == "warmed":
        metrics.add_metric(name="Warms", unit=MetricUnit.Count, value=1)
        if report.cost_usd is not None:
            metrics.add_metric(name="WarmCostUsd", unit=MetricUnit.NoUnit, value=report.cost_usd)
        hit = report.usage.cache_hit_pct if report.usage else None
        if hit is not None:
            metrics.add_metric(name="CacheHitPct", unit=MetricUnit.Percent, value=hit)
    else:
        metrics.add_metric(name="WarmFailures", unit=MetricUnit.Count, value=1)
    if report.lateness_ms is not None:
        metrics.add_metric(
            name="TickLatenessMs", unit=MetricUnit.Milliseconds, value=report.lateness_ms
        )
    # Per-conversation detail stays in the log line, not in a (costly) metric dimension.
    metrics.add_metadata(key="conversationId", value=report.conversation_id)
    metrics.flush_metrics()


def emit_turn_metrics(status: str) -> None:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    name = {"sealed": "TurnsSealed", "aborted": "TurnsAborted", "failed": "TurnsFailed"}.get(status)
    if name is None:
        return
    metrics = Metrics(namespace=namespace(), service="generate")
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
