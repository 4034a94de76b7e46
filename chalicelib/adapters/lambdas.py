"""AWS Lambda: asynchronous invokes of our own functions (the warm timer's near path, generate)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class AsyncInvoker:
    def __init__(self, client_factory: Callable[[], LambdaClient], generate_function: str) -> None:
        self._client_factory = client_factory
        self._client: LambdaClient | None = None
        self.generate_function = generate_function

    @property
    def client(self) -> LambdaClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def invoke(self, function: str, payload: dict[str, Any]) -> None:
        # InvocationType Event: Lambda queues it and retries on failure; we never wait for it.
        self.client.invoke(
            FunctionName=function,
            InvocationType="Event",
            Payload=json.dumps(payload).encode(),
        )

    def generate(self, conversation_id: str, turn_index: int) -> None:
        self.invoke(
            self.generate_function, {"conversationId": conversation_id, "turnIndex": turn_index}
        )
