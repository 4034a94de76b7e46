"""What the HTTP side (``server.py``, ``streaming.py``) needs from the emulator's state.

``AnthropicEmulator`` satisfies it; the server depends on this Protocol rather than on the
emulator module, so the emulator can own the server without an import circle (the same
arrangement as ``chalicelib/ports.py``).
"""

from __future__ import annotations

from typing import Any, Protocol

from devstack.anthropic.cache import PromptCache
from devstack.anthropic.config import EmulatorConfig, Fault


class EmulatorState(Protocol):
    config: EmulatorConfig
    cache: PromptCache
    offset: float

    def now(self) -> float: ...

    def advance(self, seconds: float) -> float: ...

    def take_fault(self, stream: bool) -> Fault | None: ...

    def apply_config(self, changes: dict[str, Any]) -> None: ...

    def config_snapshot(self) -> dict[str, Any]: ...

    def reset(self, *, clear_stats: bool = False) -> None: ...

    def next_ids(self) -> tuple[str, str]: ...

    def record(self, entry: dict[str, Any]) -> None: ...

    def finish_record(self, entry: dict[str, Any], outcome: str) -> None: ...

    def finish_stream(
        self,
        entry: dict[str, Any],
        outcome: str,
        deltas_sent: int,
        *,
        disconnected: bool = False,
        dropped: bool = False,
    ) -> None: ...

    def stats_snapshot(self) -> dict[str, Any]: ...
