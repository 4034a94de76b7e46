"""CloudWatch metrics in the embedded metric format (a JSON log line CloudWatch turns into
metrics, no API call), through Powertools. Powertools is imported only when a metric is emitted:
the WebSocket handlers emit one only on a rare failure, never on their cold start.

The namespace is the stack's (`METRICS_NAMESPACE`, `CacheWarming/<stack>` when deployed): the
alarms and the dashboard of infra/observability.yaml read the same one."""

from __future__ import annotations

from chalicelib.config import settings


def namespace() -> str:
    return settings().metrics_namespace


def push_failed(reason: str) -> None:
    """A frame not delivered for a reason other than a gone connection (`too-large`, `refused`)."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics(namespace=namespace(), service="push")
    metrics.add_metric(name="PushesFailed", unit=MetricUnit.Count, value=1)
    metrics.add_metadata(key="reason", value=reason)
    metrics.flush_metrics()
