"""The single table's layout: keys, item shapes, the body codec, and the table itself.

Key layout (pk / sk):
    CONV#<id>    LIST                       owner, gsi1pk, gsi1sk: the owner index entry, put once
    CONV#<id>    META                       the conversation's state: version, owner, writeId, body
                                            (everything but the system prompt, id and owner, its
                                            defaults left out), spentUsd, savedUsd, warms, rescues
    CONV#<id>    SYSTEM                     system: the system prompt, put once with the conversation
    CONV#<id>    TURN#<index:06d>           turn: body, partialText (the reply so far, while generating)
    CONV#<id>    SUB#<channel>#<connId>     subscription: connectionId, expiresAt
    CONN#<id>    META                       connection: owner, connectedAt, expiresAt
    CONN#<id>    SUB#<convId>#<channel>     mirror of a subscription, so a disconnect finds them all
    USER#<owner> WARMING                    conversations: string set of those holding a warming slot
    USER#<owner> COUNTS                     conversations: how many of the owner's are open (the cap)
    USER#<owner> SPEND#<yyyy-mm-dd>         microUsd, committedMicroUsd: turns' spend that UTC day
    USER#<owner> SPEND#<yyyy-mm-dd>#<convId>  microUsd, lastSeq: that conversation's warms that day
    USER#<owner> SAVINGS                    spentUsd, savedUsd, warms, rescues: the totals from
                                            before each conversation kept its own (read only)
    HISTORY#<id> <seq:010d>                 a warm or turn of the conversation's history; expiresAt
                                            (store_history.py)
GSI `by-owner` (every attribute) and `owner-summaries` (`summary`): gsi1pk = OWNER#<owner>,
gsi1sk = <created_at:013d>#<id>, on LIST items (and on a META written before issue 24 until the
migration moves them). TTL: expiresAt.

`body` is the msgspec JSON of the dataclass. A conversation's version lives only in the `version`
attribute, which the conditional writes compare against; `writeId` names the write that stored
the item, so a retried write can recognise its own first attempt.

What a warm, a toggle or a turn changes is in the small META item; what never changes once
written (the system prompt, up to 200 KB, and the turns once ended) in items of their own, because
DynamoDB bills a write by the whole item's size (on-demand pricing page, "Key terms", read
2026-12-07): a save of META costs the same whatever the prompt. META carries no index key either:
a write that changes an indexed item writes the index too (docs/architecture.md, "A warm's
writes"). A META written before the split still carries `system` in its body (`is_legacy`): it is
read as it is, and the next save or the one-time migration (`store_migration.py`) moves the prompt
to its SYSTEM item. Sort keys order LIST < META < SUB#... < SYSTEM < TURN#..., so one range reads
the state and the subscribers, another the prompt's fixed part (`FIXED_FROM`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import msgspec

from chalicelib.adapters.store_compact import compact, defaults_of
from chalicelib.domain.budget import DaySpend
from chalicelib.domain.conversation import (
    Conversation,
    ConversationSummary,
    PageKey,
    Turn,
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
LIST = "LIST"
SYSTEM = "SYSTEM"
# Every sort key at or after this one in a CONV# partition is fixed once written (or a turn still
# generating, which its status says); every one before it is state or a subscription.
FIXED_FROM = SYSTEM


_CONVERSATION_DEFAULTS = defaults_of(Conversation)


def encode_conversation(conversation: Conversation) -> str:
    """The state's body: the conversation without its version, id and owner (attributes of
    their own), without its system prompt (the SYSTEM item), and without the fields still at
    their default."""
    data = msgspec.to_builtins(conversation)
    # The id is the item's key and the owner an attribute of its own (`state_of`).
    del data["version"], data["system"], data["id"], data["owner"]
    return msgspec.json.encode(compact(data, _CONVERSATION_DEFAULTS)).decode()


def state_of(item: Item) -> dict[str, Any]:
    """The state's body, with the id and the owner the item holds outside it (a body written
    before issue 24 holds them too)."""
    state: dict[str, Any] = msgspec.json.decode(str_attr(item, "body"))
    state.setdefault("id", id_of(item))
    state.setdefault("owner", str_attr(item, "owner"))
    return state


def is_legacy(state: dict[str, Any]) -> bool:
    """A META written before the state/fixed split: its body still holds the system prompt."""
    return "system" in state


def decode_conversation(state: dict[str, Any], version: int, system: str | None) -> Conversation:
    """The conversation from its state body and its system prompt (a legacy body has its own)."""
    data = state if is_legacy(state) else {**state, "system": system}
    return dataclasses.replace(msgspec.convert(data, type=Conversation), version=version)


def encode_turn(turn: Turn) -> str:
    return msgspec.json.encode(turn).decode()


def decode_turn(body: str) -> Turn:
    return msgspec.json.decode(body, type=Turn)


def conversation_key(conversation_id: str) -> Item:
    return {"pk": s_value(f"CONV#{conversation_id}"), "sk": s_value(META)}


def system_key(conversation_id: str) -> Item:
    return {"pk": s_value(f"CONV#{conversation_id}"), "sk": s_value(SYSTEM)}


def system_item(conversation: Conversation) -> Item:
    return {**system_key(conversation.id), "system": s_value(conversation.system)}


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
        **list_key(conversation_id),
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
    """The state item as created; later writes update it (`store_writes.py`), never replace it,
    because it also holds the conversation's savings counters (`COUNTERS`)."""
    return {
        **conversation_key(conversation.id),
        "version": n_value(version),
        "owner": s_value(conversation.owner),
        "body": s_value(encode_conversation(conversation)),
    }


def id_of(item: Item) -> str:
    """The conversation id of any item of its `CONV#` partition."""
    return str_attr(item, "pk").removeprefix("CONV#")


def list_key(conversation_id: str) -> Item:
    return {"pk": s_value(f"CONV#{conversation_id}"), "sk": s_value(LIST)}


def list_item(conversation: Conversation) -> Item:
    """The conversation's entry in the owner indexes: keys only, written once, so no later write
    of the conversation touches an index."""
    gsi1pk, gsi1sk = owner_index_keys(conversation)
    return {
        **list_key(conversation.id),
        "owner": s_value(conversation.owner),
        "gsi1pk": s_value(gsi1pk),
        "gsi1sk": s_value(gsi1sk),
    }


# The savings counters each state item adds to (`ADD`), and the Tally field each one counts.
COUNTERS = {
    "spentUsd": "spent_usd",
    "savedUsd": "saved_usd",
    "warms": "warms",
    "rescues": "rescues",
}


def warm_spend_key(owner: str, day: str, conversation_id: str) -> Item:
    return user_key(owner, f"SPEND#{day}#{conversation_id}")


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
