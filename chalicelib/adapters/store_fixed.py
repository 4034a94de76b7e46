"""Reading what never changes once written: a conversation's system prompt and its ended turns.

The state (META) is read strongly consistent, because the conditional writes decide against it.
The fixed part is read eventually consistent, which DynamoDB bills half ("Read consistency",
DynamoDB developer guide, read 2026-12-07: an eventually consistent read "might not reflect the
results of a recently completed write"), because an item that cannot change is either missing
from such a read or correct in it. A turn still generating can change, and a turn or prompt
just written can be missing: the state says how many turns exist (`turn_count`, written in the
transaction that puts each turn), so a read that lacks one of them, lacks the prompt, or shows a
turn generating is repeated strongly consistent. That keeps `load` exact at any replica lag.

The system prompt alone (every `get_conversation`: a turn's abort polls, each toggle) comes from
a per-container cache keyed by the conversation id, since ids are never reused and a prompt
never changes; a miss reads the SYSTEM item eventually consistent, then strongly if missing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.store_items import (
    FIXED_FROM,
    SYSTEM,
    s_value,
    str_attr,
    system_key,
    turn_from_item,
)
from chalicelib.adapters.store_table import Table, default_client
from chalicelib.domain.conversation import Turn

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb import DynamoDBClient

    from chalicelib.adapters.store_items import Item

# Characters of system prompts one container keeps (at most 200 KB each: about 80 of the
# largest); far below a Lambda's memory, and only a saving when it hits.
CACHE_CHARS = 16 * 1024 * 1024


class SystemCache:
    """System prompts by conversation id, least recently used dropped past `limit` characters."""

    def __init__(self, limit: int = CACHE_CHARS) -> None:
        self._limit = limit
        self._size = 0
        self._prompts: OrderedDict[str, str] = OrderedDict()

    def get(self, conversation_id: str) -> str | None:
        prompt = self._prompts.get(conversation_id)
        if prompt is not None:
            self._prompts.move_to_end(conversation_id)
        return prompt

    def put(self, conversation_id: str, prompt: str) -> None:
        if conversation_id in self._prompts or len(prompt) > self._limit:
            return
        self._prompts[conversation_id] = prompt
        self._size += len(prompt)
        while self._size > self._limit:
            _, dropped = self._prompts.popitem(last=False)
            self._size -= len(dropped)

    def clear(self) -> None:
        self._prompts.clear()
        self._size = 0


class FixedReads(Table):
    def __init__(
        self, table_name: str, client_factory: Callable[[], DynamoDBClient] = default_client
    ) -> None:
        super().__init__(table_name, client_factory)
        self.systems = SystemCache()
        # Conversations read with a legacy META (the prompt still in its body): their next save
        # puts the SYSTEM item too, so no save can drop the prompt before the migration ran.
        self._legacy: set[str] = set()

    def _system(self, conversation_id: str) -> str:
        cached = self.systems.get(conversation_id)
        if cached is not None:
            return cached
        for consistent in (False, True):
            response = self.client.get_item(
                TableName=self._table, Key=system_key(conversation_id), ConsistentRead=consistent
            )
            item = response.get("Item")
            if item is not None:
                prompt = str_attr(item, "system")
                self.systems.put(conversation_id, prompt)
                return prompt
        # Put in the transaction that created the META item read before: never missing.
        raise LookupError(f"conversation {conversation_id} has no system prompt item")

    def _fixed(
        self, conversation_id: str, turn_count: int, legacy_system: str | None
    ) -> tuple[str, list[Turn]]:
        """The prompt and the turns, eventually consistent unless that read is short of what
        the state says exists (`legacy_system`: the prompt a legacy META holds itself)."""
        for consistent in (False, True):
            system, turns = self._fixed_read(conversation_id, consistent)
            system = legacy_system if legacy_system is not None else system
            indices = {turn.index for turn in turns}
            if (
                system is not None
                and indices >= set(range(turn_count))
                and all(turn.status != "generating" for turn in turns)
            ):
                break
        if system is None:
            raise LookupError(f"conversation {conversation_id} has no system prompt item")
        self.systems.put(conversation_id, system)
        return system, turns

    def _fixed_read(self, conversation_id: str, consistent: bool) -> tuple[str | None, list[Turn]]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk >= :fixed",
            "ExpressionAttributeValues": {
                ":pk": s_value(f"CONV#{conversation_id}"),
                ":fixed": s_value(FIXED_FROM),
            },
            "ConsistentRead": consistent,
        }
        system: str | None = None
        turns: list[Turn] = []
        item: Item
        for item in self._query(request):  # type: ignore[arg-type]
            if str_attr(item, "sk") == SYSTEM:
                system = str_attr(item, "system")
            elif str_attr(item, "sk").startswith("TURN#"):
                turns.append(turn_from_item(item))
        return system, turns
