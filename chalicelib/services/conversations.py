"""Conversations over HTTP: create (the model checked against the catalog), read, list, and the
owner's warming savings."""

from __future__ import annotations

from chalicelib.domain import catalog, turns
from chalicelib.domain.conversation import Conversation, PageKey, Turn, is_blank
from chalicelib.domain.errors import Refused
from chalicelib.domain.warming import ConversationCreated, Tally, WarmingState, decide
from chalicelib.ports import ConversationCapReached, HistoryPage, SummaryPage
from chalicelib.services.unit_of_work import UnitOfWork
from chalicelib.wire import commands


class Conversations:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.ports = uow.ports

    def create(self, owner: str, command: commands.CreateConversation) -> Conversation:
        if command.system is not None and is_blank(command.system):
            # The API refuses whitespace-only text blocks: every request would fail.
            raise Refused("invalid_field", "'system' must contain non-whitespace text")
        model = command.model or self.ports.default_model
        facts = catalog.lookup(model)
        if facts is None:
            known = ", ".join(catalog.known_ids())
            raise Refused("invalid_field", f"'model' must be one of the catalog's models: {known}")
        limit = facts.max_output_tokens
        max_tokens = command.max_tokens or min(self.ports.default_max_tokens, limit)
        if max_tokens > limit:
            raise Refused(
                "invalid_field", f"'maxTokens' must be an integer from 1 to {limit} for {model}"
            )
        now = self.ports.clock.now_ms()
        # Creation is an event of the policy like any other: its rules decide the first state.
        warming, _ = decide(WarmingState(), ConversationCreated(command.retention), now)
        conversation = Conversation(
            id=self.ports.new_id(),
            owner=owner,
            created_at=now,
            title=command.title or "New conversation",
            model=model,
            system=command.system or self.ports.default_system,
            max_tokens=max_tokens,
            warming=warming,
        )
        cap = self.ports.limits.conversations
        try:
            self.ports.store.create_conversation(conversation, cap=cap)
        except ConversationCapReached as error:
            raise turns.too_many_open(cap) from error
        return conversation

    def get(self, owner: str, conversation_id: str) -> tuple[Conversation, list[Turn]]:
        conversation = self.uow.read_owned(conversation_id, owner)
        return conversation, self.ports.store.get_turns(conversation.id)

    def list(self, owner: str, limit: int, after: PageKey | None = None) -> SummaryPage:
        """One page of the owner's conversation summaries, newest first (no bodies read)."""
        return self.ports.store.list_summaries(owner, limit, after)

    def savings(self, owner: str) -> Tally:
        """The owner's warming totals: one read of the counter the conversations' writes add to."""
        return self.ports.store.savings(owner)

    def history(
        self, owner: str, conversation_id: str, limit: int, before: int | None = None
    ) -> HistoryPage:
        """One page of the conversation's warms and turns, newest first (its owner only)."""
        self.uow.read_owned(conversation_id, owner)
        now_s = self.ports.clock.now_ms() // 1000
        return self.ports.store.history(conversation_id, limit, before, now_s)
