"""The `Store` port over one DynamoDB table.

Key layout (pk / sk):
    CONV#<id>    META                       conversation: version, owner, gsi1pk, gsi1sk, body
    CONV#<id>    TURN#<index:06d>           turn: body
    CONV#<id>    SUB#<channel>#<connId>     subscription: connectionId, expiresAt
    CONN#<id>    META                       connection: owner, connectedAt, expiresAt
    CONN#<id>    SUB#<convId>#<channel>     mirror of a subscription, so a disconnect finds them all
GSI `by-owner`: gsi1pk = OWNER#<owner>, gsi1sk = <created_at:013d>#<id>. TTL attribute: expiresAt.

`body` is the msgspec JSON of the dataclass. A conversation's version lives only in the `version`
attribute, which the conditional writes compare against.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import msgspec
from botocore.exceptions import ClientError

from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.lazy import Lazy
from chalicelib.ports import AlreadyExists, Channel, Connection, Snapshot, VersionConflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
        WriteRequestTypeDef,
    )

    Item = dict[str, AttributeValueTypeDef]

GSI_NAME = "by-owner"
TTL_ATTRIBUTE = "expiresAt"
META = "META"
# BatchWriteItem accepts at most 25 requests per call.
_BATCH = 25
_MAX_UNPROCESSED_ROUNDS = 8


# --- codec ---------------------------------------------------------------------------------


def encode_conversation(conversation: Conversation) -> str:
    data = msgspec.to_builtins(conversation)
    del data["version"]
    return msgspec.json.encode(data).decode()


def decode_conversation(body: str, version: int) -> Conversation:
    return dataclasses.replace(msgspec.json.decode(body, type=Conversation), version=version)


def encode_turn(turn: Turn) -> str:
    return msgspec.json.encode(turn).decode()


def decode_turn(body: str) -> Turn:
    return msgspec.json.decode(body, type=Turn)


def conversation_key(conversation_id: str) -> Item:
    return {"pk": _s(f"CONV#{conversation_id}"), "sk": _s(META)}


def turn_key(conversation_id: str, index: int) -> Item:
    return {"pk": _s(f"CONV#{conversation_id}"), "sk": _s(f"TURN#{index:06d}")}


def connection_key(connection_id: str) -> Item:
    return {"pk": _s(f"CONN#{connection_id}"), "sk": _s(META)}


def subscription_key(conversation_id: str, channel: str, connection_id: str) -> Item:
    return {"pk": _s(f"CONV#{conversation_id}"), "sk": _s(f"SUB#{channel}#{connection_id}")}


def subscription_mirror_key(connection_id: str, conversation_id: str, channel: str) -> Item:
    return {"pk": _s(f"CONN#{connection_id}"), "sk": _s(f"SUB#{conversation_id}#{channel}")}


def owner_index_keys(conversation: Conversation) -> tuple[str, str]:
    return f"OWNER#{conversation.owner}", f"{conversation.created_at:013d}#{conversation.id}"


def conversation_item(conversation: Conversation, version: int) -> Item:
    gsi1pk, gsi1sk = owner_index_keys(conversation)
    return {
        **conversation_key(conversation.id),
        "version": _n(version),
        "owner": _s(conversation.owner),
        "gsi1pk": _s(gsi1pk),
        "gsi1sk": _s(gsi1sk),
        "body": _s(encode_conversation(conversation)),
    }


def turn_item(turn: Turn) -> Item:
    return {**turn_key(turn.conversation_id, turn.index), "body": _s(encode_turn(turn))}


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _n(value: int) -> AttributeValueTypeDef:
    return {"N": str(value)}


def _str(item: Item, name: str) -> str:
    return item[name]["S"]


def _int(item: Item, name: str) -> int:
    return int(item[name]["N"])


# --- table ---------------------------------------------------------------------------------


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the single table (on-demand, GSI `by-owner`, TTL on `expiresAt`) and wait for it."""
    client.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": GSI_NAME,
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    # UpdateTimeToLive is refused while the table is still being created.
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


def _default_client() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb")


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _cancelled_by_condition(error: ClientError) -> bool:
    # A racing transaction on the same item wrote nothing either: both mean "re-read and retry".
    reasons = cast(list[dict[str, Any]], error.response.get("CancellationReasons") or [])
    return any(
        reason.get("Code") in ("ConditionalCheckFailed", "TransactionConflict")
        for reason in reasons
    )


class DynamoStore:
    def __init__(
        self,
        table_name: str,
        client_factory: Callable[[], DynamoDBClient] = _default_client,
    ) -> None:
        self._table = table_name
        self._client = Lazy(client_factory)

    @property
    def client(self) -> DynamoDBClient:
        return self._client()

    # --- conversations ---------------------------------------------------------------------

    def create_conversation(self, conversation: Conversation) -> None:
        try:
            self.client.put_item(
                TableName=self._table,
                Item=conversation_item(conversation, conversation.version),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                raise AlreadyExists(conversation.id) from error
            raise

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        response = self.client.get_item(
            TableName=self._table, Key=conversation_key(conversation_id), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        return decode_conversation(_str(item, "body"), _int(item, "version"))

    def list_conversations(self, owner: str) -> list[Conversation]:
        items = self._query(
            {
                "TableName": self._table,
                "IndexName": GSI_NAME,
                "KeyConditionExpression": "gsi1pk = :pk",
                "ExpressionAttributeValues": {":pk": _s(f"OWNER#{owner}")},
                "ScanIndexForward": False,
            }
        )
        return [decode_conversation(_str(item, "body"), _int(item, "version")) for item in items]

    def save_conversation(
        self, conversation: Conversation, turn: Turn | None = None
    ) -> Conversation:
        saved = dataclasses.replace(conversation, version=conversation.version + 1)
        condition = "#version = :expected"
        names = {"#version": "version"}
        values: Item = {":expected": _n(conversation.version)}
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
            code = _error_code(error)
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
                    ":pk": _s(f"CONV#{conversation_id}"),
                    ":prefix": _s("TURN#"),
                },
                "ConsistentRead": True,
            }
        )
        return [decode_turn(_str(item, "body")) for item in items]

    # --- connections and subscriptions -----------------------------------------------------

    def put_connection(self, connection: Connection) -> None:
        self.client.put_item(
            TableName=self._table,
            Item={
                **connection_key(connection.connection_id),
                "owner": _s(connection.owner),
                "connectedAt": _n(connection.connected_at),
                TTL_ATTRIBUTE: _n(connection.expires_at),
            },
        )

    def get_connection(self, connection_id: str) -> Connection | None:
        response = self.client.get_item(
            TableName=self._table, Key=connection_key(connection_id), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        return Connection(
            connection_id=connection_id,
            owner=_str(item, "owner"),
            connected_at=_int(item, "connectedAt"),
            expires_at=_int(item, TTL_ATTRIBUTE),
        )

    def delete_connection(self, connection_id: str) -> None:
        items = self._query(
            {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": _s(f"CONN#{connection_id}")},
                "ConsistentRead": True,
            }
        )
        keys: list[Item] = [connection_key(connection_id)]
        for item in items:
            if not _str(item, "sk").startswith("SUB#"):
                continue
            conversation_id = _str(item, "conversationId")
            channel = _str(item, "channel")
            keys.append(subscription_mirror_key(connection_id, conversation_id, channel))
            keys.append(subscription_key(conversation_id, channel, connection_id))
        self._batch_write([{"DeleteRequest": {"Key": key}} for key in keys])

    def subscribe(
        self, connection_id: str, conversation_id: str, channel: Channel, expires_at: int
    ) -> None:
        subscription: Item = {
            **subscription_key(conversation_id, channel, connection_id),
            "connectionId": _s(connection_id),
            TTL_ATTRIBUTE: _n(expires_at),
        }
        mirror: Item = {
            **subscription_mirror_key(connection_id, conversation_id, channel),
            "conversationId": _s(conversation_id),
            "channel": _s(channel),
            TTL_ATTRIBUTE: _n(expires_at),
        }
        self._batch_write(
            [{"PutRequest": {"Item": subscription}}, {"PutRequest": {"Item": mirror}}]
        )

    def unsubscribe(self, connection_id: str, conversation_id: str, channel: Channel) -> None:
        self._batch_write(
            [
                {
                    "DeleteRequest": {
                        "Key": subscription_key(conversation_id, channel, connection_id)
                    }
                },
                {
                    "DeleteRequest": {
                        "Key": subscription_mirror_key(connection_id, conversation_id, channel)
                    }
                },
            ]
        )

    def subscribers(self, conversation_id: str, channel: Channel, now_s: int) -> list[str]:
        # TTL deletion lags expiry by up to days: readers must skip expired items themselves.
        items = self._query(
            {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "ExpressionAttributeValues": {
                    ":pk": _s(f"CONV#{conversation_id}"),
                    ":prefix": _s(f"SUB#{channel}#"),
                },
            }
        )
        return [_str(item, "connectionId") for item in items if _int(item, TTL_ATTRIBUTE) > now_s]

    def load(self, conversation_id: str, now_s: int) -> Snapshot | None:
        items = self._query(
            {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": _s(f"CONV#{conversation_id}")},
                "ConsistentRead": True,
            }
        )
        conversation: Conversation | None = None
        turns: list[Turn] = []
        subscribers: dict[str, list[str]] = {"surface": [], "chat": []}
        for item in items:
            sort_key = _str(item, "sk")
            if sort_key == META:
                conversation = decode_conversation(_str(item, "body"), _int(item, "version"))
            elif sort_key.startswith("TURN#"):
                turns.append(decode_turn(_str(item, "body")))
            elif sort_key.startswith("SUB#") and _int(item, TTL_ATTRIBUTE) > now_s:
                channel = sort_key.split("#", 2)[1]
                subscribers.setdefault(channel, []).append(_str(item, "connectionId"))
        if conversation is None:
            return None
        return Snapshot(conversation, turns, subscribers)

    # --- rate limits ------------------------------------------------------------------------

    def consume(self, bucket: str, window: int, limit: int, expires_at: int) -> bool:
        try:
            self.client.update_item(
                TableName=self._table,
                Key={"pk": _s(f"RATE#{bucket}"), "sk": _s(str(window))},
                UpdateExpression="ADD hits :one SET #ttl = :expires",
                ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":one": _n(1),
                    ":limit": _n(limit),
                    ":expires": _n(expires_at),
                },
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- plumbing --------------------------------------------------------------------------

    def _query(self, request: QueryInputTypeDef) -> Iterator[Item]:
        while True:
            page = self.client.query(**request)
            yield from page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request = {**request, "ExclusiveStartKey": last}

    def _batch_write(self, requests: Sequence[WriteRequestTypeDef]) -> None:
        for start in range(0, len(requests), _BATCH):
            pending = list(requests[start : start + _BATCH])
            for attempt in range(_MAX_UNPROCESSED_ROUNDS):
                if attempt:
                    # Unprocessed items mean throttling: back off before resubmitting them.
                    time.sleep(0.05 * 2**attempt)
                response = self.client.batch_write_item(RequestItems={self._table: pending})
                unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
                if not unprocessed:
                    break
                pending = cast("list[WriteRequestTypeDef]", unprocessed)
            else:
                raise RuntimeError(f"batch write left {len(pending)} items unprocessed")
