"""The fields every log line of an invocation carries (request id, conversation, turn, tick seq).

Set at the edge (`chalicelib.logs`), read by the log handlers' filter. Two layers:

- the invocation's fields, module-wide: Lambda gives each concurrent request its own execution
  environment ("Understanding Lambda function scaling", Lambda Developer Guide, read 2026-12-07),
  so one process serves one invocation at a time, and the worker threads of a tick batch see them;
- a unit of work's fields (one tick of a batch, in its own thread), in a ContextVar, so two
  threads never see each other's conversation.

Nothing here imports anything but the standard library: the WebSocket handlers load it cold.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_invocation: dict[str, object] = {}
_unit: ContextVar[dict[str, object] | None] = ContextVar("log_unit", default=None)


def start(**fields: object) -> None:
    """A new invocation: the previous one's fields are gone."""
    _invocation.clear()
    add(**fields)


def add(**fields: object) -> None:
    """Fields learned during the invocation (a value of None is left out)."""
    _invocation.update((key, value) for key, value in fields.items() if value is not None)


def end() -> None:
    _invocation.clear()


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Fields of one unit of work in this thread, over the invocation's."""
    known = {key: value for key, value in fields.items() if value is not None}
    token = _unit.set({**(_unit.get() or {}), **known})
    try:
        yield
    finally:
        _unit.reset(token)


def current() -> dict[str, object]:
    return {**_invocation, **(_unit.get() or {})}
