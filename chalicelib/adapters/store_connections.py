"""WebSocket connections, their subscriptions, and the rate-limit counters, in the one table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from chalicelib.adapters.store_items import (
    TTL_ATTRIBUTE,
    connection_key,
    int_attr,
    n_value,
    s_value,
    str_attr,
    subscription_key,
    subscription_mirror_key,
)
from chalicelib.adapters.store_table import Table, error_code
from chalicelib.ports import Channel, Connection

if TYPE_CHECKING:
    from chalicelib.adapters.store_items import Item


class ConnectionItems(Table):
    def put_connection(self, connection: Connection) -> None:
        self.client.put_item(
            TableName=self._table,
            Item={
                **connection_key(connection.connection_id),
                "owner": s_value(connection.owner),
                "connectedAt": n_value(connection.connected_at),
                TTL_ATTRIBUTE: n_value(connection.expires_at),
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
            owner=str_attr(item, "owner"),
            connected_at=int_attr(item, "connectedAt"),
            expires_at=int_attr(item, TTL_ATTRIBUTE),
        )

    def delete_connection(self, connection_id: str) -> None:
        items = self._query(
            {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": s_value(f"CONN#{connection_id}")},
                "ConsistentRead": True,
            }
        )
        keys: list[Item] = [connection_key(connection_id)]
        for item in items:
            if not str_attr(item, "sk").startswith("SUB#"):
                continue
            conversation_id = str_attr(item, "conversationId")
            channel = str_attr(item, "channel")
            keys.append(subscription_mirror_key(connection_id, conversation_id, channel))
            keys.append(subscription_key(conversation_id, channel, connection_id))
        self._batch_write([{"DeleteRequest": {"Key": key}} for key in keys])

    def subscribe(
        self, connection_id: str, conversation_id: str, channel: Channel, expires_at: int
    ) -> None:
        subscription: Item = {
            **subscription_key(conversation_id, channel, connection_id),
            "connectionId": s_value(connection_id),
            TTL_ATTRIBUTE: n_value(expires_at),
        }
        mirror: Item = {
            **subscription_mirror_key(connection_id, conversation_id, channel),
            "conversationId": s_value(conversation_id),
            "channel": s_value(channel),
            TTL_ATTRIBUTE: n_value(expires_at),
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
                    ":pk": s_value(f"CONV#{conversation_id}"),
                    ":prefix": s_value(f"SUB#{channel}#"),
                },
                # Strongly consistent: a subscription acknowledged a moment ago is seen, and an
                # unsubscribe acknowledged a moment ago is no longer served.
                "ConsistentRead": True,
            }
        )
        return [
            str_attr(item, "connectionId")
            for item in items
            if int_attr(item, TTL_ATTRIBUTE) > now_s
        ]

    # --- rate limits ------------------------------------------------------------------------

    def consume(self, bucket: str, window: int, limit: int, expires_at: int) -> bool:
        try:
            self.client.update_item(
                TableName=self._table,
                Key={"pk": s_value(f"RATE#{bucket}"), "sk": s_value(str(window))},
                UpdateExpression="ADD hits :one SET #ttl = :expires",
                ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":one": n_value(1),
                    ":limit": n_value(limit),
                    ":expires": n_value(expires_at),
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True
