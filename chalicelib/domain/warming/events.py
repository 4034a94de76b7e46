"""What the policy hears (events) and what it asks for (effects)."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.pricing import Usage
from chalicelib.domain.warming.state import ModelTerms, Retention, WarmingState


@dataclass(frozen=True)
class ConversationCreated:
    retention: Retention = "5m"


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


Effect = ArmTimer | CancelTimer | Warm | PushUpdate
Decision = tuple[WarmingState, list[Effect]]
