"""A conversation's history items (domain/history.py) in the single table.

    HISTORY#<conversation id>   <seq:010d>   body (msgspec JSON of the entry), expiresAt

Their own partition, not the conversation's: the warm path reads the whole `CONV#<id>` partition in
one query (`load`), and up to MAX_ENTRIES history items there would make every warm read them too.
The entry is put, and the one MAX_ENTRIES older deleted, in the transaction that saves the change it
records (`history_writes`), so the history holds exactly what the conversation recorded. DynamoDB
TTL deletes an expired item only eventually ("Working with Time to Live", DynamoDB developer guide:
typically within a few days), so readers skip expired items themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from chalicelib.adapters.store_items import TTL_ATTRIBUTE, int_attr, n_value, s_value, str_attr
from chalicelib.adapters.store_table import Table
from chalicelib.domain.history import MAX_ENTRIES, HistoryEntry
from chalicelib.ports import HistoryPage

if TYPE_CHECKING:
    from chalicelib.adapters.store_items import Item


def history_key(conversation_id: str, seq: int) -> Item:
    return {"pk": s_value(f"HISTORY#{conversation_id}"), "sk": s_value(f"{seq:010d}")}


def encode_entry(entry: HistoryEntry) -> str:
    return msgspec.json.encode(entry).decode()


def history_writes(table: str, entry: HistoryEntry) -> list[dict[str, Any]]:
    """The transaction items that record `entry`: its put, and the delete of the entry it pushes
    out of the bounded history (a delete of a missing item is no failure)."""
    item = {
        **history_key(entry.conversation_id, entry.seq),
        "body": s_value(encode_entry(entry)),
        TTL_ATTRIBUTE: n_value(entry.expires_at_s),
    }
    writes: list[dict[str, Any]] = [{"Put": {"TableName": table, "Item": item}}]
    dropped = entry.seq - MAX_ENTRIES
    if dropped >= 1:
        key = history_key(entry.conversation_id, dropped)
        writes.append({"Delete": {"TableName": table, "Key": key}})
    return writes


class HistoryItems(Table):
    def history(
        self, conversation_id: str, limit: int, before: int | None, now_s: int
    ) -> HistoryPage:
        values: dict[str, Any] = {":pk": s_value(f"HISTORY#{conversation_id}")}
        condition = "pk = :pk"
        if before is not None:
            condition += " AND sk < :before"
            values[":before"] = s_value(f"{before:010d}")
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            # One more than asked: whether an older page exists, without an empty last page.
            "Limit": limit + 1,
        }
        entries: list[HistoryEntry] = []
        for item in self._query(request):  # type: ignore[arg-type]
            if int_attr(item, TTL_ATTRIBUTE) <= now_s:
                continue
            entries.append(msgspec.json.decode(str_attr(item, "body"), type=HistoryEntry))
            if len(entries) > limit:
                break
        page = entries[:limit]
        more = len(entries) > limit
        return HistoryPage(page, page[-1].seq if more and page else None)
