"""The storage ports over one DynamoDB table (layout and codec: `store_items.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from chalicelib.adapters.store_connections import ConnectionItems
from chalicelib.adapters.store_items import (
    GSI_NAME,
    META,
    PARTIAL_TEXT,
    TTL_ATTRIBUTE,
    conversation_item,
    conversation_key,
    create_table,
    decode_conversation,
    int_attr,
    s_value,
    savings_key,
    str_attr,
    turn_from_item,
    turn_key,
)
from chalicelib.adapters.store_table import error_code
from chalicelib.adapters.store_writes import ConversationWrites
from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.domain.warming import Tally
from chalicelib.ports import AlreadyExists, Snapshot

if TYPE_CHECKING:
    pass

__all__ = ["GSI_NAME", "TTL_ATTRIBUTE", "DynamoStore", "create_table"]


class DynamoStore(ConversationWrites, ConnectionItems):
    """All three storage ports over the one table."""

    # --- conversations ---------------------------------------------------------------------

    def create_conversation(self, conversation: Conversation) -> None:
        try:
            self.client.put_item(
                TableName=self._table,
                Item=conversation_item(conversation, conversation.version),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise AlreadyExists(conversation.id) from error
            raise

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

    def savings(self, owner: str) -> Tally:
        response = self.client.get_item(
            TableName=self._table, Key=savings_key(owner), ConsistentRead=True
        )
        item = response.get("Item") or {}

        def number(name: str) -> str:
            value = item.get(name)
            return value["N"] if value is not None and "N" in value else "0"

        return Tally(
            spent_usd=round(float(number("spentUsd")), 8),
            saved_usd=round(float(number("savedUsd")), 8),
            warms=int(number("warms")),
            rescues=int(number("rescues")),
        )

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
