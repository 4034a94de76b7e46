"""The turn rules (pure): begin a turn, request an abort, claim the stream, end a turn, find an
abandoned one, and the warming cap.

Each takes the conversation as it was just read and returns a `Change`, shaped like
`warming.decide`: the edited conversation, a turn item to write in the same transaction, the
event the warming policy hears, and the chat announcement to push once the write has landed.
The caller writes it conditionally on the version it read, and decides again on a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from chalicelib.domain.context import check_fits
from chalicelib.domain.conversation import (
    AbortReason,
    Conversation,
    Turn,
    TurnStatus,
    fit_reply,
    is_blank,
)
from chalicelib.domain.errors import Refused
from chalicelib.domain.pricing import Usage
from chalicelib.domain.warming import Close, Event, ModelTerms, TurnEnded, TurnSealed, TurnStarted

# A turn nobody claimed this long after it started has lost its generate invocation for good:
# Lambda drops an async event older than the function's maximum event age (120 s, infra) and
# sends it to the on-failure destination instead.
UNCLAIMED_AFTER_MS = 180_000


@dataclass(frozen=True)
class TurnStartedNotice:
    turn: Turn


@dataclass(frozen=True)
class TurnEndedNotice:
    turn: Turn
    cost_usd: float | None = None


Announcement = TurnStartedNotice | TurnEndedNotice


@dataclass(frozen=True)
class Change:
    conversation: Conversation
    turn: Turn | None = None
    event: Event | None = None
    announce: Announcement | None = None


@dataclass(frozen=True)
class Reported:
    """How the generate invocation saw its turn end."""

    status: Literal["sealed", "aborted", "failed"]
    text: str
    usage: Usage | None = None
    error_code: str | None = None
    # The request reached the model, so it read (and refreshed) the cache at the turn's start.
    reached_model: bool = False
    cost_usd: float | None = None
    # The stream was stopped before the invocation's deadline: what arrived is sealed as is.
    truncated: bool = False
    # What the turn reserved against the day's budget before its request (budget.py).
    reserved_micro: int = 0


def begin_turn(
    conversation: Conversation, text: str, now: int, context_limit: int | None = None
) -> Change:
    if conversation.generating:
        raise Refused("turn_in_progress", "a reply is still being generated")
    check_fits(conversation, text, context_limit)
    turn = Turn(conversation.id, conversation.turn_count, text, now)
    begun = replace(
        conversation,
        turn_count=conversation.turn_count + 1,
        active_turn_id=turn.turn_id,
        abort_reason=None,
        stream_owner=None,
        stream_until=None,
    )
    return Change(begun, turn, TurnStarted(now))


def request_abort(conversation: Conversation, reason: AbortReason) -> Change:
    """Ask the generating invocation to stop; the first reason asked for wins."""
    if not conversation.generating or conversation.abort_reason:
        return Change(conversation)
    return Change(replace(conversation, abort_reason=reason))


def close(conversation: Conversation) -> Change:
    """Warming off and the in-flight turn aborted, in one write."""
    return replace(request_abort(conversation, "closed"), event=Close())


def claim_stream(
    conversation: Conversation, turn_id: str, owner: str, until: int, now: int
) -> Change | None:
    """The generate invocation `owner` claims its turn until its own deadline `until`; None for a
    finished turn or one another live invocation holds."""
    if conversation.active_turn_id != turn_id or _held(conversation, now):
        return None
    return Change(replace(conversation, stream_owner=owner, stream_until=until))


def _held(conversation: Conversation, now: int) -> bool:
    return conversation.stream_until is not None and conversation.stream_until > now


def announce_start(turn: Turn) -> TurnStartedNotice:
    return TurnStartedNotice(turn)


def end_turn(
    conversation: Conversation,
    started: Turn,
    reported: Reported,
    now: int,
    terms: ModelTerms | None,
    owner: str | None = None,
) -> Change | None:
    """Seal, abort or fail the turn, against the fresh read: an abort asked for before the seal
    wins, a blank reply never becomes history, and the stored reply always fits its item.
    None when the turn is no longer the active one, or another live invocation holds it: a late
    or duplicate invocation writes nothing. `terms` are needed to seal."""
    if conversation.active_turn_id != started.turn_id:
        return None
    if conversation.stream_owner != owner and _held(conversation, now):
        return None
    status, reason, code = _ending(conversation.abort_reason, reported)
    text, cut = fit_reply(started.user_text, reported.text)
    ended = replace(
        started,
        status=status,
        assistant_text=text,
        ended_at=now,
        usage=reported.usage,
        error_code=code,
        abort_reason=reason,
        truncated=cut or (status == "sealed" and reported.truncated),
        cost_usd=reported.cost_usd,
    )
    cleared = replace(
        conversation, active_turn_id=None, abort_reason=None, stream_owner=None, stream_until=None
    )
    event: Event
    if status == "sealed":
        assert terms is not None, "a seal needs the model's terms"
        event = TurnSealed(started.started_at, now, reported.usage, terms)
    else:
        event = TurnEnded(
            started.started_at if reported.reached_model else None,
            context_full=code == "context_window_exceeded",
        )
    return Change(cleared, ended, event, TurnEndedNotice(ended, reported.cost_usd))


def _ending(
    requested: AbortReason | None, reported: Reported
) -> tuple[TurnStatus, AbortReason | None, str | None]:
    if reported.status == "aborted" or (reported.status == "sealed" and requested):
        # The user asked to stop: a reply that finished meanwhile still counts as aborted.
        return "aborted", requested or "cancelled", None
    if reported.status == "sealed" and is_blank(reported.text):
        # Sent back as history, a blank reply would make every later request a 400 ("text
        # content blocks must contain non-whitespace text").
        return "failed", None, "empty_reply"
    if reported.status == "failed":
        return "failed", None, reported.error_code or "upstream_error"
    return "sealed", None, None


def abandoned_turn(conversation: Conversation, now: int) -> str | None:
    """The id of a turn whose generate invocation has certainly died, if any: its claim outlived
    the invocation's deadline, or nobody claimed it in time."""
    if not conversation.generating:
        return None
    if conversation.stream_until is not None:
        return conversation.active_turn_id if conversation.stream_until <= now else None
    started = conversation.warming.turn_started_at
    if started is None or now - started < UNCLAIMED_AFTER_MS:
        return None
    return conversation.active_turn_id


def open_place(before: Conversation, after: Conversation) -> bool | None:
    """Whether this change takes one of the owner's places for open conversations (True: it
    reopens a closed one), frees one (False: it closes), or neither (None)."""
    if after.warming.closed == before.warming.closed:
        return None
    return not after.warming.closed


def too_many_open(cap: int) -> Refused:
    return Refused(
        "limit_reached",
        f"you have reached the limit of {cap} open conversations; close one first",
    )


def warming_slot(before: Conversation, after: Conversation) -> bool | None:
    """Whether this change takes one of the owner's warming slots (True), releases one (False),
    or neither (None): a slot is held while warming is enabled, whatever its status."""
    if after.warming.enabled == before.warming.enabled:
        return None
    return after.warming.enabled
