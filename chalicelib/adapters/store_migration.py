"""The one-time migration to the current layout (store_items.py), from either older one: a META
that still carries its system prompt gets a SYSTEM item and its body without the prompt (the
state/fixed split), and a META that still carries the owner index keys (`gsi1pk`, `gsi1sk`) and
the `summary` gives them to a LIST item (issue 24: no warm then writes an index).

Each conversation moves in one transaction, the META put conditional on the version read, so a
save racing the migration wins and the migration re-reads (a save by this code leaves a META
it has not moved as it was, one by older code may put the prompt or the keys back, and they are
moved on the next attempt). The version is kept, since the conversation is the same: a save
prepared on the read before still passes its condition. Running it twice changes nothing.
Operators run it after the deploy (docs/operations.md, "Migrating to the state/fixed layout")
with credentials that may Scan the table: the functions' role may not. `--reverse` gives older
code the layout from before the split back (the prompt in the body, the keys and the summary on
META, no LIST item, the conversation's savings counters added to the owner's SAVINGS item);
both older releases read that layout.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import ClientError

from chalicelib.adapters.store_items import (
    COUNTERS,
    META,
    conversation_key,
    decode_conversation,
    encode_summary,
    id_of,
    is_legacy,
    list_key,
    n_value,
    owner_index_keys,
    s_value,
    savings_key,
    state_of,
    system_key,
)
from chalicelib.adapters.store_table import default_client, error_code
from chalicelib.domain.conversation import summary_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from chalicelib.adapters.store_items import Item

_ATTEMPTS = 5
# What the LIST item takes over from a META that carried the owner index keys.
_LISTED = ("owner", "gsi1pk", "gsi1sk")


@dataclass(frozen=True)
class Migrated:
    seen: int  # conversation META items scanned
    moved: int  # of those, moved to the new layout by this run


def migrate(client: DynamoDBClient, table: str, reverse: bool = False) -> Migrated:
    """Move every legacy conversation (every moved one back, `reverse`); safe to run again and
    beside live traffic."""
    seen = moved = 0
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk = :meta AND begins_with(pk, :conv)",
        "ExpressionAttributeValues": {":meta": s_value(META), ":conv": s_value("CONV#")},
    }
    while True:
        page = client.scan(**request)
        for item in page.get("Items", []):
            seen += 1
            moved += _move(client, table, item, reverse)
        if "LastEvaluatedKey" not in page:
            return Migrated(seen, moved)
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _move(client: DynamoDBClient, table: str, item: Item, reverse: bool) -> bool:
    """One conversation moved, re-read after each save that got there first."""
    conversation_id = id_of(item)
    for _ in range(_ATTEMPTS):
        state = state_of(item)
        if not _behind(item, state, reverse):
            return False
        writes = _back(client, table, item, state) if reverse else _writes(table, item, state)
        try:
            client.transact_write_items(TransactItems=writes)
            return True
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
        fresh = client.get_item(
            TableName=table, Key=conversation_key(conversation_id), ConsistentRead=True
        ).get("Item")
        if fresh is None:
            return False
        item = fresh
    raise RuntimeError(f"conversation {conversation_id} kept changing: run the migration again")


def _behind(item: Item, state: dict[str, Any], reverse: bool) -> bool:
    """Whether the META still has a step to make: forward, its prompt or its index keys to move
    out; reverse, its prompt to take back."""
    if reverse:
        return not is_legacy(state)
    return is_legacy(state) or "gsi1pk" in item


def _meta_put(table: str, item: Item, state: dict[str, Any]) -> dict[str, Any]:
    """META with `state` as its body, if its version is still the one read (and kept)."""
    return {
        "Put": {
            "TableName": table,
            "Item": {**item, "body": s_value(msgspec.json.encode(state).decode())},
            "ConditionExpression": "#version = :read",
            "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": {":read": n_value(int(item["version"]["N"]))},
        }
    }


def _writes(table: str, item: Item, state: dict[str, Any]) -> list[Any]:
    """The prompt to its SYSTEM item, the index keys (and the summary only the older listing
    read) to a LIST item: the state item then holds nothing a warm does not change."""
    conversation_id = id_of(item)
    writes: list[Any] = []
    if is_legacy(state):
        prompt = {**system_key(conversation_id), "system": s_value(state.pop("system"))}
        writes.append({"Put": {"TableName": table, "Item": prompt}})
    if "gsi1pk" in item:
        listed = {**list_key(conversation_id), **{k: item[k] for k in _LISTED if k in item}}
        writes.append({"Put": {"TableName": table, "Item": listed}})
    meta = {k: v for k, v in item.items() if k not in ("gsi1pk", "gsi1sk", "summary")}
    return [_meta_put(table, meta, state), *writes]


def _back(client: DynamoDBClient, table: str, item: Item, state: dict[str, Any]) -> list[Any]:
    """META as the code from before the split wrote it: the prompt in the body, the index keys
    and the summary on it, no LIST item, and its savings counters back in the owner's item."""
    conversation_id = id_of(item)
    prompt = client.get_item(TableName=table, Key=system_key(conversation_id), ConsistentRead=True)[
        "Item"
    ]
    full = {**state, "system": prompt["system"]["S"]}
    conversation = decode_conversation(full, int(item["version"]["N"]), None)
    gsi1pk, gsi1sk = owner_index_keys(conversation)
    meta = {k: v for k, v in item.items() if k not in COUNTERS}
    meta.update(
        gsi1pk=s_value(gsi1pk),
        gsi1sk=s_value(gsi1sk),
        summary=s_value(encode_summary(summary_of(conversation))),
    )
    writes = [
        _meta_put(table, meta, full),
        {"Delete": {"TableName": table, "Key": list_key(conversation_id)}},
    ]
    counted = {name: item[name] for name in COUNTERS if name in item}
    if counted:
        names = {f"#{name}": name for name in counted}
        values = {f":{name}": value for name, value in counted.items()}
        adds = ", ".join(f"#{name} :{name}" for name in counted)
        update = {
            "TableName": table,
            "Key": savings_key(conversation.owner),
            "UpdateExpression": f"ADD {adds}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        writes.append({"Update": update})
    return writes


def main(argv: list[str]) -> int:
    reverse = "--reverse" in argv
    names = [arg for arg in argv if arg != "--reverse"]
    if len(names) != 1:
        print(
            "usage: python -m chalicelib.adapters.store_migration [--reverse] TABLE_NAME",
            file=sys.stderr,
        )
        return 2
    result = migrate(default_client(), names[0], reverse)
    layout = "the layout from before the split" if reverse else "the state/fixed layout"
    print(f"{result.seen} conversations seen, {result.moved} moved to {layout}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
