"""The table every storage adapter writes to: its client, paginated queries, batched writes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from chalicelib.lazy import Lazy

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        KeysAndAttributesTypeDef,
        QueryInputTypeDef,
        WriteRequestTypeDef,
    )

    from chalicelib.adapters.store_items import Item

# BatchWriteItem accepts at most 25 requests per call, BatchGetItem 100 keys.
_BATCH = 25
_BATCH_GET = 100
_MAX_UNPROCESSED_ROUNDS = 8


def client_config() -> Config:
    """The DynamoDB client's retries and timeouts, set here rather than left to botocore's
    defaults, because the warm's retry room and the wait for a booking write are sized on them
    (domain/timing.py): botocore 1.44's default mode is `standard` (`configprovider.py`), which
    makes 4 attempts on DynamoDB (`retries/standard.py`, `_SERVICE_MAX_ATTEMPTS`) with a
    back-off of rand(0, 1) x 1, 2, 4 s after a throttle (`ExponentialBackoff`: 7 s at most in
    all) and 25 ms x 1, 2, 4 after other errors; its default socket timeouts are 60 s. A
    DynamoDB request answers in milliseconds, so 2 s to connect and 5 s to read leave a stalled
    socket 7 s per attempt: one call ends within 4 x 7 + 7 = 35 s."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": 4},
        connect_timeout=2,
        read_timeout=5,
    )


def default_client() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb", config=client_config())


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class Table:
    def __init__(
        self,
        table_name: str,
        client_factory: Callable[[], DynamoDBClient] = default_client,
    ) -> None:
        self._table = table_name
        self._client = Lazy(client_factory)

    @property
    def client(self) -> DynamoDBClient:
        return self._client()

    def _query(self, request: QueryInputTypeDef) -> Iterator[Item]:
        while True:
            page = self.client.query(**request)
            yield from page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request = {**request, "ExclusiveStartKey": last}

    def _batch_get(
        self, keys: Sequence[Item], consistent: bool, projection: str | None = None
    ) -> list[Item]:
        """The items of `keys` that exist, in no particular order (BatchGetItem: at most 100
        keys a call; unprocessed keys are asked for again after a back-off, as for writes)."""
        found: list[Item] = []
        for start in range(0, len(keys), _BATCH_GET):
            request: dict[str, Any] = {"Keys": list(keys[start : start + _BATCH_GET])}
            request["ConsistentRead"] = consistent
            if projection is not None:
                request["ProjectionExpression"] = projection
            for attempt in range(_MAX_UNPROCESSED_ROUNDS):
                if attempt:
                    time.sleep(0.05 * 2**attempt)
                response = self.client.batch_get_item(
                    RequestItems={self._table: cast("KeysAndAttributesTypeDef", request)}
                )
                found += response.get("Responses", {}).get(self._table, [])
                pending = response.get("UnprocessedKeys", {}).get(self._table)
                if not pending:
                    break
                request = cast("dict[str, Any]", pending)
            else:
                raise RuntimeError("batch get left keys unprocessed")
        return found

    def _batch_write(self, requests: Sequence[WriteRequestTypeDef]) -> None:
        for start in range(0, len(requests), _BATCH):
            pending = list(requests[start : start + _BATCH])
            for attempt in range(_MAX_UNPROCESSED_ROUNDS):
                if attempt:
                    # Unprocessed items mean throttling: back off before resubmitting them.
                    time.sleep(0.05 * 2**attempt)
                response = self.client.batch_write_item(RequestItems={self._table: pending})
                unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
                if not unprocessed:
                    break
                pending = cast("list[WriteRequestTypeDef]", unprocessed)
            else:
                raise RuntimeError(f"batch write left {len(pending)} items unprocessed")
