"""Request bodies for the tests, parsed by the edge's own parser (`wire/commands.py`).

The services take typed commands only; the tests write bodies as the client would send them and
pass them through the same parser `app.py` uses, so a test cannot reach a service with a shape the
edge would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.wire import commands


def conversation(body: Mapping[str, Any] | None = None) -> commands.CreateConversation:
    """A `POST /conversations` body as the handler parses it."""
    return commands.create_conversation(body or {})


def turn(body: Mapping[str, Any]) -> commands.StartTurn:
    """A `POST /conversations/{id}/turns` body as the handler parses it."""
    return commands.start_turn(body)
