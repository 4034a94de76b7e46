"""API Gateway's WebSocket management API: post frames to connections."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import ClientError

from chalicelib.lazy import Lazy

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

log = logging.getLogger("cache_warming")


class ManagementApiSockets:
    def __init__(self, client_factory: Callable[[], ApiGatewayManagementApiClient]) -> None:
        self._client = Lazy(client_factory)

    @property
    def client(self) -> ApiGatewayManagementApiClient:
        return self._client()

    def post(self, connection_id: str, frame: dict[str, Any]) -> bool:
        try:
            self.client.post_to_connection(
                ConnectionId=connection_id, Data=msgspec.json.encode(frame)
            )
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = error.response.get("Error", {}).get("Code")
            if code == "GoneException" or status == 410:
                return False
            # Throttling or an oversized frame loses this one frame, not the connection.
            log.warning("post to %s failed: %s", connection_id, code)
        return True
