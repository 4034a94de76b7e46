"""Write units as DynamoDB bills them: from the items a write touches, not from the request.

A write is billed by the size of the item, the larger of its size before and after the write
for an update or a replacing put, 1 unit per started KB, twice that in a transaction, at least
1 unit even when its condition fails (DynamoDB developer guide, "DynamoDB read and write
operations", "Capacity unit consumption for write operations", read 2026-12-07). A write that
changes what an index holds of the item also writes the index: "the total provisioned throughput
cost for a write consists of the sum of write capacity units consumed by writing to the table and
those consumed by updating the global secondary indexes" (AWS whitepaper "Comparing the Use of
Amazon DynamoDB and Apache HBase for NoSQL", "Global Secondary Index Considerations", read
2026-12-07); a write that changes no key or projected attribute of an index does not touch it.

So each write is measured by reading the items it names before and after it, with a client of
its own (not counted), and sizing them as the developer guide's "Item sizes and formats" does:
attribute names plus values (strings in UTF-8, numbers about one byte per two digits plus one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
# The table's indexes (store_items.create_table): what each projects of an item with its keys.
INDEX_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk")
INDEXES: dict[str, tuple[str, ...] | None] = {"by-owner": None, "owner-summaries": ("summary",)}


def value_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        return (len(str(raw).strip("-").replace(".", "").strip("0")) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(member).encode()) for member in raw)
    if kind == "M":
        return 3 + sum(len(name.encode()) + value_size(nested) for name, nested in raw.items())
    if kind == "L":
        return 3 + sum(value_size(nested) + 1 for nested in raw)
    return len(json.dumps(raw))


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def projection(item: dict[str, Any] | None, attributes: tuple[str, ...] | None) -> Any:
    """What an index holds of `item` (None: the item is not in it)."""
    if not item or "gsi1pk" not in item or "gsi1sk" not in item:
        return None
    if attributes is None:
        return item
    return {name: item[name] for name in (*INDEX_KEYS, *attributes) if name in item}


def _targets(operation: str, request: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    """(units factor, table, key) of every item the write request names."""
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        key = request.get("Key") or {n: request["Item"][n] for n in ("pk", "sk")}
        return [(1, request["TableName"], key)]
    found: list[tuple[int, str, dict[str, Any]]] = []
    if operation == "TransactWriteItems":
        for entry in request.get("TransactItems", []):
            ((_, part),) = entry.items()
            key = part.get("Key") or {n: part["Item"][n] for n in ("pk", "sk")}
            found.append((2, part["TableName"], key))
        return found
    for table, requests in request.get("RequestItems", {}).items():
        for entry in requests:
            ((_, part),) = entry.items()
            key = part.get("Key") or {n: part["Item"][n] for n in ("pk", "sk")}
            found.append((1, table, key))
    return found


@dataclass
class Units:
    table: int = 0
    indexes: int = 0

    @property
    def total(self) -> int:
        return self.table + self.indexes


class ItemUnits:
    """Hooks on the store's client; `measure()` returns the write units of one block."""

    def __init__(self, client: Any, reader: Any) -> None:
        self._reader = reader
        self._current: Units | None = None
        self._pending: list[tuple[int, str, dict[str, Any], dict[str, Any] | None]] = []
        client.meta.events.register("before-call.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def _read(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self._reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item if isinstance(item, dict) else None

    def _before(self, model: Any, params: Any = None, **_: Any) -> None:
        if self._current is None or model.name not in WRITES:
            return
        request = json.loads((params or {}).get("body") or b"{}")
        self._pending = [
            (factor, table, key, self._read(table, key))
            for factor, table, key in _targets(model.name, request)
        ]

    def _after(self, model: Any, **_: Any) -> None:
        if self._current is None or model.name not in WRITES:
            return
        for factor, table, key, before in self._pending:
            after = self._read(table, key)
            size = max(item_size(before), item_size(after))
            self._current.table += factor * max(1, math.ceil(size / 1024))
            for attributes in INDEXES.values():
                old, new = projection(before, attributes), projection(after, attributes)
                if old != new:
                    self._current.indexes += max(1, math.ceil(item_size(new or old) / 1024))
        self._pending = []

    @contextmanager
    def measure(self) -> Iterator[Units]:
        units = Units()
        self._current = units
        try:
            yield units
        finally:
            self._current = None
