"""Per-user items of the one table: the spend ledger (one atomic counter per UTC day) and the
savings counter (added to by the conversation writes, `store_writes.py`)."""

from __future__ import annotations

from chalicelib.adapters.store_connections import ConnectionItems
from chalicelib.adapters.store_items import savings_key, spend_update, user_key
from chalicelib.domain.budget import DaySpend
from chalicelib.domain.warming import Tally


class UserItems(ConnectionItems):
    def add_spend(self, owner: str, day: str, micro_usd: int, expires_at: int) -> int:
        update = spend_update(self._table, owner, DaySpend(day, micro_usd, expires_at))
        response = self.client.update_item(**update, ReturnValues="UPDATED_NEW")
        return int(response["Attributes"]["microUsd"]["N"])

    def spent(self, owner: str, day: str) -> int:
        response = self.client.get_item(
            TableName=self._table,
            Key=user_key(owner, f"SPEND#{day}"),
            ConsistentRead=True,
            ProjectionExpression="microUsd",
        )
        item = response.get("Item")
        return int(item["microUsd"]["N"]) if item and "microUsd" in item else 0

    def savings(self, owner: str) -> Tally:
        response = self.client.get_item(
            TableName=self._table, Key=savings_key(owner), ConsistentRead=True
        )
        item = response.get("Item") or {}

        def number(name: str) -> str:
            value = item.get(name)
            return value["N"] if value is not None and "N" in value else "0"

        return Tally(
            spent_usd=round(float(number("spentUsd")), 8),
            saved_usd=round(float(number("savedUsd")), 8),
            warms=int(number("warms")),
            rescues=int(number("rescues")),
        )
