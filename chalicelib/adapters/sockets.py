"""API Gateway's WebSocket management API: post frames to connections."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

log = logging.getLogger("cache_warming")


class ManagementApiSockets:
    def __init__(self, client_factory: Callable[[], ApiGatewayManagementApiClient]) -> None:
        self._client_factory = client_factory
        self._client: ApiGatewayManagementApiClient | None = None

    @property
    def client(self) -> ApiGatewayManagementApiClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

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
