"""Turns and warms through the real anthropic SDK against the local Messages API emulator.

The services run with the in-memory store and the fake timer/sockets; the model is the real
`AnthropicModel` adapter. One `WarpClock` drives both the services and the emulator: it runs at
wall-clock speed (so streaming, abort polling and delta batching behave as in production) but
`sleep` and `advance` jump it forward, so minutes of TTL pass without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest

from chalicelib.adapters.model import AnthropicModel
from chalicelib.domain import catalog
from chalicelib.domain.pricing import Usage
from chalicelib.domain.prompts import WARM_PLACEHOLDER
from chalicelib.domain.warming import Toggle
from devstack.anthropic import AnthropicEmulator, EmulatorConfig, estimate_tokens
from tests import parsed
from tests.fakes.ports import WarpClock, World, field_value, world
from tests.helpers import chat_subscribe, events, invoke, subscribe

OWNER = "alice"
# About 1,600 tokens by the emulator's count: above Sonnet's 1,024-token cache minimum.
SYSTEM = ("You are a careful assistant for a team of engineers. Answer precisely. " * 90).strip()


@dataclass
class Rig:
    w: World
    clock: WarpClock
    emulator: AnthropicEmulator
    model: AnthropicModel

    def usages(self, *, warms: bool) -> list[dict[str, Any]]:
        return [
            r["usage"]
            for r in self.emulator.stats.requests
            if r["usage"] is not None and (r["max_tokens"] == 0) == warms
        ]


@pytest.fixture
def rig() -> Iterator[Rig]:
    clock = WarpClock()
    config = EmulatorConfig(tokens_per_second=400, reply_tokens=40, clock=clock.seconds)
    with AnthropicEmulator(config=config) as emulator:
        client = anthropic.Anthropic(api_key="test", base_url=emulator.url, max_retries=0)
        model = AnthropicModel(client)
        w = world(clock=clock)  # type: ignore[arg-type]
        w.services.ports.model = lambda: model
        yield Rig(w, clock, emulator, model)


def new_conversation(rig: Rig, tag: str = "") -> str:
    # A distinct system prompt per conversation: identical prefixes share cache entries.
    system = f"{tag} {SYSTEM}" if tag else SYSTEM
    return rig.w.services.create_conversation(OWNER, parsed.conversation({"system": system})).id


def turn(rig: Rig, conversation_id: str, text: str) -> str:
    started = rig.w.services.start_turn(OWNER, conversation_id, parsed.turn({"text": text}))
    return rig.w.services.generate(conversation_id, started.index)


def fire(rig: Rig, conversation_id: str) -> Any:
    tick = rig.w.timer.pop_due(conversation_id)
    return rig.w.services.handle_tick(conversation_id, tick.seq, tick.target)


def test_warms_read_the_whole_prefix_and_the_next_turn_reads_the_history(rig: Rig) -> None:
    cid = new_conversation(rig)
    model = rig.w.store.get_conversation(cid).model  # type: ignore[union-attr]
    facts = catalog.lookup(model)
    assert facts is not None and not facts.accepts_prefill  # the warm must not end on a reply
    assert turn(rig, cid, "What is a prompt cache?") == "sealed"
    assert turn(rig, cid, "And how long does it live?") == "sealed"
    subscribe(rig.w, "ws1", cid)
    invoke(rig.w, "ws1", cid, "set-interval", 60)
    invoke(rig.w, "ws1", cid, "toggle", True)
    for _ in range(5):
        assert fire(rig, cid).action == "warmed"
    warms = rig.usages(warms=True)
    assert len(warms) == 5
    assert warms[0]["cache_creation_input_tokens"] > 0  # writes the last reply, once
    placeholder = estimate_tokens(WARM_PLACEHOLDER)
    for usage in warms[1:]:
        # The whole prefix is read; only the placeholder user message is billed beyond it.
        assert usage["cache_creation_input_tokens"] == 0
        assert usage["input_tokens"] == placeholder and usage["output_tokens"] == 0
        assert usage["cache_read_input_tokens"] == warms[-1]["cache_read_input_tokens"]
    prefix = warms[-1]["cache_read_input_tokens"]
    rig.clock.advance(50)
    text = "Thanks, one more question."
    assert turn(rig, cid, text) == "sealed"
    next_turn = rig.usages(warms=False)[-1]
    assert next_turn["cache_read_input_tokens"] >= prefix  # everything the warm kept alive
    # ...and it writes only the new exchange: the new user message.
    assert next_turn["cache_creation_input_tokens"] == estimate_tokens(text)
    assert next_turn["input_tokens"] == 0
    assert field_value(rig.w.sockets.of("ws1", "update")[-1], "last-cache-pct") > 90


def test_without_warming_a_turn_after_the_ttl_pays_a_full_write_and_with_it_does_not(
    rig: Rig,
) -> None:
    cold, warm = new_conversation(rig, "Project A."), new_conversation(rig, "Project B.")
    for cid in (cold, warm):
        assert turn(rig, cid, f"Start {cid}") == "sealed"
    subscribe(rig.w, "ws1", warm)
    invoke(rig.w, "ws1", warm, "toggle", True)  # the default interval, 290 s
    for _ in range(3):  # 12 idle minutes, warmed every 4
        assert fire(rig, warm).action == "warmed"
    rig.clock.advance(200)
    assert turn(rig, cold, "Back after a break") == "sealed"
    cold_usage = rig.usages(warms=False)[-1]
    assert turn(rig, warm, "Back after a break") == "sealed"
    warm_usage = rig.usages(warms=False)[-1]
    assert cold_usage["cache_read_input_tokens"] == 0
    assert cold_usage["cache_creation_input_tokens"] > 1000
    assert warm_usage["cache_read_input_tokens"] > 1000
    assert warm_usage["cache_creation_input_tokens"] < cold_usage["cache_creation_input_tokens"] / 5


def stream_in_thread(rig: Rig, cid: str, text: str) -> tuple[threading.Thread, dict[str, str]]:
    started = rig.w.services.start_turn(OWNER, cid, parsed.turn({"text": text}))
    result: dict[str, str] = {}

    def run() -> None:
        result["status"] = rig.w.services.generate(cid, started.index)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_close_during_a_stream_aborts_it_within_a_second(rig: Rig) -> None:
    rig.emulator.config.tokens_per_second = 40  # a human pace: 300 tokens take 7.5 s
    rig.emulator.config.reply_tokens = 300
    cid = new_conversation(rig)
    assert turn(rig, cid, "hello") == "sealed"
    subscribe(rig.w, "ws1", cid)
    invoke(rig.w, "ws1", cid, "toggle", True)
    chat_subscribe(rig.w, "ws1", cid)
    thread, result = stream_in_thread(rig, cid, "Tell me a long story")
    wait_for(lambda: "delta" in events(rig.w, "ws1"))
    closed_at = time.monotonic()
    rig.w.services.close(OWNER, cid)
    thread.join(timeout=5)
    stopped_after = time.monotonic() - closed_at
    assert result["status"] == "aborted"
    assert stopped_after < 1.0, stopped_after
    wait_for(lambda: rig.emulator.stats.disconnects >= 1, timeout=1.0)
    names = events(rig.w, "ws1")
    assert names[-1] == "turn-aborted" and "turn-sealed" not in names
    aborted = rig.w.sockets.of("ws1", "chat")[-1]
    stored = rig.w.store.get_turns(cid)[-1]
    assert stored.status == "aborted" and stored.assistant_text == aborted["text"] != ""
    assert rig.w.timer.live_for(cid) == []
    last = rig.w.sockets.of("ws1", "update")[-1]
    assert (field_value(last, "status"), field_value(last, "enabled")) == ("closed", False)


def test_disconnect_during_a_stream_lets_it_finish_and_warming_continue(rig: Rig) -> None:
    rig.emulator.config.tokens_per_second = 100
    rig.emulator.config.reply_tokens = 60
    cid = new_conversation(rig)
    assert turn(rig, cid, "hello") == "sealed"
    subscribe(rig.w, "ws1", cid)
    invoke(rig.w, "ws1", cid, "toggle", True)
    chat_subscribe(rig.w, "ws1", cid)
    thread, result = stream_in_thread(rig, cid, "Keep talking")
    wait_for(lambda: "delta" in events(rig.w, "ws1"))
    rig.w.services.disconnect("ws1")
    thread.join(timeout=10)
    assert result["status"] == "sealed"
    assert rig.w.store.get_turns(cid)[-1].status == "sealed"
    assert fire(rig, cid).action == "warmed"
    assert len(rig.w.timer.live_for(cid)) == 1


def test_two_chat_subscribers_see_the_same_frames_and_a_gone_one_is_forgotten(rig: Rig) -> None:
    cid = new_conversation(rig)
    for connection_id in ("a", "b", "gone"):
        chat_subscribe(rig.w, connection_id, cid)
    rig.w.sockets.gone.add("gone")
    assert turn(rig, cid, "hi") == "sealed"
    frames_a = rig.w.sockets.of("a", "chat")
    assert frames_a == rig.w.sockets.of("b", "chat")
    assert frames_a[0]["event"] == "turn-started"
    assert frames_a[-1]["event"] == "turn-sealed"
    assert "".join(f["text"] for f in frames_a if f["event"] == "delta") == frames_a[-1]["text"]
    assert rig.w.store.get_connection("gone") is None


@pytest.mark.parametrize(
    "fault,code",
    [("rate_limit", "rate_limited"), ("overloaded", "overloaded"), ("api_error", "upstream_error")],
)
def test_upstream_errors_fail_the_turn_and_keep_the_conversation_usable(
    rig: Rig, fault: str, code: str
) -> None:
    cid = new_conversation(rig)
    chat_subscribe(rig.w, "ws1", cid)
    rig.emulator.set_fault(fault, count=1)
    assert turn(rig, cid, "first") == "failed"
    failed = rig.w.sockets.of("ws1", "chat")[-1]
    assert (failed["event"], failed["code"]) == ("turn-failed", code)
    assert turn(rig, cid, "second") == "sealed"
    _, turns = rig.w.services.get_conversation(OWNER, cid)
    assert [(t.user_text, t.status) for t in turns] == [("first", "failed"), ("second", "sealed")]


def test_a_dropped_stream_fails_the_turn_with_its_partial_text(rig: Rig) -> None:
    cid = new_conversation(rig)
    chat_subscribe(rig.w, "ws1", cid)
    rig.emulator.set_fault("drop", count=1, after_deltas=5)
    assert turn(rig, cid, "first") == "failed"
    stored = rig.w.store.get_turns(cid)[0]
    assert stored.status == "failed" and stored.error_code == "upstream_error"


def test_a_timeout_fails_the_turn(rig: Rig) -> None:
    rig.model.client = rig.model.client.with_options(timeout=0.3)
    cid = new_conversation(rig)
    rig.emulator.set_fault("slow", count=1, delay=2.0)
    assert turn(rig, cid, "slow one") == "failed"
    assert rig.w.store.get_turns(cid)[0].error_code == "timeout"


def test_the_sdk_retries_a_transient_overload_before_the_turn_sees_it(rig: Rig) -> None:
    rig.model.client = rig.model.client.with_options(max_retries=2)
    cid = new_conversation(rig)
    rig.emulator.set_fault("overloaded", count=1, retry_after=0)
    assert turn(rig, cid, "flaky") == "sealed"


@pytest.mark.parametrize("fault", ["rate_limit", "overloaded", "api_error", "slow"])
def test_warm_failures_back_off_then_stop_in_error_and_a_turn_recovers(
    rig: Rig, fault: str
) -> None:
    rig.model.warm_timeout_s = 0.3
    cid = new_conversation(rig)
    assert turn(rig, cid, "hello") == "sealed"
    subscribe(rig.w, "ws1", cid)
    invoke(rig.w, "ws1", cid, "set-interval", 30)
    invoke(rig.w, "ws1", cid, "toggle", True)
    rig.emulator.set_fault(fault, delay=2.0)
    targets = []
    for _ in range(3):
        tick = rig.w.timer.pop_due(cid)
        targets.append(tick.target)
        assert rig.w.services.handle_tick(cid, tick.seq, tick.target).action == "warm-failed"
        if len(targets) < 3:
            assert rig.w.timer.live_for(cid)
    assert targets[2] - targets[1] > targets[1] - targets[0]  # backing off
    last = rig.w.sockets.of("ws1", "update")[-1]
    assert field_value(last, "status") == "error" and rig.w.timer.live_for(cid) == []
    rig.emulator.clear_fault()
    assert turn(rig, cid, "are you back?") == "sealed"
    assert field_value(rig.w.sockets.of("ws1", "update")[-1], "status") == "scheduled"


def test_the_warm_request_is_the_next_turns_prefix_with_max_tokens_zero(rig: Rig) -> None:
    cid = new_conversation(rig)
    assert turn(rig, cid, "hello") == "sealed"
    rig.w.services.uow.transition(cid, Toggle(True))
    assert fire(rig, cid).action == "warmed"
    warm = rig.emulator.stats.requests[-1]
    assert warm["max_tokens"] == 0 and warm["stream"] is False
    usage = Usage(**{k: v for k, v in warm["usage"].items() if k in Usage.__dataclass_fields__})
    assert usage.output_tokens == 0
