"""AWS calls and estimated DynamoDB capacity units of a block of app code, counted with botocore
`before-call`/`after-call` hooks on the app's own clients (bench calls).

Writes bill per started 1 KB of request body, twice that inside a transaction; reads per started
4 KB of response, half that when not strongly consistent (DynamoDB on-demand pricing page, "Key
terms", read 2026-12-07). The sizes are the JSON on the wire, a few % above DynamoDB's item size.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tally:
    calls: list[str] = field(default_factory=list)
    write_units: int = 0
    read_units: float = 0.0

    def counts(self) -> Counter[str]:
        return Counter(self.calls)

    def aws(self) -> int:
        return sum(1 for c in self.calls if c != "PostToConnection")

    def posts(self) -> int:
        return sum(1 for c in self.calls if c == "PostToConnection")

    def summary(self) -> str:
        return ", ".join(
            f"{name} x{n}"
            for name, n in sorted(self.counts().items())
            if name != "PostToConnection"
        )


class Counting:
    """Hooks on the app's clients; `measure()` returns the calls of one block."""

    def __init__(self, services: Any, invoker: Any) -> None:
        self.invoker = invoker
        self.current: Tally | None = None
        self._consistent = True
        clients = (
            services.store.client,
            services.timer.scheduler,
            services.timer.queue.client,
            services.sockets.client,
        )
        for client in clients:
            client.meta.events.register("before-call.*.*", self._before)
            client.meta.events.register("after-call.*.*", self._after)

    def _before(self, model: Any, params: Any = None, **_: Any) -> None:
        if self.current is None:
            return
        self.current.calls.append(model.name)
        body = (params or {}).get("body") or b""
        if model.name in ("Query", "GetItem"):
            self._consistent = bool(json.loads(body or b"{}").get("ConsistentRead"))
        if model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            self.current.write_units += max(1, math.ceil(len(body) / 1024))
        elif model.name in ("TransactWriteItems", "BatchWriteItem"):
            # Per item; transactions bill double. Approximated from the whole body.
            factor = 2 if model.name == "TransactWriteItems" else 1
            request = json.loads(body or b"{}")
            items = request.get("TransactItems") or [
                r for reqs in request.get("RequestItems", {}).values() for r in reqs
            ]
            for item in items:
                size = len(json.dumps(item))
                self.current.write_units += factor * max(1, math.ceil(size / 1024))

    def _after(self, model: Any, http_response: Any = None, **_: Any) -> None:
        if self.current is None or http_response is None:
            return
        if model.name in ("Query", "GetItem"):
            size = len(http_response.content or b"")
            units = max(1, math.ceil(size / 4096))
            self.current.read_units += units if self._consistent else units / 2

    @contextmanager
    def measure(self) -> Iterator[Tally]:
        tally = Tally()
        before = len(self.invoker.calls)
        self.current = tally
        try:
            yield tally
        finally:
            self.current = None
            tally.calls += ["Invoke"] * (len(self.invoker.calls) - before)
