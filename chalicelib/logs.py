"""Structured log lines: one JSON object per tick."""

from __future__ import annotations

import json
import logging

from chalicelib.services import TickReport

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
