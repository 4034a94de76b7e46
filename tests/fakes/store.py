"""In-memory `Store` with the DynamoDB adapter's semantics (the contract tests run over both)."""

from __future__ import annotations

import dataclasses
import threading

from chalicelib.adapters.store_items import encode_conversation, encode_turn
from chalicelib.domain.budget import DaySpend
from chalicelib.domain.conversation import MAX_ITEM_BYTES, Conversation, PageKey, Turn, summary_of
from chalicelib.domain.history import MAX_ENTRIES, HistoryEntry
from chalicelib.domain.warming import Tally
from chalicelib.ports import (
    AlreadyExists,
    BudgetExhausted,
    CapReached,
    Channel,
    Connection,
    ConversationCapReached,
    HistoryPage,
    ItemTooLarge,
    PlaceChange,
    SlotChange,
    Snapshot,
    SummaryPage,
    VersionConflict,
)


class InMemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conversations: dict[str, Conversation] = {}
        self._turns: dict[str, dict[int, Turn]] = {}
        self._connections: dict[str, Connection] = {}
        self._hits: dict[tuple[str, int], int] = {}
        # owner -> ids of the conversations holding a warming slot
        self._warming: dict[str, set[str]] = {}
        self._partials: dict[tuple[str, int], str] = {}
        # (conversation id, channel) -> connection id -> expires_at
        self._subscriptions: dict[tuple[str, str], dict[str, int]] = {}
        # owner -> how many of their conversations are open (the conversation cap)
        self._open: dict[str, int] = {}
        self._spend: dict[tuple[str, str], int] = {}
        self._committed: dict[tuple[str, str], int] = {}
        # owner -> the savings counter
        self._savings: dict[str, Tally] = {}
        # (owner, day, conversation id) -> the last warm counted against that day
        self._warm_seq: dict[tuple[str, str, str], int] = {}
        # conversation id -> seq -> history entry
        self._history: dict[str, dict[int, HistoryEntry]] = {}

    def create_conversation(self, conversation: Conversation, cap: int | None = None) -> None:
        with self._lock:
            if conversation.id in self._conversations:
                raise AlreadyExists(conversation.id)
            open_count = self._open.get(conversation.owner, 0)
            if cap is not None and open_count >= cap:
                raise ConversationCapReached(conversation.owner)
            self._open[conversation.owner] = open_count + 1
            self._conversations[conversation.id] = conversation

    def list_summaries(self, owner: str, limit: int, after: PageKey | None) -> SummaryPage:
        newest_first = [
            c
            for c in self.list_conversations(owner)
            if after is None or (c.created_at, c.id) < after
        ]
        page = newest_first[:limit]
        more = len(newest_first) > limit
        next_after = (page[-1].created_at, page[-1].id) if more and page else None
        return SummaryPage([summary_of(c) for c in page], next_after)

    def add_spend(self, owner: str, day: str, micro_usd: int, expires_at: int) -> int:
        with self._lock:
            return self._add_spend(owner, DaySpend(day, micro_usd, expires_at))

    def _add_spend(self, owner: str, spend: DaySpend) -> int:
        total = self._spend.get((owner, spend.day), 0) + spend.micro_usd
        self._spend[(owner, spend.day)] = total
        key = (owner, spend.day)
        self._committed[key] = self._committed.get(key, 0) + spend.micro_usd
        return total

    def _count_warm(self, conversation: Conversation, spend: DaySpend | None) -> DaySpend | None:
        """Counts a warm's spend (then None: nothing left to add with the state)."""
        if spend is None or spend.warm_seq is None:
            return spend
        key = (conversation.owner, spend.day, conversation.id)
        if self._warm_seq.get(key, 0) < spend.warm_seq:
            self._warm_seq[key] = spend.warm_seq
            self._add_spend(conversation.owner, spend)
        return None

    def committed(self, owner: str, day: str) -> int:
        with self._lock:
            return max(self._committed.get((owner, day), 0), self._spend.get((owner, day), 0))

    def reserve_spend(
        self, owner: str, day: str, micro_usd: int, budget_micro: int, expires_at: int
    ) -> None:
        with self._lock:
            key = (owner, day)
            if max(self._committed.get(key, 0), self._spend.get(key, 0)) >= budget_micro:
                raise BudgetExhausted(owner)
            self._committed[key] = self._committed.get(key, 0) + micro_usd

    def settle_spend(
        self, owner: str, day: str, reserved_micro: int, actual_micro: int, expires_at: int
    ) -> None:
        with self._lock:
            key = (owner, day)
            self._spend[key] = self._spend.get(key, 0) + actual_micro
            self._committed[key] = self._committed.get(key, 0) + actual_micro - reserved_micro

    def spent(self, owner: str, day: str) -> int:
        with self._lock:
            return self._spend.get((owner, day), 0)

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        with self._lock:
            return self._conversations.get(conversation_id)

    def list_conversations(self, owner: str) -> list[Conversation]:
        with self._lock:
            mine = [c for c in self._conversations.values() if c.owner == owner]
        # The GSI sort key is `<created_at>#<id>`, read newest first.
        return sorted(mine, key=lambda c: (c.created_at, c.id), reverse=True)

    def save_conversation(
        self,
        conversation: Conversation,
        turn: Turn | None = None,
        slot: SlotChange | None = None,
        tally: Tally | None = None,
        spend: DaySpend | None = None,
        place: PlaceChange | None = None,
        history: HistoryEntry | None = None,
    ) -> Conversation:
        with self._lock:
            # Before the state, as the adapter counts a warm's cost: once, whatever follows.
            spend = self._count_warm(conversation, spend)
            stored = self._conversations.get(conversation.id)
            if stored is None or stored.version != conversation.version:
                raise VersionConflict(conversation.id)
            saved = dataclasses.replace(conversation, version=conversation.version + 1)
            for item in (encode_conversation(saved), encode_turn(turn) if turn else ""):
                if len(item.encode()) > MAX_ITEM_BYTES:
                    raise ItemTooLarge(conversation.id)
            owner = conversation.owner
            open_count = self._open.get(owner, 0)
            cap = place.cap if place is not None and place.take else None
            if cap is not None and open_count >= cap:
                raise ConversationCapReached(owner)
            slots = self._warming.setdefault(owner, set())
            if slot is not None and slot.take:
                if len(slots) >= slot.cap and conversation.id not in slots:
                    raise CapReached(owner)
                slots.add(conversation.id)
            elif slot is not None:
                slots.discard(conversation.id)
            if place is not None:
                self._open[owner] = open_count + (1 if place.take else -1)
            self._conversations[conversation.id] = saved
            if turn is not None:
                self._turns.setdefault(turn.conversation_id, {})[turn.index] = turn
            if tally is not None:
                self._savings[owner] = self._savings.get(owner, Tally()).plus(tally)
            if spend is not None:
                self._add_spend(conversation.owner, spend)
            if history is not None:
                self._record(conversation.id, history)
            return saved

    def _record(self, conversation_id: str, history: HistoryEntry) -> None:
        entries = self._history.setdefault(conversation_id, {})
        entries[history.seq] = history
        entries.pop(history.seq - MAX_ENTRIES, None)

    def history(
        self, conversation_id: str, limit: int, before: int | None, now_s: int
    ) -> HistoryPage:
        with self._lock:
            entries = self._history.get(conversation_id, {})
            newest_first = [
                entries[seq]
                for seq in sorted(entries, reverse=True)
                if (before is None or seq < before) and entries[seq].expires_at_s > now_s
            ]
        page = newest_first[:limit]
        more = len(newest_first) > limit
        return HistoryPage(page, page[-1].seq if more and page else None)

    def savings(self, owner: str) -> Tally:
        with self._lock:
            return self._savings.get(owner, Tally())

    def get_turns(self, conversation_id: str) -> list[Turn]:
        with self._lock:
            turns = self._turns.get(conversation_id, {})
            return [self._with_partial(turns[index]) for index in sorted(turns)]

    def _with_partial(self, turn: Turn) -> Turn:
        partial = self._partials.get((turn.conversation_id, turn.index))
        if turn.status != "generating" or partial is None:
            return turn
        return dataclasses.replace(turn, assistant_text=partial)

    def save_partial_reply(self, conversation_id: str, index: int, text: str) -> None:
        with self._lock:
            if index in self._turns.get(conversation_id, {}):
                self._partials[(conversation_id, index)] = text

    def put_connection(self, connection: Connection) -> None:
        with self._lock:
            self._connections[connection.connection_id] = connection

    def get_connection(self, connection_id: str) -> Connection | None:
        with self._lock:
            return self._connections.get(connection_id)

    def delete_connection(self, connection_id: str) -> None:
        with self._lock:
            self._connections.pop(connection_id, None)
            for subscribed in self._subscriptions.values():
                subscribed.pop(connection_id, None)

    def subscribe(
        self, connection_id: str, conversation_id: str, channel: Channel, expires_at: int
    ) -> None:
        with self._lock:
            self._subscriptions.setdefault((conversation_id, channel), {})[connection_id] = (
                expires_at
            )

    def unsubscribe(self, connection_id: str, conversation_id: str, channel: Channel) -> None:
        with self._lock:
            self._subscriptions.get((conversation_id, channel), {}).pop(connection_id, None)

    def subscribers(self, conversation_id: str, channel: Channel, now_s: int) -> list[str]:
        with self._lock:
            subscribed = self._subscriptions.get((conversation_id, channel), {})
            # Sort-key order, as a DynamoDB Query returns them.
            return sorted(conn for conn, expires_at in subscribed.items() if expires_at > now_s)

    def consume(self, bucket: str, window: int, limit: int, expires_at: int) -> bool:
        with self._lock:
            hits = self._hits.get((bucket, window), 0)
            if hits >= limit:
                return False
            self._hits[(bucket, window)] = hits + 1
            return True

    def load(self, conversation_id: str, now_s: int) -> Snapshot | None:
        conversation = self.get_conversation(conversation_id)
        if conversation is None:
            return None
        return Snapshot(
            conversation,
            self.get_turns(conversation_id),
            {
                channel: self.subscribers(conversation_id, channel, now_s)
                for channel in ("surface", "chat")
            },
        )
