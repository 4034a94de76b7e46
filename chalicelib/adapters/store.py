"""The storage ports over one DynamoDB table (layout and codec: `store_items.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from chalicelib.adapters.store_history import HistoryItems
from chalicelib.adapters.store_items import (
    GSI_NAME,
    META,
    PARTIAL_TEXT,
    SUMMARY_GSI,
    TTL_ATTRIBUTE,
    conversation_item,
    conversation_key,
    create_table,
    decode_conversation,
    decode_summary,
    int_attr,
    page_key_of,
    s_value,
    str_attr,
    summary_start_key,
    turn_from_item,
    turn_key,
)
from chalicelib.adapters.store_table import error_code
from chalicelib.adapters.store_users import UserItems
from chalicelib.adapters.store_writes import ConversationWrites
from chalicelib.domain.conversation import (
    Conversation,
    ConversationSummary,
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
        items: list[Item] = []
        for item in self._query(request):  # type: ignore[arg-type]
            items.append(item)
            if len(items) > limit:
                break
        page = items[:limit]
        more = len(items) > limit
        next_after = page_key_of(str_attr(page[-1], "gsi1sk")) if more and page else None
        return SummaryPage([self._summary(item) for item in page], next_after)

    def _summary(self, item: Item) -> ConversationSummary:
        if "summary" in item:
            return decode_summary(str_attr(item, "summary"))
        # Written before summaries existed: read it once (its next write adds the summary).
        conversation = self.get_conversation(str_attr(item, "pk").removeprefix("CONV#"))
        assert conversation is not None
        return summary_of(conversation)

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        response = self.client.get_item(
            TableName=self._table, Key=conversation_key(conversation_id), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        return decode_conversation(str_attr(item, "body"), int_attr(item, "version"))

    def list_conversations(self, owner: str) -> list[Conversation]:
        items = self._query(
            {
                "TableName": self._table,
                "IndexName": GSI_NAME,
                "KeyConditionExpression": "gsi1pk = :pk",
                "ExpressionAttributeValues": {":pk": s_value(f"OWNER#{owner}")},
                "ScanIndexForward": False,
            }
        )
        return [
            decode_conversation(str_attr(item, "body"), int_attr(item, "version")) for item in items
        ]

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
        items = self._query(
            {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": s_value(f"CONV#{conversation_id}")},
                "ConsistentRead": True,
            }
        )
        conversation: Conversation | None = None
        turns: list[Turn] = []
        subscribers: dict[str, list[str]] = {"surface": [], "chat": []}
        for item in items:
            sort_key = str_attr(item, "sk")
            if sort_key == META:
                conversation = decode_conversation(
                    str_attr(item, "body"), int_attr(item, "version")
                )
            elif sort_key.startswith("TURN#"):
                turns.append(turn_from_item(item))
            elif sort_key.startswith("SUB#") and int_attr(item, TTL_ATTRIBUTE) > now_s:
                channel = sort_key.split("#", 2)[1]
                subscribers.setdefault(channel, []).append(str_attr(item, "connectionId"))
        if conversation is None:
            return None
        return Snapshot(conversation, turns, subscribers)
