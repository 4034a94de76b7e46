"""AWS Secrets Manager: the Anthropic API key of a deployed stack, read once per container."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class SecretString:
    def __init__(self, client_factory: Callable[[], Any], secret_id: str) -> None:
        self._client_factory = client_factory
        self.secret_id = secret_id

    def read(self) -> str:
        response = self._client_factory().get_secret_value(SecretId=self.secret_id)
        return str(response["SecretString"])
