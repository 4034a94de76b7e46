"""A tick due at once can reach the warm function before the write that booked it has landed."""

from __future__ import annotations

import threading
import time
from typing import Any

from chalicelib.domain.warming import Toggle
from tests.fakes.ports import FakeTimer, WarpClock, world
from tests.helpers import conversation_with_turn


class DeliveringTimer(FakeTimer):
    """Delivers every tick at once, on another thread, like a direct async invoke."""

    def __init__(self) -> None:
        super().__init__()
        self.deliver: Any = None
        self.threads: list[threading.Thread] = []

    def arm(self, conversation_id: str, seq: int, target_ms: int, now_ms: int) -> str | None:
        ref = super().arm(conversation_id, seq, target_ms, now_ms)
        if self.deliver is not None:
            thread = threading.Thread(target=self.deliver, args=(conversation_id, seq, target_ms))
            thread.start()
            self.threads.append(thread)
        return ref


def test_a_tick_that_beats_its_own_state_write_still_warms() -> None:
    timer = DeliveringTimer()
    w = world(timer=timer, clock=WarpClock(real_sleep=True))  # type: ignore[arg-type]
    conversation = conversation_with_turn(w)
    w.clock.advance(3600)  # the cache expired: enabling books an immediate rebuild
    reports: list[Any] = []
    timer.deliver = lambda *tick: reports.append(w.services.handle_tick(*tick))
    save = w.store.save_conversation

    def land_late(conversation: Any, *rest: Any) -> Any:
        time.sleep(0.3)  # the write lands after the direct invoke has read the state
        return save(conversation, *rest)

    w.store.save_conversation = land_late  # type: ignore[method-assign,assignment]
    w.services.uow.transition(conversation.id, Toggle(True))
    timer.deliver = None
    for thread in timer.threads:
        thread.join(timeout=10)
    assert [r.action for r in reports] == ["warmed"]
    assert len(w.model.warms) == 1
