"""The storage ports over one DynamoDB table (layout and codec: `store_items.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from chalicelib.adapters.store_history import HistoryItems
from chalicelib.adapters.store_items import (
    FIXED_FROM,
    GSI_NAME,
    META,
    PARTIAL_TEXT,
    SUMMARY_GSI,
    TTL_ATTRIBUTE,
    conversation_item,
    conversation_key,
    create_table,
    decode_conversation,
    id_of,
    int_attr,
    is_legacy,
    list_item,
    page_key_of,
    s_value,
    state_of,
    str_attr,
    summary_start_key,
    system_item,
    turn_from_item,
    turn_key,
)
from chalicelib.adapters.store_table import error_code
from chalicelib.adapters.store_users import UserItems
from chalicelib.adapters.store_writes import ConversationWrites
from chalicelib.domain.conversation import (
    Conversation,
    PageKey,
    Turn,
    summary_of,
)
from chalicelib.ports import (
    AlreadyExists,
    ConversationCapReached,
    PlaceChange,
    Snapshot,
    SummaryPage,
)

if TYPE_CHECKING:
    from chalicelib.adapters.store_items import Item

__all__ = ["GSI_NAME", "SUMMARY_GSI", "TTL_ATTRIBUTE", "DynamoStore", "create_table"]


def _cancelled_at(error: ClientError) -> list[bool]:
    """Which items of a cancelled transaction failed their condition."""
    reasons = cast(list[dict[str, Any]], error.response.get("CancellationReasons") or [])
    return [reason.get("Code") == "ConditionalCheckFailed" for reason in reasons]


class DynamoStore(ConversationWrites, UserItems, HistoryItems):
    """All the storage ports over the one table."""

    # --- conversations ---------------------------------------------------------------------

    def create_conversation(self, conversation: Conversation, cap: int | None = None) -> None:
        """The conversation and the owner's count in one transaction: concurrent creations can
        never pass the cap (a check before the write could)."""
        count = self._place_update(conversation.owner, PlaceChange(True, cap))
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": conversation_item(conversation, conversation.version),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Update": count},  # type: ignore[typeddict-item]
                    # Last: a cancellation names the two above by position.
                    {"Put": {"TableName": self._table, "Item": system_item(conversation)}},
                    {"Put": {"TableName": self._table, "Item": list_item(conversation)}},
                ]
            )
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            failed = _cancelled_at(error)
            if failed[:1] == [True]:
                raise AlreadyExists(conversation.id) from error
            if failed[1:2] == [True]:
                raise ConversationCapReached(conversation.owner) from error
            raise

    def list_summaries(self, owner: str, limit: int, after: PageKey | None) -> SummaryPage:
        """A page of the owner index (keys only), then the page's state items read eventually
        consistent, as the index itself is: the summary shows the state as the last warm left
        it, which no warm writes to an index (docs/architecture.md, "Data layout")."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": SUMMARY_GSI,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": s_value(f"OWNER#{owner}")},
            "ScanIndexForward": False,
            # One more than asked: whether a next page exists, without an empty last page.
            "Limit": limit + 1,
        }
        if after is not None:
            request["ExclusiveStartKey"] = summary_start_key(owner, after)
        entries: list[Item] = []
        for item in self._query(request):  # type: ignore[arg-type]
            entries.append(item)
            if len(entries) > limit:
                break
        page = entries[:limit]
        more = len(entries) > limit
        next_after = page_key_of(str_attr(page[-1], "gsi1sk")) if more and page else None
        states = self._states([id_of(item) for item in page], consistent=False)
        summaries = [summary_of(states[id_of(item)]) for item in page if id_of(item) in states]
        return SummaryPage(summaries, next_after)

    def _states(self, conversation_ids: list[str], consistent: bool) -> dict[str, Conversation]:
        """Conversations by id from their state items alone (the prompt left empty)."""
        keys = [
            conversation_key(conversation_id) for conversation_id in dict.fromkeys(conversation_ids)
        ]
        states: dict[str, Conversation] = {}
        for item in self._batch_get(keys, consistent):
            states[id_of(item)] = decode_conversation(state_of(item), int_attr(item, "version"), "")
        return states

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        response = self.client.get_item(
            TableName=self._table, Key=conversation_key(conversation_id), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else self._conversation(item)

    def _conversation(self, item: Item) -> Conversation:
        """The conversation of a META item, its prompt from the cache or the SYSTEM item."""
        state = state_of(item)
        conversation_id = str_attr(item, "pk").removeprefix("CONV#")
        if is_legacy(state):
            self._legacy.add(conversation_id)
            return decode_conversation(state, int_attr(item, "version"), None)
        system = self._system(conversation_id)
        return decode_conversation(state, int_attr(item, "version"), system)

    def list_conversations(self, owner: str) -> list[Conversation]:
        found = [self.get_conversation(conversation_id) for conversation_id in self._owned(owner)]
        return [conversation for conversation in found if conversation is not None]

    def get_turns(self, conversation_id: str) -> list[Turn]:
        items = self._query(
            {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "ExpressionAttributeValues": {
                    ":pk": s_value(f"CONV#{conversation_id}"),
                    ":prefix": s_value("TURN#"),
                },
                "ConsistentRead": True,
            }
        )
        return [turn_from_item(item) for item in items]

    def save_partial_reply(self, conversation_id: str, index: int, text: str) -> None:
        self.client.update_item(
            TableName=self._table,
            Key=turn_key(conversation_id, index),
            UpdateExpression="SET #partial = :text",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#partial": PARTIAL_TEXT},
            ExpressionAttributeValues={":text": s_value(text)},
        )

    def load(self, conversation_id: str, now_s: int) -> Snapshot | None:
        """The state and the subscribers strongly consistent (the range before the fixed
        items), then the prompt and the turns in one eventually consistent read (store_fixed)."""
        items = self._query(
            {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND sk < :fixed",
                "ExpressionAttributeValues": {
                    ":pk": s_value(f"CONV#{conversation_id}"),
                    ":fixed": s_value(FIXED_FROM),
                },
                "ConsistentRead": True,
            }
        )
        meta: Item | None = None
        subscribers: dict[str, list[str]] = {"surface": [], "chat": []}
        for item in items:
            sort_key = str_attr(item, "sk")
            if sort_key == META:
                meta = item
            elif sort_key.startswith("SUB#") and int_attr(item, TTL_ATTRIBUTE) > now_s:
                channel = sort_key.split("#", 2)[1]
                subscribers.setdefault(channel, []).append(str_attr(item, "connectionId"))
        if meta is None:
            return None
        state = state_of(meta)
        legacy = state.get("system") if is_legacy(state) else None
        if legacy is not None:
            self._legacy.add(conversation_id)
        system, turns = self._fixed(conversation_id, int(state.get("turn_count", 0)), legacy)
        conversation = decode_conversation(state, int_attr(meta, "version"), system)
        return Snapshot(conversation, turns, subscribers)
