"""The conversation's model as the policy needs it: its catalog facts and today's prices."""

from __future__ import annotations

from chalicelib.domain import catalog
from chalicelib.domain.conversation import Conversation
from chalicelib.domain.errors import Refused
from chalicelib.domain.pricing import Usage, idle_warm_budget
from chalicelib.domain.warming import ModelTerms
from chalicelib.services.ports import Ports


class Costs:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def terms(self, conversation: Conversation, now: int) -> ModelTerms:
        facts = catalog.lookup(conversation.model)
        if facts is None:
            raise Refused("internal_error", f"model {conversation.model!r} left the catalog")
        rates = self.ports.prices().cache_rates(
            conversation.model, now, conversation.warming.prefix_tokens or 0
        )
        return ModelTerms(
            idle_budget=idle_warm_budget(rates, conversation.retention),
            min_cacheable_tokens=facts.min_cacheable_tokens,
            context_limit=facts.context_window - conversation.max_tokens,
            rates=rates,
        )

    def usd(self, conversation: Conversation, usage: Usage, at: int) -> float:
        return round(self.ports.prices().cost_usd(conversation.model, usage, at), 8)
