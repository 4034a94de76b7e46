"""What the policy hears (events) and what it asks for (effects)."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.pricing import Usage
from chalicelib.domain.warming.state import ModelTerms, RetentionSetting, WarmingState


@dataclass(frozen=True)
class ConversationCreated:
    retention: RetentionSetting = "auto"


@dataclass(frozen=True)
class Toggle:
    """`enabled=None` flips the current setting."""

    enabled: bool | None


@dataclass(frozen=True)
class SetInterval:
    seconds: int


@dataclass(frozen=True)
class TickDue:
    seq: int
    target: int
    terms: ModelTerms
    # The invocation's deadline: a claim is held no longer.
    deadline: int
    # False when the owner's spend budget for the day is used up (read by the caller).
    budget_left: bool = True


@dataclass(frozen=True)
class WarmAbandoned:
    """The invocation that claimed warm `seq` failed before finishing it: free the claim for
    Lambda's retry (or a redelivery), keeping what the warm did if it was sent."""

    seq: int
    started_at: int = 0
    usage: Usage | None = None
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Revive:
    """Someone looks at the conversation (opens its panel): re-arm a tick that was lost."""


@dataclass(frozen=True)
class WarmFinished:
    seq: int
    started_at: int
    terms: ModelTerms
    usage: Usage | None = None
    cost_usd: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class TurnStarted:
    at: int


@dataclass(frozen=True)
class TurnClaimed:
    """The generate invocation holds the turn and is about to send its request: with the auto
    cache, the cache this request marks is chosen now (`choice.py`)."""

    terms: ModelTerms


@dataclass(frozen=True)
class TurnSealed:
    started_at: int
    sealed_at: int
    # None when the stream was cut before the API reported it (the deadline): sizes unknown.
    usage: Usage | None
    terms: ModelTerms


@dataclass(frozen=True)
class TurnEnded:
    """A turn that was aborted or failed; `refreshed_at` is its request start if it reached the model.
    `context_full`: the API refused its prompt as longer than the model's context window."""

    refreshed_at: int | None
    context_full: bool = False


@dataclass(frozen=True)
class Close:
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


@dataclass(frozen=True)
class ArmTimer:
    seq: int
    target: int


@dataclass(frozen=True)
class CancelTimer:
    ref: str


@dataclass(frozen=True)
class Warm:
    seq: int


@dataclass(frozen=True)
class PushUpdate:
    pass


@dataclass(frozen=True)
class Tally:
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
