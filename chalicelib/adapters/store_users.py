"""Per-user items of the one table: the spend ledger (one atomic counter per UTC day) and the
savings counter (added to by the conversation writes, `store_writes.py`)."""

from __future__ import annotations

from chalicelib.adapters.store_connections import ConnectionItems
from chalicelib.adapters.store_items import (
    TTL_ATTRIBUTE,
    n_value,
    savings_key,
    spend_update,
    user_key,
)
from chalicelib.adapters.store_table import error_code
from chalicelib.domain.budget import DaySpend
from chalicelib.domain.warming import Tally
from chalicelib.ports import BudgetExhausted


class UserItems(ConnectionItems):
    def add_spend(self, owner: str, day: str, micro_usd: int, expires_at: int) -> int:
        update = spend_update(self._table, owner, DaySpend(day, micro_usd, expires_at))
        response = self.client.update_item(**update, ReturnValues="UPDATED_NEW")
        return int(response["Attributes"]["microUsd"]["N"])

    def _day(self, owner: str, day: str, *names: str) -> list[int]:
        """The day's counters `names` (0 for one never added to), read strongly consistent."""
        response = self.client.get_item(
            TableName=self._table,
            Key=user_key(owner, f"SPEND#{day}"),
            ConsistentRead=True,
            ProjectionExpression=", ".join(names),
        )
        item = response.get("Item") or {}
        return [int(item.get(name, {}).get("N", "0")) for name in names]

    def committed(self, owner: str, day: str) -> int:
        # A day counted before reservations existed has no committed total: its spend is one.
        return max(self._day(owner, day, "microUsd", "committedMicroUsd"))

    def reserve_spend(
        self, owner: str, day: str, micro_usd: int, budget_micro: int, expires_at: int
    ) -> None:
        from botocore.exceptions import ClientError

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
                    ":budget": n_value(budget_micro),
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
        (spent,) = self._day(owner, day, "microUsd")
        return spent

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
