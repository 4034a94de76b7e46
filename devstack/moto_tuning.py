"""Tuning of the moto server the local stack runs (moto 5.2.5, pinned in requirements-dev.txt).

The app is not changed for the local stack; its stand-in for AWS is. Three behaviours of moto make
it unlike AWS under the load of `python -m bench scale` (1,000 conversations warming every 60 s),
each read in moto's source (`moto/sqs/models.py`, `moto/dynamodb/models/__init__.py`):

- SQS long polling wakes once a second. `Queue.wait_for_messages` waits on a condition notified
  only when a message is *sent*; a delayed message that becomes visible is noticed at the next
  one-second timeout, so a long poll returns it up to a second late. AWS returns a message as
  soon as it is available ("Amazon SQS short and long polling"). Tuned: the wait ends when the
  next delayed or in-flight message becomes visible.
- SQS's `Queue.messages` reads the clock twice per message per scan (`visible`, `delayed`); with
  a thousand delayed ticks and several pollers that is most of the stack's CPU. Tuned: one clock
  read per scan, the same rule (visible once `visible_at` has passed and `delayed_until` has).
- SQS `SendMessage` builds the queue's whole attribute map (to read one flag), which counts
  delayed and in-flight messages with two clock reads per message. Tuned: those counts read the
  clock once.
- DynamoDB `TransactWriteItems` deep-copies every table it touches before writing, for its
  rollback: a turn costs two copies of the whole table, so set-up slows as the table grows, and
  the copy iterates the table while other request threads write to it (HTTP 500 `dictionary
  changed size during iteration`). Tuned: the transaction backs up only the items it writes and
  restores those on failure; every DynamoDB operation holds one lock, so no request iterates a
  partition another is changing (the GIL serialises them anyway).
- DynamoDB `Query` sorts every item of the table before keeping those of the queried partition
  (`Table.query` -> `all_items()`), and sorts the matches again: each warm's read of its
  conversation, and the per-owner listing the warming cap reads, cost a sort of the whole table.
  Tuned: the query starts from the partition (or, on an index, from the items whose index hash
  key matches); what it keeps is sorted as before.
- The server works out which service a request is for by listing moto's package directory and
  matching ~300 URL patterns, on every request (`DomainDispatcherApplication`). Tuned: both are
  remembered (the directory does not change; a host always maps to the same service).

`apply()` is idempotent and must run before the moto server serves requests (same process).
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import Any

_applied = False
_dynamodb_lock = threading.RLock()
# Backend operations that read or write items, all under `_dynamodb_lock`.
_DYNAMODB_OPERATIONS = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "transact_get_items",
    "transact_write_items",
)
_MIN_WAIT_S = 0.005


def apply() -> None:
    global _applied
    if _applied:
        return
    _tune_sqs()
    _tune_dynamodb()
    _tune_queries()
    _tune_dispatch()
    _applied = True


# --- SQS ---------------------------------------------------------------------------------


def _visible_messages(queue: Any) -> list[Any]:
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    return [m for m in queue._messages if m.visible_at < now and m.delayed_until <= now]


def _next_visible_in_s(queue: Any) -> float | None:
    """Seconds until the next delayed or in-flight message becomes visible, if any."""
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    upcoming = [
        max(m.visible_at, m.delayed_until)
        for m in queue._messages
        if m.visible_at >= now or m.delayed_until > now
    ]
    return (min(upcoming) - now) / 1000 if upcoming else None


def _wait_for_messages(queue: Any, timeout: float) -> None:
    with queue._messages_lock:
        upcoming = _next_visible_in_s(queue)
        wait = timeout if upcoming is None else min(timeout, max(upcoming, _MIN_WAIT_S))
        queue._messages_lock.wait_for(lambda: _visible_messages(queue), timeout=wait)


def _count_delayed(queue: Any) -> int:
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    return sum(1 for m in queue._messages if m.delayed_until > now)


def _count_not_visible(queue: Any) -> int:
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    return sum(1 for m in queue._messages if m.visible_at >= now)


def _tune_sqs() -> None:
    from moto.sqs.models import Queue

    Queue.messages = property(_visible_messages)  # type: ignore[method-assign,assignment]
    Queue.wait_for_messages = _wait_for_messages  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages_delayed = property(_count_delayed)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages_not_visible = property(_count_not_visible)  # type: ignore[method-assign,assignment]


# --- DynamoDB ----------------------------------------------------------------------------


class _CopyWithoutTables:
    """`copy` for moto's DynamoDB module: deep copies as usual, except whole tables."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _dynamodb_lock:
            return method(*args, **kwargs)

    return call


def _item_backups(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    backups = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        keys = op.get("Item") if "Item" in op else op.get("Key")
        try:
            hash_key, range_key = backend.get_keys_value(table, keys or {})
        except Exception:  # noqa: BLE001 - moto raises its own validation error below
            continue
        item = table.get_item(hash_key, range_key)
        backups.append((table, hash_key, range_key, copy.deepcopy(item)))
    return backups


def _restore(backups: list[tuple[Any, ...]]) -> None:
    for table, hash_key, range_key, item in reversed(backups):
        if item is None:
            table.delete_item(hash_key, range_key)
        elif range_key is not None:
            table.items[hash_key][range_key] = item
        else:
            table.items[hash_key] = item


def _tune_dynamodb() -> None:
    import moto.dynamodb.models as models

    backend_class = models.DynamoDBBackend
    original = backend_class.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups = _item_backups(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            _restore(backups)
            raise

    setattr(models, "copy", _CopyWithoutTables())  # noqa: B010 - moto's module global
    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for name in _DYNAMODB_OPERATIONS:
        setattr(backend_class, name, _locked(getattr(backend_class, name)))


def _equal(item_value: Any, expected: Any) -> bool:
    return item_value is not None and bool(item_value == expected)


def _tune_queries() -> None:
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        conditions = kwargs.get("hash_key_conditions")
        if index_name and not conditions:
            return original(self, hash_key, *args, **kwargs)

        def candidates() -> list[Any]:
            # Unsorted: `Table.query` sorts what it keeps.
            if not index_name:
                partition = self.items.get(hash_key)
                if partition is None:
                    return []
                return list(partition.values()) if self.range_key_attr else [partition]
            items = []
            for partition in self.items.values():
                for item in partition.values() if self.range_key_attr else [partition]:
                    if all(_equal(item.attrs.get(name), value) for name, value in conditions or []):
                        items.append(item)
            return items

        # Under the DynamoDB lock: no other request sees the instance attribute.
        self.all_items = candidates
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]


def _tune_dispatch() -> None:
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = list(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: iter(modules)
    original = DomainDispatcherApplication.get_backend_for_host
    known: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        # Called under the dispatcher's own lock.
        if host not in known:
            known[host] = original(self, host)
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
