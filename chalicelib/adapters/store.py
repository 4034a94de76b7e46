"""The storage ports over one DynamoDB table (layout and codec: `store_items.py`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from chalicelib.adapters.store_connections import ConnectionItems
from chalicelib.adapters.store_items import (
    GSI_NAME,
    META,
    TTL_ATTRIBUTE,
    conversation_item,
    conversation_key,
    create_table,
    decode_conversation,
    decode_turn,
    int_attr,
    n_value,
    s_value,
    str_attr,
    turn_item,
)
from chalicelib.adapters.store_table import error_code
from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.ports import AlreadyExists, Snapshot, VersionConflict

if TYPE_CHECKING:
    from chalicelib.adapters.store_items import Item

__all__ = ["GSI_NAME", "TTL_ATTRIBUTE", "DynamoStore", "create_table"]


def _cancelled_by_condition(error: ClientError) -> bool:
    # A racing transaction on the same item wrote nothing either: both mean "re-read and retry".
    reasons = cast(list[dict[str, Any]], error.response.get("CancellationReasons") or [])
    return any(
        reason.get("Code") in ("ConditionalCheckFailed", "TransactionConflict")
        for reason in reasons
    )


class DynamoStore(ConnectionItems):
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

    def save_conversation(
        self, conversation: Conversation, turn: Turn | None = None
    ) -> Conversation:
        saved = dataclasses.replace(conversation, version=conversation.version + 1)
        condition = "#version = :expected"
        names = {"#version": "version"}
        values: Item = {":expected": n_value(conversation.version)}
        item = conversation_item(saved, saved.version)
        try:
            if turn is None:
                self.client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            else:
                self.client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": item,
                                "ConditionExpression": condition,
                                "ExpressionAttributeNames": names,
                                "ExpressionAttributeValues": values,
                            }
                        },
                        {"Put": {"TableName": self._table, "Item": turn_item(turn)}},
                    ]
                )
        except ClientError as error:
            code = error_code(error)
            if code == "ConditionalCheckFailedException" or (
                code == "TransactionCanceledException" and _cancelled_by_condition(error)
            ):
                raise VersionConflict(conversation.id) from error
            raise
        return saved

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
        return [decode_turn(str_attr(item, "body")) for item in items]

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
                turns.append(decode_turn(str_attr(item, "body")))
            elif sort_key.startswith("SUB#") and int_attr(item, TTL_ATTRIBUTE) > now_s:
                channel = sort_key.split("#", 2)[1]
                subscribers.setdefault(channel, []).append(str_attr(item, "connectionId"))
        if conversation is None:
            return None
        return Snapshot(conversation, turns, subscribers)
