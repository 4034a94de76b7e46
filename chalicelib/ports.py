"""The small interfaces the use cases need from the outside world, split by concern.

Each has one real adapter in `chalicelib/adapters/` and an in-memory fake in `tests/fakes/`.
The DynamoDB adapter serves the three storage concerns from one table (`Store`); each use case
names only the concern it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from chalicelib.domain.budget import DaySpend
from chalicelib.domain.conversation import Conversation, ConversationSummary, PageKey, Turn
from chalicelib.domain.history import HistoryEntry
from chalicelib.domain.pricing import CacheRates, Usage
from chalicelib.domain.prompts import Prompt
from chalicelib.domain.warming import Tally

Channel = Literal["surface", "chat"]


class VersionConflict(Exception):
    """The item changed since it was read: re-read and decide again."""


class AlreadyExists(Exception):
    pass


class CapReached(Exception):
    """The owner already warms as many conversations as the cap allows; nothing was written."""


class ItemTooLarge(Exception):
    """An item over DynamoDB's 400 KB: refused, nothing written."""


class WriteOutcomeUnknown(Exception):
    """The write failed in a way that may have landed (a 5xx, throttling or a lost response
    after botocore's retries) and reading it back failed too."""


@dataclass(frozen=True)
class SlotChange:
    """A conversation takes or releases one of its owner's warming slots, in the same write."""

    take: bool
    cap: int


class ConversationCapReached(Exception):
    """The owner already has as many open conversations as the cap allows; nothing was written."""


@dataclass(frozen=True)
class PlaceChange:
    """A conversation reopens (takes one of its owner's places for open conversations, refused
    past `cap`) or closes (frees its place), in the same write."""

    take: bool
    cap: int | None


@dataclass(frozen=True)
class SummaryPage:
    summaries: list[ConversationSummary]
    # Where the next page starts; None on the last page.
    next_after: PageKey | None


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    # The `seq` the next (older) page starts below; None on the last page.
    next_before: int | None


@dataclass(frozen=True)
class Connection:
    connection_id: str
    owner: str
    connected_at: int
    # Epoch seconds: the connection's authority ends here, at its token's expiry or API Gateway's
    # 2-hour connection limit, whichever is first. DynamoDB TTL removes the item after this
    # (readers check it themselves: the sweep lags).
    expires_at: int


@dataclass(frozen=True)
class Snapshot:
    """Everything under one conversation, read at once: the warm path's single query."""

    conversation: Conversation
    turns: list[Turn]
    subscribers: dict[str, list[str]]


class ConversationStore(Protocol):
    """Conversations and their turns, written with optimistic concurrency."""

    def create_conversation(self, conversation: Conversation, cap: int | None = None) -> None:
        """Raises AlreadyExists if the id is taken, ConversationCapReached if the owner already
        has `cap` open conversations (counted in the same write; closing frees a place)."""

    def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    def list_conversations(self, owner: str) -> list[Conversation]:
        """The owner's conversations, newest first (whole bodies: not for the list view)."""

    def list_summaries(self, owner: str, limit: int, after: PageKey | None) -> SummaryPage:
        """At most `limit` of the owner's conversation summaries, newest first, starting after
        `after`; reads no conversation body."""

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
        """Write `conversation` if the stored version still equals `conversation.version`.

        Returns the stored copy (version + 1). With `turn`, the turn item is written in the same
        transaction; with `slot`, the owner's warming slots change in it too (taking one past
        the cap raises CapReached); with `tally`, the owner's savings counter is added to in it
        (so it counts each warm and rescue exactly when the conversation records it); with
        `spend`, the owner's counter for that day is added to in it as well (a warm's spend, which
        names its warm, is counted before the state and once per warm, even when the version
        check then fails: the warm was billed); with `place`, the
        owner's count of open conversations (taking one past the cap raises
        ConversationCapReached); with `history`, the entry is put (with its TTL; readers show only the
        newest `MAX_ENTRIES`). Raises
        VersionConflict when the version moved on, writing nothing. A write that landed although its response was lost (a retried request that then
        failed its own condition) is recognised as this write and returned as saved.
        """

    def get_turns(self, conversation_id: str) -> list[Turn]:
        """All turns in order; a turn still generating shows its reply so far."""

    def save_partial_reply(self, conversation_id: str, index: int, text: str) -> None:
        """Checkpoint the reply of a turn still generating (a late subscriber reads it)."""

    def load(self, conversation_id: str, now_s: int) -> Snapshot | None:
        """Conversation, turns and live subscribers per channel in one consistent read."""

    def history(
        self, conversation_id: str, limit: int, before: int | None, now_s: int
    ) -> HistoryPage:
        """At most `limit` history entries, newest first, with `seq` below `before`; expired
        entries (TTL passed, not yet removed) are skipped. Never read by `load`."""


class ConnectionStore(Protocol):
    """WebSocket connections and their subscriptions to conversations."""

    def put_connection(self, connection: Connection) -> None: ...

    def get_connection(self, connection_id: str) -> Connection | None: ...

    def delete_connection(self, connection_id: str) -> None:
        """Forget the connection and every subscription it holds."""

    def subscribe(
        self, connection_id: str, conversation_id: str, channel: Channel, expires_at: int
    ) -> None: ...

    def unsubscribe(self, connection_id: str, conversation_id: str, channel: Channel) -> None: ...

    def subscribers(self, conversation_id: str, channel: Channel, now_s: int) -> list[str]:
        """Connection ids subscribed to the conversation's channel, skipping expired ones."""


class RateLimits(Protocol):
    def consume(self, bucket: str, window: int, limit: int, expires_at: int) -> bool:
        """Count one hit in `bucket`'s fixed `window`; False (counting nothing) once `limit` is reached."""


class SpendLedger(Protocol):
    """Per-user spend per UTC day, in micro-dollars, counted atomically."""

    def add_spend(self, owner: str, day: str, micro_usd: int, expires_at: int) -> int:
        """Add to the owner's counter for `day`; returns the new total."""

    def spent(self, owner: str, day: str) -> int: ...

    def committed(self, owner: str, day: str) -> int:
        """What `day` has spent plus what turns still streaming have reserved."""

    def reserve_spend(
        self, owner: str, day: str, micro_usd: int, budget_micro: int, expires_at: int
    ) -> None:
        """Reserve a turn's worst case against the day's budget, atomically with the check that
        the day has not committed `budget_micro` already; BudgetExhausted otherwise."""

    def settle_spend(
        self, owner: str, day: str, reserved_micro: int, actual_micro: int, expires_at: int
    ) -> None:
        """A turn that reserved `reserved_micro` cost `actual_micro`: spend it, free the rest."""


class BudgetExhausted(Exception):
    """The day's budget is committed: no new reservation."""


class SavingsLedger(Protocol):
    """Per-user totals of warming's spend and savings, added to atomically by the conversation
    writes that record them (`save_conversation(tally=...)`): each conversation keeps its own
    counters, so a warm writes no per-user item, and the totals are their sum."""

    def savings(self, owner: str) -> Tally:
        """The owner's totals so far (all zero before the first warm)."""


class Store(ConversationStore, ConnectionStore, RateLimits, SpendLedger, SavingsLedger, Protocol):
    """All the storage concerns: what the composition root hands out."""


class Timer(Protocol):
    def arm(self, conversation_id: str, seq: int, target_ms: int, now_ms: int) -> str | None:
        """Book a tick delivering `(conversation_id, seq, target_ms)` no later than the target.

        Returns a handle for `cancel`, or None when the tick cannot be cancelled (a message already
        in the tick queue: it is made harmless by its `seq` instead).
        """

    def requeue(
        self, conversation_id: str, seq: int, target_ms: int, at_ms: int, now_ms: int
    ) -> None:
        """Deliver the same tick once more at `at_ms` (a received tick that must be looked at
        again later: its claim still held, its booking write not landed yet). One delivery, no
        backup: a requeued tick is itself a second look."""

    def cancel(self, ref: str) -> None:
        """Best effort and idempotent: a tick that already fired or is gone is fine."""


# "gone": the connection no longer exists (410); "failed": this one frame was not delivered
# (refused as too large, throttled, a transport error) but the connection may still be there.
Delivery = Literal["delivered", "gone", "failed"]


class Sockets(Protocol):
    def post(self, connection_id: str, frame: dict[str, Any]) -> Delivery:
        """Send one frame to one connection."""

    def close(self, connection_id: str) -> None:
        """Close the socket (best effort: a gone one is already closed)."""


class ModelError(Exception):
    """An upstream failure, after the SDK's own retries, with a stable code. `usage` is what the
    request was billed when it failed after the model had started answering (else None)."""

    def __init__(self, code: str, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.usage = usage


@dataclass(frozen=True)
class StreamResult:
    text: str
    # What the request was billed: the model's final usage, or for a stream stopped early the
    # prompt as the model reported it and the output counted from what arrived. None only when
    # the model never started answering.
    usage: Usage | None
    aborted: bool


class Model(Protocol):
    def warm(self, prompt: Prompt) -> Usage:
        """Replay the prefix without generating; raises ModelError."""

    def stream(
        self,
        prompt: Prompt,
        on_text: Callable[[str], None],
        should_abort: Callable[[], bool],
    ) -> StreamResult:
        """Stream a reply. `should_abort` is polled often; when it answers True the stream is closed
        and the partial text returned with `aborted=True`. Raises ModelError."""


class PriceBook(Protocol):
    def cost_usd(self, model: str, usage: Usage, at_ms: int) -> float:
        """What the API bills for `usage` on `model` at that time."""

    def cache_rates(self, model: str, at_ms: int, prompt_tokens: int = 0) -> CacheRates:
        """The model's input-side rates for a prompt of that size at that time."""


class Invoker(Protocol):
    def generate(self, conversation_id: str, turn_index: int) -> None:
        """Start the generate function asynchronously."""


class TickQueue(Protocol):
    """The queue that delivers ticks to the warm function (SQS, through an event source mapping)."""

    def send(self, payload: dict[str, Any], delay_s: int) -> None:
        """Enqueue one tick, invisible for `delay_s` seconds (0 to the queue's maximum delay)."""

    def send_with_backup(self, payload: dict[str, Any], delay_s: int, backup_delay_s: int) -> None:
        """Enqueue a tick and its backup (the same tick marked `backup`) in one request."""

    def retry_later(self, receipt: str, delay_s: int) -> None:
        """A received tick whose delivery failed comes back after `delay_s` seconds (not after the
        queue's whole visibility timeout); its receive count moves it to the DLQ in the end."""


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...
