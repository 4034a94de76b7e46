"""AWS Lambda: asynchronous invokes of our own functions (the warm timer's near path, generate)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.lazy import Lazy

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class AsyncInvoker:
    def __init__(self, client_factory: Callable[[], LambdaClient], generate_function: str) -> None:
        self._client = Lazy(client_factory)
        self.generate_function = generate_function

    @property
    def client(self) -> LambdaClient:
        return self._client()

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
