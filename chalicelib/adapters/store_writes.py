"""The conversation's conditional write, and what its failures really mean.

botocore retries a DynamoDB call after a 500, throttling or a socket error, up to 10 attempts
(NOTES.md, "AWS behaviours to test against"). When an attempt landed but its response was lost,
the retry fails its own condition: every write therefore carries a `writeId`, and a condition
failure returns the stored item (`ReturnValuesOnConditionCheckFailure: ALL_OLD`, DynamoDB API
reference, PutItem / TransactWriteItems) so the write can tell its own landed attempt from a
writer that got there first. TransactWriteItems is idempotent for 10 minutes by the
ClientRequestToken botocore generates per call (DynamoDB developer guide, "Transactions:
idempotency"), which makes such a retry succeed on AWS; the same check covers both.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.store_fixed import FixedReads
from chalicelib.adapters.store_history import history_put
from chalicelib.adapters.store_items import (
    COUNTERS,
    TTL_ATTRIBUTE,
    conversation_key,
    encode_conversation,
    n_value,
    s_value,
    spend_update,
    str_attr,
    system_item,
    turn_item,
    usd_value,
    user_key,
    warm_spend_key,
    warming_slots_key,
)
from chalicelib.adapters.store_table import error_code
from chalicelib.domain.budget import DaySpend
from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.domain.history import HistoryEntry
from chalicelib.domain.warming import Tally
from chalicelib.ports import (
    CapReached,
    ConversationCapReached,
    ItemTooLarge,
    PlaceChange,
    SlotChange,
    VersionConflict,
    WriteOutcomeUnknown,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from chalicelib.adapters.store_items import Item

log = logging.getLogger("cache_warming")

WRITE_ID = "writeId"
# Errors after which an attempt may have landed; anything else in 4xx is a definite refusal.
_MAYBE_LANDED = {
    "InternalServerError",
    "ServiceUnavailable",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
}


class ConversationWrites(FixedReads):
    def save_conversation(
        self,
        conversation: Conversation,
        turn: Turn | None = None,
        slot: SlotChange | None = None,
        tally: Tally | None = None,
        spend: DaySpend | None = None,
        place: PlaceChange | None = None,
        history: HistoryEntry | None = None,
    ) -> Conversation:
        saved = dataclasses.replace(conversation, version=conversation.version + 1)
        write_id = secrets.token_hex(8)
        update = self._state_update(saved, conversation.version, write_id, tally)
        limited = _Limited(slot, place)
        legacy = saved.id in self._legacy
        if spend is not None and spend.warm_seq is not None:
            self._count_warm(saved, spend)
            spend = None
        alone = turn is None and spend is None and limited.none and not legacy
        try:
            if alone:
                self.client.update_item(**update)
            else:
                self.client.transact_write_items(
                    TransactItems=self._items(update, saved, turn, spend, limited, history)
                )
        except ClientError as error:
            self._refused(error, saved, write_id, limited)
        except BotoCoreError as error:
            self._unsure(error, saved, write_id)
        self._legacy.discard(saved.id)
        if alone and history is not None:
            self._record_after(history)
        return saved

    def _state_update(
        self, saved: Conversation, expected: int, write_id: str, tally: Tally | None
    ) -> dict[str, Any]:
        """The state item's conditional update. An update, not a put: the item also holds the
        conversation's savings counters, added to here (exactly once with the state)."""
        names = {"#version": "version", "#body": "body", "#owner": "owner", "#writeId": WRITE_ID}
        values: dict[str, Any] = {
            ":expected": n_value(expected),
            ":version": n_value(saved.version),
            ":body": s_value(encode_conversation(saved)),
            ":owner": s_value(saved.owner),
            ":writeId": s_value(write_id),
        }
        expression = "SET #body = :body, #version = :version, #owner = :owner, #writeId = :writeId"
        if tally is not None:
            adds = []
            for attribute, field_name in COUNTERS.items():
                number = getattr(tally, field_name)
                names[f"#{attribute}"] = attribute
                values[f":{attribute}"] = (
                    n_value(number) if isinstance(number, int) else usd_value(number)
                )
                adds.append(f"#{attribute} :{attribute}")
            expression += " ADD " + ", ".join(adds)
        return {
            "TableName": self._table,
            "Key": conversation_key(saved.id),
            "UpdateExpression": expression,
            "ConditionExpression": "#version = :expected",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _count_warm(self, saved: Conversation, spend: DaySpend) -> None:
        """A warm's cost against its day, before the state: in an item per (owner, day,
        conversation) that remembers the last warm it counted, so a second write for the same
        warm (botocore's retry of a landed attempt, the record retried after a conflict, the
        abandoned warm recorded later) adds nothing. Counted even if the state write then
        fails: the warm was billed. An error here leaves the state unwritten, as a failed
        transaction did."""
        assert spend.warm_seq is not None
        try:
            self.client.update_item(
                TableName=self._table,
                Key=warm_spend_key(saved.owner, spend.day, saved.id),
                UpdateExpression="ADD microUsd :cost SET lastSeq = :seq, #ttl = :expires",
                ConditionExpression="attribute_not_exists(lastSeq) OR lastSeq < :seq",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":cost": n_value(spend.micro_usd),
                    ":seq": n_value(spend.warm_seq),
                    ":expires": n_value(spend.expires_at_s),
                },
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise  # counted already otherwise

    def _record_after(self, entry: HistoryEntry) -> None:
        """The history entry of a save that wrote its state alone, once the state holds: an
        entry can then never describe a change that was refused. Best effort: the state is
        saved, and one failure past botocore's retries loses this entry only (logged)."""
        try:
            self.client.put_item(**history_put(self._table, entry))
        except (ClientError, BotoCoreError):
            log.exception("history entry %s of %s not written", entry.seq, entry.conversation_id)

    def _items(
        self,
        update: dict[str, Any],
        saved: Conversation,
        turn: Turn | None,
        spend: DaySpend | None,
        limited: _Limited,
        history: HistoryEntry | None,
    ) -> list[TransactWriteItemTypeDef]:
        items: list[Any] = [{"Update": update}]
        if saved.id in self._legacy:
            # The update drops the prompt from the body: the SYSTEM item takes it.
            items.append({"Put": {"TableName": self._table, "Item": system_item(saved)}})
        if history is not None:
            items.append({"Put": history_put(self._table, history)})
        if turn is not None:
            items.append({"Put": {"TableName": self._table, "Item": turn_item(turn)}})
        if spend is not None:
            items.append({"Update": spend_update(self._table, saved.owner, spend)})
        # The capped updates stay last, place then slot: a cancellation names them by position
        # (`_Limited.refusal`).
        if limited.place is not None:
            items.append({"Update": self._place_update(saved.owner, limited.place)})
        if limited.slot is not None:
            items.append({"Update": self._slot_update(saved, limited.slot)})
        return cast("list[TransactWriteItemTypeDef]", items)

    def _place_update(self, owner: str, place: PlaceChange) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": user_key(owner, "COUNTS"),
            "UpdateExpression": "ADD conversations :delta",
            "ExpressionAttributeValues": {":delta": n_value(1 if place.take else -1)},
        }
        if place.take and place.cap is not None:
            update["ConditionExpression"] = (
                "attribute_not_exists(conversations) OR conversations < :cap"
            )
            update["ExpressionAttributeValues"][":cap"] = n_value(place.cap)
        return update

    def _slot_update(self, saved: Conversation, slot: SlotChange) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": warming_slots_key(saved.owner),
            "ExpressionAttributeNames": {"#set": "conversations"},
            "ExpressionAttributeValues": {":id": {"SS": [saved.id]}},
        }
        if not slot.take:
            return {**update, "UpdateExpression": "DELETE #set :id"}
        return {
            **update,
            "UpdateExpression": "ADD #set :id",
            # Set ADD is idempotent, so a conversation already holding a slot passes.
            "ConditionExpression": "attribute_not_exists(#set) OR size(#set) < :cap "
            "OR contains(#set, :member)",
            "ExpressionAttributeValues": {
                ":id": {"SS": [saved.id]},
                ":cap": n_value(slot.cap),
                ":member": s_value(saved.id),
            },
        }

    def _refused(
        self, error: ClientError, saved: Conversation, write_id: str, limited: _Limited
    ) -> None:
        code = error_code(error)
        if code == "ConditionalCheckFailedException":
            if _written_by(error.response.get("Item"), write_id):
                return
            raise VersionConflict(saved.id) from error
        if code == "TransactionCanceledException":
            self._cancelled(error, saved, write_id, limited)
            return
        if code == "ValidationException" and "size" in str(error).lower():
            raise ItemTooLarge(saved.id) from error
        if code in _MAYBE_LANDED:
            self._unsure(error, saved, write_id)
            return
        raise error

    def _cancelled(
        self, error: ClientError, saved: Conversation, write_id: str, limited: _Limited
    ) -> None:
        reasons = cast(list[dict[str, Any]], error.response.get("CancellationReasons") or [])
        codes = [reason.get("Code") for reason in reasons]
        if codes and codes[0] == "ConditionalCheckFailed":
            if _written_by(reasons[0].get("Item"), write_id):
                return
            raise VersionConflict(saved.id) from error
        refusal = limited.refusal(codes, saved.owner)
        if refusal is not None:
            raise refusal from error
        if "TransactionConflict" in codes:
            # A racing transaction on the same item: nothing was written, re-read and retry.
            raise VersionConflict(saved.id) from error
        raise error

    def _unsure(self, error: Exception, saved: Conversation, write_id: str) -> None:
        """The write may have landed: read it back to know."""
        try:
            response = self.client.get_item(
                TableName=self._table, Key=conversation_key(saved.id), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as unreadable:
            raise WriteOutcomeUnknown(saved.id) from unreadable
        if _written_by(response.get("Item"), write_id):
            return
        raise error


def _written_by(item: object, write_id: str) -> bool:
    """The stored item (as a condition failure or a read returns it) was put by this write."""
    if not isinstance(item, dict) or WRITE_ID not in item:
        return False
    return str_attr(cast("Item", item), WRITE_ID) == write_id


@dataclass(frozen=True)
class _Limited:
    """The capped updates of a save, last in its transaction (place, then slot)."""

    slot: SlotChange | None
    place: PlaceChange | None

    @property
    def none(self) -> bool:
        return self.slot is None and self.place is None

    def refusal(self, codes: list[Any], owner: str) -> Exception | None:
        """The cap a cancelled transaction ran into, from its reasons' positions."""
        capped = [(self.place, ConversationCapReached), (self.slot, CapReached)]
        present = [kind for change, kind in capped if change is not None]
        for offset, kind in enumerate(reversed(present), start=1):
            if len(codes) >= offset and codes[-offset] == "ConditionalCheckFailed":
                return kind(owner)
        return None
