"""The moto-backed application stack, fresh per test, and the prelude most moto tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.store import create_table
from tests.conftest import TABLE_NAME
from tests.moto_stack import ENV, MotoStack, build, create, join, sealed_turn


@pytest.fixture
def dynamodb(aws: Any) -> Any:
    """A fresh moto account with the app's table (TABLE_NAME) created: its DynamoDB client."""
    client = aws.client("dynamodb")
    create_table(client, TABLE_NAME)
    return client


@pytest.fixture
def stack(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoStack]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    yield build()
    bootstrap.reset()


@pytest.fixture
def conversation_id(stack: MotoStack) -> str:
    """A conversation with one sealed turn (so it has a prefix to warm) whose panel the
    connection `ws-1` has joined: what a warming test starts from."""
    conversation_id = create(stack)
    sealed_turn(stack, conversation_id)
    join(stack, "ws-1", conversation_id)
    return conversation_id
