"""Hypothesis drives the warming service through interleavings of toggles, interval changes,
turns, closes, duplicate and stale ticks, and writes racing inside a read-modify-write, over the
in-memory store and the DynamoDB store (moto). After every step:

- at most one live tick exists for the conversation;
- when the state says `scheduled`, the live tick is the one it names (seq, target, handle);
- no pushed update ever announces a `nextWarmAt` in the past.
"""

from __future__ import annotations

from typing import Any

import moto
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from chalicelib.adapters.store import DynamoStore, create_table
from chalicelib.domain.warming import SetInterval, Toggle
from chalicelib.ports import Delivery, ModelError
from tests import parsed
from tests.conftest import SESSION, TABLE_NAME
from tests.fakes.ports import Tick, field_value, world
from tests.fakes.store import InMemoryStore
from tests.helpers import RacingStore

OWNER = "alice"


class WarmingMachine(RuleBasedStateMachine):
    use_dynamo = False

    def __init__(self) -> None:
        super().__init__()
        self.mock: Any = None
        if self.use_dynamo:
            self.mock = moto.mock_aws()
            self.mock.start()
            create_table(SESSION.client("dynamodb"), TABLE_NAME)
            inner: Any = DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb"))
        else:
            inner = InMemoryStore()
        self.store = RacingStore(inner)
        self.w = world(store=self.store)
        self.services = self.w.services
        self.delivered: list[Tick] = []
        self.violations: list[str] = []
        original_post = self.w.sockets.post

        def checked_post(connection_id: str, frame: dict[str, Any]) -> Delivery:
            if frame.get("type") == "update":
                next_warm = field_value(frame, "timer")["nextWarmAt"]
                if next_warm is not None and next_warm < self.w.clock.now:
                    self.violations.append(f"past nextWarmAt {next_warm} < {self.w.clock.now}")
            return original_post(connection_id, frame)

        self.w.sockets.post = checked_post  # type: ignore[method-assign]
        self.conversation = self.services.create_conversation(OWNER, parsed.conversation())
        self.cid = self.conversation.id
        self.services.connect("ws", OWNER)
        self.services.store.subscribe("ws", self.cid, "surface", 10**12)
        self._turn()

    def teardown(self) -> None:
        if self.mock is not None:
            self.mock.stop()

    def _turn(self) -> None:
        state = self.store.get_conversation(self.cid)
        if state is not None and state.generating:
            return
        try:
            turn = self.services.start_turn(OWNER, self.cid, parsed.turn({"text": "q"}))
        except Exception as error:  # noqa: BLE001 - rate limits are fine here
            assert getattr(error, "code", None) == "rate_limited", error
            return
        self.services.generate(self.cid, turn.index)

    def _racer(self, action: str) -> Any:
        return {
            "toggle_on": lambda: self.services.uow.transition(self.cid, Toggle(True)),
            "toggle_off": lambda: self.services.uow.transition(self.cid, Toggle(False)),
            "interval": lambda: self.services.uow.transition(self.cid, SetInterval(45)),
            "close": lambda: self.services.close(OWNER, self.cid),
        }[action]

    @rule(payload=st.sampled_from([True, False, None]))
    def toggle(self, payload: bool | None) -> None:
        self.services.uow.transition(self.cid, Toggle(payload))

    @rule(seconds=st.integers(20, 290))
    def set_interval(self, seconds: int) -> None:
        self.services.uow.transition(self.cid, SetInterval(seconds))

    @rule(seconds=st.integers(0, 400))
    def advance(self, seconds: int) -> None:
        self.w.clock.advance(seconds)

    @rule()
    def turn(self) -> None:
        self._turn()

    @rule()
    def close(self) -> None:
        self.services.close(OWNER, self.cid)

    @rule(fails=st.booleans())
    def fire_live_tick(self, fails: bool) -> None:
        live = self.w.timer.live_for(self.cid)
        if not live:
            return
        tick = self.w.timer.pop_due(self.cid)
        self.delivered.append(tick)
        if fails:
            self.w.model.warm_errors = [ModelError("overloaded", "529")]
        self.services.handle_tick(tick.conversation_id, tick.seq, tick.target)
        self.w.model.warm_errors = []

    @rule(data=st.data())
    def redeliver_old_tick(self, data: st.DataObject) -> None:
        if not self.delivered:
            return
        tick = data.draw(st.sampled_from(self.delivered))
        before = self.store.get_conversation(self.cid)
        self.services.handle_tick(tick.conversation_id, tick.seq, tick.target)
        after = self.store.get_conversation(self.cid)
        assert before is not None and after is not None
        if before.warming.seq != tick.seq:
            assert after.version == before.version, "a stale tick wrote state"

    @rule(action=st.sampled_from(["toggle_on", "toggle_off", "interval", "close"]))
    def race_inside_the_next_write(self, action: str) -> None:
        self.store.before_next_save = self._racer(action)
        self.services.uow.transition(self.cid, Toggle(True))
        self.store.before_next_save = None

    @rule(action=st.sampled_from(["toggle_off", "interval", "close"]))
    def race_during_a_warm(self, action: str) -> None:
        if not self.w.timer.live_for(self.cid):
            return
        tick = self.w.timer.pop_due(self.cid)
        self.delivered.append(tick)
        racer = self._racer(action)
        original_warm = self.w.model.warm

        def warm_with_race(prompt: Any) -> Any:
            racer()
            return original_warm(prompt)

        self.w.model.warm = warm_with_race  # type: ignore[method-assign]
        try:
            self.services.handle_tick(tick.conversation_id, tick.seq, tick.target)
        finally:
            self.w.model.warm = original_warm  # type: ignore[method-assign]

    @invariant()
    def one_live_tick_matching_the_state(self) -> None:
        live = self.w.timer.live_for(self.cid)
        assert len(live) <= 1, live
        state = self.store.get_conversation(self.cid)
        assert state is not None
        warming = state.warming
        if warming.status == "scheduled":
            assert len(live) == 1, (warming, live)
            (tick,) = live
            assert (tick.seq, tick.target, tick.ref) == (
                warming.seq,
                warming.next_warm_at,
                warming.timer_ref,
            )
        elif warming.status != "warming":
            assert live == [], (warming.status, live)
            assert warming.next_warm_at is None
        assert not self.violations, self.violations


class DynamoWarmingMachine(WarmingMachine):
    use_dynamo = True


common = settings(
    deadline=None,
    stateful_step_count=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestInterleavingsInMemory = WarmingMachine.TestCase
TestInterleavingsInMemory.settings = settings(common, max_examples=150)
TestInterleavingsDynamo = DynamoWarmingMachine.TestCase
TestInterleavingsDynamo.settings = settings(common, max_examples=25)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
