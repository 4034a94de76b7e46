"""The single table's layout: keys, item shapes, the body codec, and the table itself.

Key layout (pk / sk):
    CONV#<id>    META                       conversation: version, owner, gsi1pk, gsi1sk, body
    CONV#<id>    TURN#<index:06d>           turn: body, partialText (the reply so far, while generating)
    CONV#<id>    SUB#<channel>#<connId>     subscription: connectionId, expiresAt
    CONN#<id>    META                       connection: owner, connectedAt, expiresAt
    CONN#<id>    SUB#<convId>#<channel>     mirror of a subscription, so a disconnect finds them all
    USER#<owner> WARMING                    conversations: string set of those holding a warming slot
    USER#<owner> COUNTS                     conversations: how many of the owner's are open (the cap)
    USER#<owner> SPEND#<yyyy-mm-dd>         microUsd: the owner's spend that UTC day; expiresAt
    USER#<owner> SAVINGS                    spentUsd, savedUsd, warms, rescues: counters (ADD)
    HISTORY#<id> <seq:010d>                 a warm or turn of the conversation's history; expiresAt
                                            (store_history.py)
GSI `by-owner`: gsi1pk = OWNER#<owner>, gsi1sk = <created_at:013d>#<id>, every attribute.
GSI `owner-summaries`: the same keys, projecting only `summary` (the list view). TTL: expiresAt.

`body` is the msgspec JSON of the dataclass. A conversation's version lives only in the `version`
attribute, which the conditional writes compare against; `writeId` names the write that stored
the item, so a retried write can recognise its own first attempt.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import msgspec

from chalicelib.domain.budget import DaySpend
from chalicelib.domain.conversation import (
    Conversation,
    ConversationSummary,
    PageKey,
    Turn,
    summary_of,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]

GSI_NAME = "by-owner"
# The list view's index: keys plus the small `summary` attribute, never the body.
SUMMARY_GSI = "owner-summaries"
TTL_ATTRIBUTE = "expiresAt"
META = "META"


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
    return {"pk": s_value(f"CONV#{conversation_id}"), "sk": s_value(META)}


def encode_summary(summary: ConversationSummary) -> str:
    return msgspec.json.encode(summary).decode()


def decode_summary(body: str) -> ConversationSummary:
    return msgspec.json.decode(body, type=ConversationSummary)


def page_key_of(gsi1sk: str) -> PageKey:
    created_at, _, conversation_id = gsi1sk.partition("#")
    return int(created_at), conversation_id


def summary_start_key(owner: str, after: PageKey) -> Item:
    """The index's ExclusiveStartKey for a page after `after`: rebuilt from the owner (never from
    the client), so a cursor cannot reach into another owner's list."""
    created_at, conversation_id = after
    return {
        **conversation_key(conversation_id),
        "gsi1pk": s_value(f"OWNER#{owner}"),
        "gsi1sk": s_value(f"{created_at:013d}#{conversation_id}"),
    }


def user_key(owner: str, sort_key: str) -> Item:
    return {"pk": s_value(f"USER#{owner}"), "sk": s_value(sort_key)}


def turn_key(conversation_id: str, index: int) -> Item:
    return {"pk": s_value(f"CONV#{conversation_id}"), "sk": s_value(f"TURN#{index:06d}")}


def connection_key(connection_id: str) -> Item:
    return {"pk": s_value(f"CONN#{connection_id}"), "sk": s_value(META)}


def subscription_key(conversation_id: str, channel: str, connection_id: str) -> Item:
    return {
        "pk": s_value(f"CONV#{conversation_id}"),
        "sk": s_value(f"SUB#{channel}#{connection_id}"),
    }


def subscription_mirror_key(connection_id: str, conversation_id: str, channel: str) -> Item:
    return {
        "pk": s_value(f"CONN#{connection_id}"),
        "sk": s_value(f"SUB#{conversation_id}#{channel}"),
    }


def warming_slots_key(owner: str) -> Item:
    return {"pk": s_value(f"USER#{owner}"), "sk": s_value("WARMING")}


def savings_key(owner: str) -> Item:
    return user_key(owner, "SAVINGS")


def spend_update(table: str, owner: str, spend: DaySpend) -> dict[str, Any]:
    """ADD to the owner's counter for the day: atomic, so concurrent warms and turns of one user
    never lose a cost (an `UpdateItem`, or one item of a transaction)."""
    return {
        "TableName": table,
        "Key": user_key(owner, f"SPEND#{spend.day}"),
        # `committedMicroUsd` is spent plus reserved (budget.py): every cost adds to both.
        "UpdateExpression": "ADD microUsd :cost, committedMicroUsd :cost SET #ttl = :expires",
        "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
        "ExpressionAttributeValues": {
            ":cost": n_value(spend.micro_usd),
            ":expires": n_value(spend.expires_at_s),
        },
    }


def owner_index_keys(conversation: Conversation) -> tuple[str, str]:
    return f"OWNER#{conversation.owner}", f"{conversation.created_at:013d}#{conversation.id}"


def conversation_item(conversation: Conversation, version: int) -> Item:
    gsi1pk, gsi1sk = owner_index_keys(conversation)
    return {
        **conversation_key(conversation.id),
        "version": n_value(version),
        "owner": s_value(conversation.owner),
        "gsi1pk": s_value(gsi1pk),
        "gsi1sk": s_value(gsi1sk),
        "body": s_value(encode_conversation(conversation)),
        "summary": s_value(encode_summary(summary_of(conversation))),
    }


PARTIAL_TEXT = "partialText"


def turn_from_item(item: Item) -> Turn:
    """A turn; one still generating shows the reply so far (checkpointed while it streams)."""
    turn = decode_turn(str_attr(item, "body"))
    if turn.status == "generating" and PARTIAL_TEXT in item:
        turn = dataclasses.replace(turn, assistant_text=str_attr(item, PARTIAL_TEXT))
    return turn


def turn_item(turn: Turn) -> Item:
    return {**turn_key(turn.conversation_id, turn.index), "body": s_value(encode_turn(turn))}


def s_value(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def n_value(value: int) -> AttributeValueTypeDef:
    return {"N": str(value)}


def usd_value(value: float) -> AttributeValueTypeDef:
    """Dollars as DynamoDB's exact decimal, to the 8 decimals every cost is rounded to: the
    counter's sums are exact, and equal the conversations' own sums. Trailing zeros are cut
    ("0", not "0.00000000": moto keeps that as "0E-8" and then fails to add to it)."""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return {"N": text if text not in ("", "-0") else "0"}


def str_attr(item: Item, name: str) -> str:
    return item[name]["S"]


def int_attr(item: Item, name: str) -> int:
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
            },
            {
                "IndexName": SUMMARY_GSI,
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["summary"]},
            },
        ],
    )
    # UpdateTimeToLive is refused while the table is still being created.
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
