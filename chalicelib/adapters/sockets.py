"""API Gateway's WebSocket management API: post frames to connections, close them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.lazy import Lazy
from chalicelib.ports import Delivery

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

log = logging.getLogger("cache_warming")


class ManagementApiSockets:
    def __init__(self, client_factory: Callable[[], ApiGatewayManagementApiClient]) -> None:
        self._client = Lazy(client_factory)

    @property
    def client(self) -> ApiGatewayManagementApiClient:
        return self._client()

    def post(self, connection_id: str, frame: dict[str, Any]) -> Delivery:
        """`GoneException` (410) is a gone connection; `PayloadTooLargeException` (413, a frame
        over 128 KB), `LimitExceededException` (429) and transport errors lose this one frame
        (the management API's errors, botocore's apigatewaymanagementapi service model)."""
        try:
            self.client.post_to_connection(
                ConnectionId=connection_id, Data=msgspec.json.encode(frame)
            )
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = error.response.get("Error", {}).get("Code")
            if code == "GoneException" or status == 410:
                return "gone"
            log.warning("post to %s failed: %s", connection_id, code)
            return "failed"
        except BotoCoreError as error:
            log.warning("post to %s failed: %s", connection_id, type(error).__name__)
            return "failed"
        return "delivered"

    def close(self, connection_id: str) -> None:
        """DeleteConnection (`DELETE /@connections/{id}`, API Gateway developer guide, "Use
        @connections commands in your backend service", read 2026-12-07); API Gateway then runs
        `$disconnect` ("The connection can be closed by the server or by the client", "The
        $disconnect route", same guide). `GoneException` (410): already closed. Any other failure
        is logged and left to the 2-hour limit: the connection's expiry already refuses its frames
        and its subscriptions' pushes."""
        try:
            self.client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code != "GoneException":
                log.warning("closing %s failed: %s", connection_id, code)
        except BotoCoreError as error:
            log.warning("closing %s failed: %s", connection_id, type(error).__name__)
