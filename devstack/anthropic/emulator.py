"""The emulator object: lifecycle, clock, faults, configuration and bookkeeping."""

from __future__ import annotations

import contextlib
import copy
import itertools
import socket
import threading
import time
from types import TracebackType
from typing import Any

from devstack.anthropic.cache import PromptCache
from devstack.anthropic.config import (
    FAULT_ALIASES,
    FAULT_KINDS,
    EmulatorConfig,
    EmulatorStats,
    Fault,
)
from devstack.anthropic.server import EmulatorServer

_CONFIG_FIELDS = {"tokens_per_second", "reply_tokens", "reply_text", "min_cacheable", "fault"}


class AnthropicEmulator:
    """An Anthropic Messages API on ``http://host:port``; see the package docstring."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, config: EmulatorConfig | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.config = config or EmulatorConfig()
        self.cache = PromptCache()
        self.stats = EmulatorStats()
        self.offset = 0.0
        self._fault: Fault | None = None
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for ``anthropic.Anthropic(base_url=...)``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> AnthropicEmulator:
        """Bind and serve in a background thread. Returns self."""
        if self._server is not None:
            return self
        self._server = EmulatorServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"anthropic-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with server.sockets_lock:
            sockets = list(server.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> AnthropicEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clock ----------------------------------------------------------------------------

    def now(self) -> float:
        """Emulator time: the configured clock plus everything ``advance``d."""
        return self.config.clock() + self.offset

    def advance(self, seconds: float) -> float:
        """Move the emulator clock forward (TTL tests); returns the total offset."""
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self.offset += seconds
            return self.offset

    # -- faults and configuration -----------------------------------------------------------

    def set_fault(
        self,
        kind: str,
        *,
        count: int | None = None,
        retry_after: float = 1.0,
        delay: float = 0.0,
        after_deltas: int = 0,
    ) -> Fault:
        """Inject ``kind`` (see ``Fault``) into the next ``count`` requests, or all if None."""
        kind = FAULT_ALIASES.get(kind, kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or None for every request)")
        if delay < 0 or after_deltas < 0 or retry_after < 0:
            raise ValueError("delay, after_deltas and retry_after must be >= 0")
        fault = Fault(kind, count, retry_after, delay, after_deltas)
        with self._lock:
            self._fault = fault
        return fault

    def clear_fault(self) -> None:
        """Remove the injected fault."""
        with self._lock:
            self._fault = None

    @property
    def fault(self) -> Fault | None:
        """The pending fault, if any."""
        return self._fault

    def take_fault(self, stream: bool) -> Fault | None:
        """The fault that applies to a request arriving now, consuming one of its uses."""
        with self._lock:
            fault = self._fault
            if fault is None or (fault.kind == "stream_error" and not stream):
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
            return copy.copy(fault)

    def apply_config(self, changes: dict[str, Any]) -> None:
        """Apply the admin API's ``/_emulator/config`` body (raises ValueError/TypeError)."""
        unknown = set(changes) - _CONFIG_FIELDS
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        if "tokens_per_second" in changes:
            tps = changes["tokens_per_second"]
            if isinstance(tps, bool) or not isinstance(tps, int | float):
                raise TypeError("tokens_per_second must be a number")
            self.config.tokens_per_second = float(tps)
        if "reply_tokens" in changes:
            reply = changes["reply_tokens"]
            if isinstance(reply, bool) or not isinstance(reply, int) or reply < 1:
                raise ValueError("reply_tokens must be an integer >= 1")
            self.config.reply_tokens = reply
        if "reply_text" in changes:
            text = changes["reply_text"]
            if text is not None and (not isinstance(text, str) or not text.strip()):
                raise ValueError("reply_text must be a non-empty string or null")
            self.config.reply_text = text
        if "min_cacheable" in changes:
            minimum = changes["min_cacheable"]
            if minimum is not None and (isinstance(minimum, bool) or not isinstance(minimum, int)):
                raise TypeError("min_cacheable must be an integer or null")
            self.config.min_cacheable_override = minimum
        if "fault" in changes:
            self._apply_fault_spec(changes["fault"])

    def _apply_fault_spec(self, spec: Any) -> None:
        if spec is None:
            self.clear_fault()
        elif isinstance(spec, dict) and isinstance(spec.get("kind"), str):
            self.set_fault(
                spec["kind"],
                count=spec.get("count"),
                retry_after=float(spec.get("retry_after", 1.0)),
                delay=float(spec.get("delay", 0.0)),
                after_deltas=int(spec.get("after_deltas", 0)),
            )
        else:
            raise TypeError('fault must be null or {"kind": ..., "count": ...}')

    def config_snapshot(self) -> dict[str, Any]:
        """Configuration, pending fault and clock offset, as the admin API returns them."""
        fault = self._fault
        return {
            **self.config.as_dict(),
            "fault": fault.as_dict() if fault else None,
            "offset": self.offset,
        }

    def reset(self, *, clear_stats: bool = False) -> None:
        """Empty the cache and remove the fault (and the stats if asked)."""
        self.cache.clear()
        with self._lock:
            self._fault = None
            if clear_stats:
                self.stats.clear()

    # -- bookkeeping ----------------------------------------------------------------------

    def next_ids(self) -> tuple[str, str]:
        """A fresh (request id, message id) pair."""
        n = next(self._counter)
        return f"req_emu_{n:06d}", f"msg_emu_{n:06d}"

    def record(self, entry: dict[str, Any]) -> None:
        """Append a request to ``stats.requests`` (later updates mutate it in place)."""
        with self._lock:
            self.stats.requests.append(entry)

    def finish_record(self, entry: dict[str, Any], outcome: str) -> None:
        """Set the final outcome of a request."""
        with self._lock:
            entry["outcome"] = outcome

    def finish_stream(
        self,
        entry: dict[str, Any],
        outcome: str,
        deltas_sent: int,
        *,
        disconnected: bool = False,
        dropped: bool = False,
    ) -> None:
        """Record how a streamed (or delayed) response ended."""
        with self._lock:
            entry["outcome"] = outcome
            entry["deltas_sent"] = deltas_sent
            if entry["usage"] is not None:
                entry["usage"]["output_tokens"] = deltas_sent
            if disconnected:
                self.stats.disconnects += 1
            if dropped:
                self.stats.drops += 1
            self.stats.stream_closed_at[entry["request_id"]] = time.monotonic()

    def stats_snapshot(self) -> dict[str, Any]:
        """A JSON-able copy of the stats."""
        with self._lock:
            return self.stats.as_dict()
