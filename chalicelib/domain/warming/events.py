"""What the policy hears (events) and what it asks for (effects).

Messages are msgspec Structs, not frozen dataclasses: on Python 3.11 defining a frozen dataclass
compiles and runs its generated methods, about 0.5 ms a class at import, and every handler's cold start
imports these (bench coldstart; docs/architecture.md, "Value types").
"""

from __future__ import annotations

import msgspec

from chalicelib.domain.pricing import Usage
from chalicelib.domain.warming.state import ModelTerms, RetentionSetting, WarmingState


class ConversationCreated(msgspec.Struct, frozen=True):
    retention: RetentionSetting = "auto"


class Toggle(msgspec.Struct, frozen=True):
    """`enabled=None` flips the current setting."""

    enabled: bool | None


class SetInterval(msgspec.Struct, frozen=True):
    seconds: int


class TickDue(msgspec.Struct, frozen=True):
    seq: int
    target: int
    terms: ModelTerms
    # The invocation's deadline: a claim is held no longer.
    deadline: int
    # False when the owner's spend budget for the day is used up (read by the caller).
    budget_left: bool = True


class WarmAbandoned(msgspec.Struct, frozen=True):
    """The invocation that claimed warm `seq` failed before finishing it: free the claim for
    Lambda's retry (or a redelivery), keeping what the warm did if it was sent."""

    seq: int
    started_at: int = 0
    usage: Usage | None = None
    cost_usd: float = 0.0


class Revive(msgspec.Struct, frozen=True):
    """Someone looks at the conversation (opens its panel): re-arm a tick that was lost."""


class WarmFinished(msgspec.Struct, frozen=True):
    seq: int
    started_at: int
    terms: ModelTerms
    usage: Usage | None = None
    cost_usd: float = 0.0
    error: str | None = None


class TurnStarted(msgspec.Struct, frozen=True):
    at: int


class TurnClaimed(msgspec.Struct, frozen=True):
    """The generate invocation holds the turn and is about to send its request: with the auto
    cache, the cache this request marks is chosen now (`choice.py`)."""

    terms: ModelTerms


class TurnSealed(msgspec.Struct, frozen=True):
    started_at: int
    sealed_at: int
    # None only if the model's usage never arrived: sizes unknown.
    usage: Usage | None
    terms: ModelTerms


class TurnEnded(msgspec.Struct, frozen=True):
    """A turn that was aborted or failed; `refreshed_at` is its request start if it reached the model.
    `context_full`: the API refused its prompt as longer than the model's context window."""

    refreshed_at: int | None
    context_full: bool = False


class Close(msgspec.Struct, frozen=True):
    pass


Event = (
    ConversationCreated
    | WarmAbandoned
    | Revive
    | Toggle
    | SetInterval
    | TickDue
    | WarmFinished
    | TurnStarted
    | TurnClaimed
    | TurnSealed
    | TurnEnded
    | Close
)

# --- effects ------------------------------------------------------------------------------


class ArmTimer(msgspec.Struct, frozen=True):
    seq: int
    target: int


class CancelTimer(msgspec.Struct, frozen=True):
    ref: str


class Warm(msgspec.Struct, frozen=True):
    seq: int


class PushUpdate(msgspec.Struct, frozen=True):
    pass


class Tally(msgspec.Struct, frozen=True):
    """Add to the owner's savings counter, in the same write as the state: a warm recorded (its
    cost spent) or a rescue (what it saved)."""

    spent_usd: float = 0.0
    saved_usd: float = 0.0
    warms: int = 0
    rescues: int = 0

    def plus(self, other: Tally) -> Tally:
        return Tally(
            round(self.spent_usd + other.spent_usd, 8),
            round(self.saved_usd + other.saved_usd, 8),
            self.warms + other.warms,
            self.rescues + other.rescues,
        )

    @property
    def net_usd(self) -> float:
        """Saved minus spent: negative while warming has cost more than it rescued."""
        return round(self.saved_usd - self.spent_usd, 8)


Effect = ArmTimer | CancelTimer | Warm | PushUpdate | Tally
Decision = tuple[WarmingState, list[Effect]]
