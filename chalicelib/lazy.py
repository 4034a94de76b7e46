"""A value built once, on first use: every AWS client, the SDK clients and the composition root.

Built late so importing costs nothing (a WebSocket handler never pays for what it does not use)
and so moto, or the local stack's endpoints, are in place before any client exists. The build
runs under a lock: the local stack serves handlers from several threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.RLock()

    def __call__(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    def clear(self) -> None:
        with self._lock:
            self._value = None
