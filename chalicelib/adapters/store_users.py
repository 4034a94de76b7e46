"""Per-user items of the one table: the spend ledger (one atomic counter per UTC day) and the
savings counter (added to by the conversation writes, `store_writes.py`)."""

from __future__ import annotations

from functools import reduce
from typing import TYPE_CHECKING

from chalicelib.adapters.store_connections import ConnectionItems
from chalicelib.adapters.store_items import (
    COUNTERS,
    SUMMARY_GSI,
    TTL_ATTRIBUTE,
    conversation_key,
    id_of,
    n_value,
    s_value,
    savings_key,
    spend_update,
    str_attr,
    user_key,
)
from chalicelib.adapters.store_table import error_code
from chalicelib.domain.budget import DaySpend
from chalicelib.domain.warming import Tally
from chalicelib.ports import BudgetExhausted

if TYPE_CHECKING:
    from chalicelib.adapters.store_items import Item


class UserItems(ConnectionItems):
    def add_spend(self, owner: str, day: str, micro_usd: int, expires_at: int) -> int:
        update = spend_update(self._table, owner, DaySpend(day, micro_usd, expires_at))
        response = self.client.update_item(**update, ReturnValues="UPDATED_NEW")
        return int(response["Attributes"]["microUsd"]["N"])

    def _day(self, owner: str, day: str) -> tuple[int, int, int]:
        """The day's turn spend, its committed total (spend plus reservations), and its warms'
        spend (one item per conversation that warmed, `store_writes._count_warm`), in one
        strongly consistent query of the day's items."""
        spent = committed = warms = 0
        day_key = f"SPEND#{day}"
        for item in self._query(
            {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :day)",
                "ExpressionAttributeValues": {
                    ":pk": s_value(f"USER#{owner}"),
                    ":day": s_value(day_key),
                },
                "ConsistentRead": True,
            }
        ):
            micro = int(item.get("microUsd", {}).get("N", "0"))
            if str_attr(item, "sk") == day_key:
                spent = micro
                committed = int(item.get("committedMicroUsd", {}).get("N", "0"))
            elif str_attr(item, "sk").startswith(f"{day_key}#"):
                warms += micro
        return spent, committed, warms

    def committed(self, owner: str, day: str) -> int:
        # A day counted before reservations existed has no committed total: its spend is one.
        spent, committed, warms = self._day(owner, day)
        return max(spent, committed) + warms

    def reserve_spend(
        self, owner: str, day: str, micro_usd: int, budget_micro: int, expires_at: int
    ) -> None:
        from botocore.exceptions import ClientError

        # The warms' spend is in items of its own: the condition checks the day's turns against
        # what they leave of the budget. A warm counted between the read and the update is
        # missed by this check only (warms are never reserved: docs/architecture.md).
        left = budget_micro - self._day(owner, day)[2]
        if left <= 0:
            raise BudgetExhausted(owner)
        try:
            self.client.update_item(
                TableName=self._table,
                Key=user_key(owner, f"SPEND#{day}"),
                UpdateExpression="ADD committedMicroUsd :reserve SET #ttl = :expires",
                ConditionExpression=(
                    "(attribute_not_exists(committedMicroUsd) OR committedMicroUsd < :budget)"
                    " AND (attribute_not_exists(microUsd) OR microUsd < :budget)"
                ),
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":reserve": n_value(micro_usd),
                    ":budget": n_value(left),
                    ":expires": n_value(expires_at),
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise BudgetExhausted(owner) from error
            raise

    def settle_spend(
        self, owner: str, day: str, reserved_micro: int, actual_micro: int, expires_at: int
    ) -> None:
        self.client.update_item(
            TableName=self._table,
            Key=user_key(owner, f"SPEND#{day}"),
            UpdateExpression="ADD microUsd :actual, committedMicroUsd :change SET #ttl = :expires",
            ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
            ExpressionAttributeValues={
                ":actual": n_value(actual_micro),
                ":change": n_value(actual_micro - reserved_micro),
                ":expires": n_value(expires_at),
            },
        )

    def spent(self, owner: str, day: str) -> int:
        spent, _, warms = self._day(owner, day)
        return spent + warms

    def _owned(self, owner: str) -> list[str]:
        """The owner's conversation ids, newest first, from the owner index (keys only)."""
        items = self._query(
            {
                "TableName": self._table,
                "IndexName": SUMMARY_GSI,
                "KeyConditionExpression": "gsi1pk = :pk",
                "ExpressionAttributeValues": {":pk": s_value(f"OWNER#{owner}")},
                "ScanIndexForward": False,
            }
        )
        return list(dict.fromkeys(id_of(item) for item in items))

    def savings(self, owner: str) -> Tally:
        """The counters of the owner's conversations, plus the per-owner item they were added
        to before each conversation kept its own (docs/architecture.md, "Data layout")."""
        keys = [conversation_key(conversation_id) for conversation_id in self._owned(owner)]
        legacy = self.client.get_item(
            TableName=self._table, Key=savings_key(owner), ConsistentRead=True
        ).get("Item")
        items = [*([legacy] if legacy else []), *self._batch_get(keys, True, ", ".join(COUNTERS))]
        return reduce(Tally.plus, (_tally_of(item) for item in items), Tally())


def _tally_of(item: Item) -> Tally:
    def number(name: str) -> str:
        value = item.get(name)
        return value["N"] if value is not None and "N" in value else "0"

    return Tally(
        spent_usd=round(float(number("spentUsd")), 8),
        saved_usd=round(float(number("savedUsd")), 8),
        warms=int(number("warms")),
        rescues=int(number("rescues")),
    )
