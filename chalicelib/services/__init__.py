"""The use cases, one module each, around one shared unit of work (`unit_of_work.py`):

    conversations.py  create, read, list
    frames.py         connect, disconnect, frames (one handler per type), subscriptions, limits
    turns.py          start, cancel, close, generate, finish
    ticks.py          the warm tick
    tick_batch.py     a batch of ticks from the tick queue (one thread each, failures one by one)
    fanout.py         replies, panel updates, chat streams
    costs.py          the model's terms (catalog + prices) and costs

`Services` is the application's entry point: one method per command, each a one-line delegation,
so `app.py` and the tests see one object. Every command arrives typed: the edge (`wire/`) parses
bodies and frames, and the tests parse theirs through the same parser (`tests/parsed.py`).
"""

from __future__ import annotations

from chalicelib.domain.conversation import Conversation, PageKey, Turn
from chalicelib.domain.warming import Tally
from chalicelib.ports import Clock, HistoryPage, Sockets, Store, SummaryPage, Timer
from chalicelib.services.conversations import Conversations
from chalicelib.services.costs import Costs
from chalicelib.services.fanout import FanOut
from chalicelib.services.frames import Frames
from chalicelib.services.ports import Limits, Ports
from chalicelib.services.tick_batch import BatchOutcome, TickBatch
from chalicelib.services.ticks import TickReport, Ticks
from chalicelib.services.turns import Turns
from chalicelib.services.unit_of_work import Outcome, UnitOfWork
from chalicelib.wire import commands
from chalicelib.wire.ticks import TickRecord

__all__ = ["BatchOutcome", "Limits", "Outcome", "Ports", "Services", "TickReport"]


class Services:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports
        self.uow = UnitOfWork(ports, FanOut(ports), Costs(ports))
        self.conversations = Conversations(self.uow)
        self.turns = Turns(self.uow)
        self.frames = Frames(self.uow, self.turns)
        self.ticks = Ticks(self.uow)
        self.tick_batch = TickBatch(self.ticks, ports)

    @property
    def store(self) -> Store:
        return self.ports.store

    @property
    def timer(self) -> Timer:
        return self.ports.timer

    @property
    def sockets(self) -> Sockets:
        return self.ports.sockets

    @property
    def clock(self) -> Clock:
        return self.ports.clock

    # --- WebSocket -----------------------------------------------------------------------------

    def connect(
        self, connection_id: str, owner: str, authorized_until: int | None = None
    ) -> None:
        self.frames.connect(connection_id, owner, authorized_until)

    def disconnect(self, connection_id: str) -> None:
        self.frames.disconnect(connection_id)

    def handle_frame(
        self, connection_id: str, raw: str | bytes, arrived_ms: int | None = None
    ) -> None:
        self.frames.handle(connection_id, raw, arrived_ms)

    # --- HTTP -------------------------------------------------------------------------------

    def create_conversation(self, owner: str, body: commands.CreateConversation) -> Conversation:
        return self.conversations.create(owner, body)

    def get_conversation(self, owner: str, conversation_id: str) -> tuple[Conversation, list[Turn]]:
        return self.conversations.get(owner, conversation_id)

    def list_conversations(
        self, owner: str, limit: int = 50, after: PageKey | None = None
    ) -> SummaryPage:
        return self.conversations.list(owner, limit, after)

    def savings(self, owner: str) -> Tally:
        return self.conversations.savings(owner)

    def history(
        self, owner: str, conversation_id: str, limit: int = 50, before: int | None = None
    ) -> HistoryPage:
        return self.conversations.history(owner, conversation_id, limit, before)

    def start_turn(self, owner: str, conversation_id: str, body: commands.StartTurn) -> Turn:
        return self.turns.start(owner, conversation_id, body)

    def cancel(self, owner: str, conversation_id: str) -> bool:
        return self.turns.cancel(owner, conversation_id)

    def close(self, owner: str, conversation_id: str) -> Conversation:
        return self.turns.close(owner, conversation_id)

    # --- Lambdas ----------------------------------------------------------------------------

    def generate(
        self, conversation_id: str, turn_index: int, deadline_ms: int | None = None
    ) -> str:
        return self.turns.generate(conversation_id, turn_index, deadline_ms)

    def handle_tick(
        self, conversation_id: str, seq: int, target: int, deadline_ms: int | None = None
    ) -> TickReport:
        return self.ticks.handle(conversation_id, seq, target, deadline_ms)

    def handle_tick_batch(
        self, records: list[TickRecord], deadline_ms: int | None = None
    ) -> BatchOutcome:
        return self.tick_batch.handle(records, deadline_ms)
