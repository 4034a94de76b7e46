"""What every use case is given: the ports, the per-user limits, the product defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib.config import (
    DEFAULT_DAILY_BUDGET_USD,
    DEFAULT_MAX_CONVERSATIONS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    DEFAULT_SYSTEM_PROMPT,
)
from chalicelib.ports import Clock, Invoker, Model, PriceBook, Sockets, Store, TickQueue, Timer


@dataclass(frozen=True)
class Limits:
    """Per-user caps, so one user cannot run up another's bill or the account's quotas."""

    frames_per_second: int = 20  # per connection
    turns_per_minute: int = 10  # per user
    warming_conversations: int = 10  # per user, enabled at the same time
    conversations: int = DEFAULT_MAX_CONVERSATIONS  # per user, open (closing frees a place)
    # US dollars per user per UTC day, turns and warms together; None: no budget.
    daily_budget_usd: float | None = DEFAULT_DAILY_BUDGET_USD


@dataclass
class Ports:
    store: Store
    timer: Timer
    sockets: Sockets
    clock: Clock
    # Built on first use: the anthropic SDK and the price library are loaded by the warm and
    # generate functions only, never by the WebSocket handlers.
    model: Callable[[], Model]
    invoker: Callable[[], Invoker]
    prices: Callable[[], PriceBook]
    new_id: Callable[[], str]
    default_model: str = DEFAULT_MODEL
    default_system: str = DEFAULT_SYSTEM_PROMPT
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    limits: Limits = field(default_factory=Limits)
    # Where a failed tick delivery is put back for a quick retry (the SQS queue the ticks come
    # from); None where ticks are not delivered by a queue (tests calling the use case directly).
    tick_queue: TickQueue | None = None
