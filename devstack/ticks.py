"""The warm ticks' queues in the local stack: the tick queue and its DLQ in moto, as
infra/template.yaml declares them, and the event source mapping that feeds the warm function.

Same names as the deployed stack's pattern (`<app>-<stage>-ticks`, `-dlq`), same visibility
timeout (six times the warm function's timeout) and redrive policy (5 receives), so a tick that
fails locally follows the same path as in AWS, into a DLQ that `aws --endpoint-url <awsUrl> sqs`
can read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from devstack.esm import MappingConfig, SqsEventSourceMapping

VISIBILITY_TIMEOUT_S = 1800
MAX_RECEIVE_COUNT = 5


@dataclass(frozen=True)
class TickQueues:
    url: str
    arn: str
    dlq_url: str
    dlq_arn: str


def _arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def create_tick_queues(sqs: Any, prefix: str) -> TickQueues:
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = _arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    url = sqs.create_queue(
        QueueName=f"{prefix}-ticks",
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT_S),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return TickQueues(url, _arn(sqs, url), dlq_url, dlq_arn)


def start_mapping(
    sqs: Any, queues: TickQueues, run_warm: Any, max_concurrency: int, region: str
) -> SqsEventSourceMapping:
    """TickEventSourceMapping: batches of up to 10, no batching window, partial batch responses."""
    config = MappingConfig(
        batch_size=10,
        batching_window_s=0,
        max_concurrency=max_concurrency,
        report_batch_item_failures=True,
    )
    return SqsEventSourceMapping(sqs, queues.url, queues.arn, run_warm, config, region).start()
