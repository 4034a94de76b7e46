"""A conversation's history items (domain/history.py) in the single table.

    HISTORY#<conversation id>   <seq:010d>   body (msgspec JSON of the entry), expiresAt

Their own partition, not the conversation's: the warm path reads the whole `CONV#<id>` partition in
one query (`load`), and history items there would make every warm read them too. An entry is put
in the transaction that saves the change it records, or just after a save that writes its state
alone (store_writes.py), so the history never shows a change that was refused. Only the newest
MAX_ENTRIES are shown: the reader skips the older ones, and DynamoDB TTL deletes every entry
RETENTION_DAYS after it happened. A delete of entry n - MAX_ENTRIES with each put would cost every
warm a fifth write unit; TTL deletes cost none ("the capacity used to expire and delete items via
TTL is ... free of charge", AWS re:Post answer citing the developer guide's "Time to Live" page,
read 2026-12-07). TTL deletes an expired item only eventually ("Working with Time to Live":
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


def history_put(table: str, entry: HistoryEntry) -> dict[str, Any]:
    """The put that records `entry` (a PutItem request, or a transaction's Put)."""
    item = {
        **history_key(entry.conversation_id, entry.seq),
        "body": s_value(encode_entry(entry)),
        TTL_ATTRIBUTE: n_value(entry.expires_at_s),
    }
    return {"TableName": table, "Item": item}


class HistoryItems(Table):
    def history(
        self, conversation_id: str, limit: int, before: int | None, now_s: int
    ) -> HistoryPage:
        # Entries older than the newest MAX_ENTRIES wait for TTL: not shown.
        floor = self._newest_seq(conversation_id) - MAX_ENTRIES
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
            if int(str_attr(item, "sk")) <= floor:
                break
            if int_attr(item, TTL_ATTRIBUTE) <= now_s:
                continue
            entries.append(msgspec.json.decode(str_attr(item, "body"), type=HistoryEntry))
            if len(entries) > limit:
                break
        page = entries[:limit]
        more = len(entries) > limit
        return HistoryPage(page, page[-1].seq if more and page else None)

    def _newest_seq(self, conversation_id: str) -> int:
        response = self.client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": s_value(f"HISTORY#{conversation_id}")},
            ScanIndexForward=False,
            Limit=1,
            ProjectionExpression="sk",
        )
        items = response.get("Items", [])
        return int(str_attr(items[0], "sk")) if items else 0
