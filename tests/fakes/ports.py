"""Fakes for the timer, sockets, model, invoker and clock ports, plus a `world` that wires them."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from chalicelib.adapters.prices import GenaiPriceBook
from chalicelib.domain.pricing import Usage
from chalicelib.domain.prompts import Prompt
from chalicelib.ports import Delivery, ModelError, StreamResult
from chalicelib.services import Ports, Services
from tests.fakes.store import InMemoryStore

# The real price library: pure data, loaded once per test process.
PRICES = GenaiPriceBook()

START_MS = 1_800_000_000_000
# API Gateway refuses a pushed message over 128 KB with PayloadTooLargeException (413): the `Data`
# member of PostToConnection is at most 131,072 bytes in botocore's service model.
MAX_PUSH_BYTES = 131_072


class FakeClock:
    """Time moves only when a test (or a sleeping handler) moves it."""

    def __init__(self, now_ms: int = START_MS) -> None:
        self.now = now_ms
        self.slept: list[float] = []

    def now_ms(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += int(seconds * 1000)

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


class WarpClock:
    """The one wall-clock fake: wall-clock speed, so streaming, abort polling and delta batching
    behave as in production, but `advance` jumps ahead, so minutes of TTL pass without waiting.
    `sleep` jumps ahead too, unless `real_sleep`: then a sleeping handler really waits (a warm
    that takes wall-clock time, threads racing). Share it with the Anthropic emulator
    (`EmulatorConfig(clock=clock.seconds)`) to move both at once."""

    def __init__(self, *, real_sleep: bool = False) -> None:
        self.offset_ms = 0
        self.real_sleep = real_sleep
        self.lock = threading.Lock()

    @property
    def now(self) -> int:
        return self.now_ms()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def seconds(self) -> float:
        return self.now_ms() / 1000

    def sleep(self, seconds: float) -> None:
        if self.real_sleep:
            time.sleep(max(0.0, seconds))
        else:
            self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset_ms += int(seconds * 1000)


@dataclass
class Tick:
    conversation_id: str
    seq: int
    target: int
    ref: str | None


class FakeTimer:
    """Every tick is cancellable here (the real adapter's queued ticks are not). `pop_due` moves
    the world's clock to the tick's target first: the tick queue delivers a tick when it is due,
    and a tick delivered minutes early would only be put back on the timer."""

    def __init__(self) -> None:
        self.live: dict[str, Tick] = {}
        self.armed: list[Tick] = []
        self.cancelled: list[str] = []
        self.requeued: list[tuple[Tick, int]] = []  # (tick, when it comes back)
        self.fail_next_arm: Exception | None = None
        self.clock: Any = None  # set by `world`
        self._ids = itertools.count(1)

    def arm(self, conversation_id: str, seq: int, target_ms: int, now_ms: int) -> str | None:
        if self.fail_next_arm is not None:
            error, self.fail_next_arm = self.fail_next_arm, None
            raise error
        ref = f"tick-{next(self._ids)}"
        tick = Tick(conversation_id, seq, target_ms, ref)
        self.live[ref] = tick
        self.armed.append(tick)
        return ref

    def requeue(
        self, conversation_id: str, seq: int, target_ms: int, at_ms: int, now_ms: int
    ) -> None:
        """The same tick again, due at `at_ms`: live (not cancellable), popped like any other."""
        ref = f"requeued-{next(self._ids)}"
        tick = Tick(conversation_id, seq, target_ms, ref)
        self.live[ref] = tick
        self.requeued.append((tick, at_ms))

    def cancel(self, ref: str) -> None:
        self.cancelled.append(ref)
        self.live.pop(ref, None)

    def live_for(self, conversation_id: str) -> list[Tick]:
        return [t for t in self.live.values() if t.conversation_id == conversation_id]

    def pop_due(self, conversation_id: str) -> Tick:
        """The one live tick, removed as a delivered one-shot schedule is, once it is due."""
        (tick,) = self.live_for(conversation_id)
        assert tick.ref is not None
        del self.live[tick.ref]
        if self.clock is not None and tick.target > self.clock.now_ms():
            self.clock.advance((tick.target - self.clock.now_ms()) / 1000)
        return tick


class FakeSockets:
    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = {}
        self.gone: set[str] = set()
        self.refused: list[dict[str, Any]] = []
        self.closed: list[str] = []
        self._lock = threading.Lock()

    def post(self, connection_id: str, frame: dict[str, Any]) -> Delivery:
        with self._lock:
            if connection_id in self.gone:
                return "gone"
            if len(msgspec.json.encode(frame)) > MAX_PUSH_BYTES:
                self.refused.append(frame)
                return "failed"
            self.frames.setdefault(connection_id, []).append(frame)
            return "delivered"

    def close(self, connection_id: str) -> None:
        with self._lock:
            self.closed.append(connection_id)
            self.gone.add(connection_id)

    def of(self, connection_id: str, frame_type: str | None = None) -> list[dict[str, Any]]:
        frames = self.frames.get(connection_id, [])
        return [f for f in frames if frame_type is None or f["type"] == frame_type]

    def last(self, connection_id: str) -> dict[str, Any]:
        return self.frames[connection_id][-1]


def field_value(frame: dict[str, Any], field_id: str) -> Any:
    fields = frame["spec"]["fields"] if frame["type"] == "surface" else frame["fields"]
    return next(f["value"] for f in fields if f["id"] == field_id)


@dataclass
class FakeModel:
    """Answers warms with `warm_usage` and streams `reply` in `chunks`, advancing the clock."""

    clock: FakeClock
    warm_usage: Usage = field(
        default_factory=lambda: Usage(cache_read_input_tokens=5000, input_tokens=0)
    )
    warm_errors: list[ModelError] = field(default_factory=list)
    reply: str = "Hello there, this is a streamed reply."
    chunks: int = 5
    chunk_seconds: float = 0.05
    # Raised after the first chunk; a ModelError then carries what the stream was billed so far.
    stream_error: Exception | None = None
    # Raise `stream_error` before the model answered (a 429 or 529 at the request): nothing billed.
    fail_before_start: bool = False
    turn_usage: Usage = field(
        default_factory=lambda: Usage(
            input_tokens=20, output_tokens=40, cache_read_input_tokens=4000
        )
    )
    # Called before each chunk; what it returns is ignored (tests use expressions with effects).
    on_chunk: Callable[[int], object] | None = None
    warms: list[Prompt] = field(default_factory=list)
    streams: list[Prompt] = field(default_factory=list)

    def warm(self, prompt: Prompt) -> Usage:
        self.warms.append(prompt)
        if self.warm_errors:
            raise self.warm_errors.pop(0)
        return self.warm_usage

    def stream(
        self, prompt: Prompt, on_text: Callable[[str], None], should_abort: Callable[[], bool]
    ) -> StreamResult:
        self.streams.append(prompt)
        size = max(1, len(self.reply) // self.chunks)
        pieces = [self.reply[i : i + size] for i in range(0, len(self.reply), size)]
        sent = ""
        if self.stream_error is not None and self.fail_before_start:
            raise self.stream_error
        for number, piece in enumerate(pieces):
            if self.on_chunk is not None:
                self.on_chunk(number)
            if should_abort():
                return StreamResult(sent, self.billed_so_far(number), aborted=True)
            if isinstance(self.stream_error, ModelError) and number == 1:
                error = self.stream_error
                raise ModelError(error.code, str(error), usage=self.billed_so_far(number))
            if self.stream_error is not None and number == 1:
                raise self.stream_error
            self.clock.advance(self.chunk_seconds)
            sent += piece
            on_text(piece)
        return StreamResult(sent, self.turn_usage, aborted=False)

    def billed_so_far(self, chunks_sent: int) -> Usage:
        """A stream stopped early: the prompt as the model reported it, one token per chunk."""
        return replace(self.turn_usage, output_tokens=chunks_sent)


class FakeInvoker:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fail: Exception | None = None

    def generate(self, conversation_id: str, turn_index: int) -> None:
        if self.fail is not None:
            raise self.fail
        self.calls.append((conversation_id, turn_index))


@dataclass
class World:
    services: Services
    store: InMemoryStore
    timer: FakeTimer
    sockets: FakeSockets
    clock: FakeClock
    model: FakeModel
    invoker: FakeInvoker


def world(store: Any = None, timer: Any = None, clock: FakeClock | None = None) -> World:
    clock = clock or FakeClock()
    store = store if store is not None else InMemoryStore()
    timer = timer if timer is not None else FakeTimer()
    if isinstance(timer, FakeTimer) and timer.clock is None:
        timer.clock = clock
    sockets = FakeSockets()
    model = FakeModel(clock)
    invoker = FakeInvoker()
    ids = itertools.count(1)
    services = Services(
        Ports(
            store=store,
            timer=timer,
            sockets=sockets,
            clock=clock,
            model=lambda: model,
            invoker=lambda: invoker,
            prices=lambda: PRICES,
            new_id=lambda: f"c{next(ids):04d}",
        )
    )
    return World(services, store, timer, sockets, clock, model, invoker)
