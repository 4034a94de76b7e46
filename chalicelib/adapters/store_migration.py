"""The one-time migration to the state/fixed layout (store_items.py): every conversation whose META
still carries its system prompt gets a SYSTEM item, and its META the body without the prompt.

Each conversation moves in one transaction: the SYSTEM put and the META put conditional on the
version read, so a save racing the migration wins and the migration re-reads (a save by this
code has moved the prompt itself; one by code from before the split left it legacy again, and it
is moved on the next attempt). The version is kept, since the conversation is the same: a save
prepared on the legacy read still passes its condition and, knowing the read was legacy, puts
the SYSTEM item too. Running it twice changes nothing. Operators run it after the deploy (docs/
operations.md, "Migrating to the state/fixed layout") with credentials that may Scan the table:
the functions' role may not. `--reverse` puts each prompt back into its META body (the SYSTEM item
stays, unread by older code), for a rollback to a release from before the split.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import ClientError

from chalicelib.adapters.store_items import (
    META,
    conversation_key,
    is_legacy,
    n_value,
    s_value,
    state_of,
    system_key,
)
from chalicelib.adapters.store_table import default_client, error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from chalicelib.adapters.store_items import Item

_ATTEMPTS = 5


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
    conversation_id = item["pk"]["S"].removeprefix("CONV#")
    for _ in range(_ATTEMPTS):
        state = state_of(item)
        if is_legacy(state) == reverse:
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
    conversation_id = item["pk"]["S"].removeprefix("CONV#")
    system = state.pop("system")
    prompt = {**system_key(conversation_id), "system": s_value(system)}
    return [_meta_put(table, item, state), {"Put": {"TableName": table, "Item": prompt}}]


def _back(client: DynamoDBClient, table: str, item: Item, state: dict[str, Any]) -> list[Any]:
    conversation_id = item["pk"]["S"].removeprefix("CONV#")
    prompt = client.get_item(TableName=table, Key=system_key(conversation_id), ConsistentRead=True)[
        "Item"
    ]
    return [_meta_put(table, item, {**state, "system": prompt["system"]["S"]})]


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
