"""The warm ticks' queues in the local stack: the tick queue and its DLQ in moto, as
infra/template.yaml declares them, and the event source mapping that feeds the warm function.

Same names as the deployed stack's pattern (`<app>-<stage>-ticks`, `-dlq`), same visibility
timeout (six times the warm function's timeout) and redrive policy (5 receives), so a tick that
fails locally follows the same path as in AWS, into a DLQ that `aws --endpoint-url <awsUrl> sqs`
can read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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


def create_tick_queues_at(aws_url: str, prefix: str, region: str) -> TickQueues:
    """The queues in the stack's moto, before the app's environment points boto3 at it."""
    import boto3

    sqs = boto3.session.Session().client(
        "sqs",
        endpoint_url=aws_url,
        region_name=region,
        aws_access_key_id="devstack",
        aws_secret_access_key="devstack",
    )
    return create_tick_queues(sqs, prefix)


def start_mapping(
    queues: TickQueues, run_warm: Callable[[dict[str, Any]], Any], max_concurrency: int
) -> SqsEventSourceMapping:
    """TickEventSourceMapping: batches of up to 10, no batching window, partial batch responses.
    Its client reaches moto through the app's endpoint settings (AWS_ENDPOINT_URL_SQS)."""
    import boto3
    from botocore.config import Config

    # One connection per poller: long polls hold theirs for up to 20 s.
    pool = Config(max_pool_connections=max_concurrency + 10)
    session = boto3.session.Session()
    sqs = session.client("sqs", config=pool)
    config = MappingConfig(
        batch_size=10,
        batching_window_s=0,
        max_concurrency=max_concurrency,
        report_batch_item_failures=True,
    )
    region = session.region_name or "us-east-1"
    return SqsEventSourceMapping(sqs, queues.url, queues.arn, run_warm, config, region).start()


def widen_client_pools(connections: int = 64) -> None:
    """Many Lambdas share the app's boto3 clients here (one per container in AWS): give each client
    room for that many connections instead of botocore's default 10, so concurrent warms do not
    open and discard a connection per request ("Connection pool is full")."""
    from botocore.config import Config

    defaults: dict[str, Any] = Config.OPTION_DEFAULTS
    defaults["max_pool_connections"] = connections
