"""One contract for the `Store` port, run over the in-memory fake and the DynamoDB adapter."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend

from chalicelib.adapters.store import DynamoStore
from chalicelib.domain.budget import DaySpend
from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.domain.history import MAX_ENTRIES, RETENTION_DAYS, HistoryEntry
from chalicelib.domain.pricing import Usage
from chalicelib.domain.warming import Tally, WarmingState, WarmStats
from chalicelib.ports import (
    AlreadyExists,
    BudgetExhausted,
    Channel,
    Connection,
    Store,
    VersionConflict,
)
from tests.conftest import SESSION, TABLE_NAME
from tests.fakes.store import InMemoryStore

NOW_S = 1_800_000_000
CHANNELS: tuple[Channel, ...] = ("surface", "chat")


@pytest.fixture(params=["memory", "dynamo"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield InMemoryStore()
        return
    request.getfixturevalue("dynamodb")
    yield DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb"))


def conversation(
    conversation_id: str = "c1",
    owner: str = "alice",
    created_at: int = 1_700_000_000_000,
    **changes: Any,
) -> Conversation:
    base = Conversation(
        id=conversation_id,
        owner=owner,
        created_at=created_at,
        title="A chat",
        model="claude-sonnet-4-6",
        system="You are terse.",
        max_tokens=1024,
    )
    return replace(base, **changes)


def turn(index: int, conversation_id: str = "c1", **changes: Any) -> Turn:
    base = Turn(
        conversation_id=conversation_id,
        index=index,
        user_text=f"question {index}",
        started_at=1000 + index,
    )
    return replace(base, **changes)


def connection(connection_id: str = "conn-1", owner: str = "alice") -> Connection:
    return Connection(
        connection_id=connection_id, owner=owner, connected_at=NOW_S - 10, expires_at=NOW_S + 7200
    )


# --- conversations --------------------------------------------------------------------------


def test_create_then_get_roundtrips_every_field(store: Store) -> None:
    warming = WarmingState(
        retention="1h",
        auto=True,
        retention_reason="auto: 1h is cheaper",
        enabled=True,
        interval_choice=300,
        status="scheduled",
        seq=7,
        next_warm_at=1_700_000_300_000,
        timer_ref="warm-c1-7",
        last_refresh_at=1_700_000_000_123,
        has_prefix=True,
        idle_warms=2,
        last_error=None,
        rebuild=True,
        turn_expires_at=1_700_000_003_600,
        prefix_tokens=50_000,
        exchange_tokens=700,
        stats=WarmStats(
            warms=3,
            input_tokens=12,
            cache_read_tokens=40_000,
            total_cost_usd=0.01234567,
            last_warm_cost_usd=0.0041,
            last_warm_tokens=None,
            last_cache_pct=99.5,
            rescues=2,
            saved_usd=0.0345,
        ),
    )
    created = conversation(
        title="Ünïcode ✓ title",
        warming=warming,
        turn_count=4,
        active_turn_id="t000004",
    )
    store.create_conversation(created)
    assert store.get_conversation("c1") == created


def test_create_keeps_the_given_version(store: Store) -> None:
    store.create_conversation(conversation())
    stored = store.get_conversation("c1")
    assert stored is not None and stored.version == 0


def test_create_existing_id_raises_already_exists_and_keeps_the_original(store: Store) -> None:
    original = conversation(title="first")
    store.create_conversation(original)
    with pytest.raises(AlreadyExists):
        store.create_conversation(conversation(title="second", owner="mallory"))
    assert store.get_conversation("c1") == original
    assert store.list_conversations("mallory") == []


def test_get_missing_conversation_is_none(store: Store) -> None:
    assert store.get_conversation("nope") is None


def test_save_increments_the_version(store: Store) -> None:
    store.create_conversation(conversation())
    first = store.save_conversation(conversation(title="renamed"))
    assert first.version == 1 and first.title == "renamed"
    second = store.save_conversation(replace(first, abort_reason="cancelled"))
    assert second.version == 2
    assert store.get_conversation("c1") == second


def test_stale_save_raises_version_conflict_and_writes_nothing(store: Store) -> None:
    store.create_conversation(conversation())
    read = store.get_conversation("c1")
    assert read is not None
    current = store.save_conversation(replace(read, title="winner"))
    with pytest.raises(VersionConflict):
        store.save_conversation(replace(read, title="loser"))
    assert store.get_conversation("c1") == current


def test_save_of_missing_conversation_raises_version_conflict(store: Store) -> None:
    with pytest.raises(VersionConflict):
        store.save_conversation(conversation("ghost"))
    assert store.get_conversation("ghost") is None


def test_save_with_turn_writes_both(store: Store) -> None:
    store.create_conversation(conversation())
    started = turn(0)
    saved = store.save_conversation(conversation(turn_count=1, active_turn_id="t000000"), started)
    assert saved.version == 1
    assert store.get_conversation("c1") == saved
    assert store.get_turns("c1") == [started]


def test_conflicting_save_with_turn_writes_neither(store: Store) -> None:
    store.create_conversation(conversation())
    current = store.save_conversation(conversation(title="moved on"))
    with pytest.raises(VersionConflict):
        store.save_conversation(conversation(turn_count=1), turn(0))
    assert store.get_conversation("c1") == current
    assert store.get_turns("c1") == []


def test_saving_a_turn_again_replaces_it(store: Store) -> None:
    store.create_conversation(conversation())
    saved = store.save_conversation(conversation(turn_count=1), turn(0))
    sealed = turn(
        0,
        status="sealed",
        assistant_text="answer",
        ended_at=2000,
        usage=Usage(input_tokens=5, output_tokens=7, cache_read_input_tokens=900),
    )
    store.save_conversation(saved, sealed)
    assert store.get_turns("c1") == [sealed]


def test_turns_come_back_in_index_order(store: Store) -> None:
    store.create_conversation(conversation())
    current = store.get_conversation("c1")
    assert current is not None
    order = [7, 0, 11, 3, 9, 1, 10, 4, 2, 8, 6, 5]
    for index in order:
        current = store.save_conversation(
            current, turn(index, status="sealed", assistant_text=f"a{index}")
        )
    assert [t.index for t in store.get_turns("c1")] == list(range(12))
    assert store.get_turns("c1")[11] == turn(11, status="sealed", assistant_text="a11")


def test_turns_larger_than_one_query_page_all_come_back(store: Store) -> None:
    store.create_conversation(conversation())
    current = store.get_conversation("c1")
    assert current is not None
    big = "x" * 100_000
    for index in range(12):
        current = store.save_conversation(current, turn(index, user_text=big, assistant_text=big))
    turns = store.get_turns("c1")
    assert [t.index for t in turns] == list(range(12))
    assert all(len(t.assistant_text) == 100_000 for t in turns)


def test_turns_are_per_conversation(store: Store) -> None:
    store.create_conversation(conversation("c1"))
    store.create_conversation(conversation("c2"))
    store.save_conversation(conversation("c1"), turn(0, "c1"))
    assert store.get_turns("c2") == []
    assert store.get_turns("missing") == []


def test_list_conversations_per_owner_newest_first(store: Store) -> None:
    created = [
        conversation("a", created_at=1_000),
        conversation("b", created_at=3_000),
        conversation("c", created_at=2_000),
        conversation("d", created_at=10_000_000_000_000 - 1),
        conversation("x", owner="bob", created_at=5_000),
        conversation("y", owner="alice2", created_at=6_000),
    ]
    for item in created:
        store.create_conversation(item)
    assert [c.id for c in store.list_conversations("alice")] == ["d", "b", "c", "a"]
    assert [c.id for c in store.list_conversations("bob")] == ["x"]
    assert store.list_conversations("nobody") == []


def test_list_conversations_breaks_created_at_ties_by_id_descending(store: Store) -> None:
    for conversation_id in ["m", "z", "a"]:
        store.create_conversation(conversation(conversation_id, created_at=1_000))
    assert [c.id for c in store.list_conversations("alice")] == ["z", "m", "a"]


def test_list_conversations_returns_current_versions(store: Store) -> None:
    store.create_conversation(conversation("c1"))
    saved = store.save_conversation(conversation("c1", title="renamed"))
    assert store.list_conversations("alice") == [saved]


def test_list_conversations_larger_than_one_query_page(store: Store) -> None:
    system = "s" * 300_000
    for index in range(5):
        store.create_conversation(
            conversation(f"c{index}", created_at=1_000 + index, system=system)
        )
    listed = store.list_conversations("alice")
    assert [c.id for c in listed] == ["c4", "c3", "c2", "c1", "c0"]


def _serialize_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB checks a condition and writes atomically; moto's backend does not (no lock), so
    racing threads both pass the check. Give moto that atomicity, as the real service has it."""
    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


def test_concurrent_read_modify_save_loses_no_update(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(store, DynamoStore):
        _serialize_moto_writes(monkeypatch)
    store.create_conversation(conversation())
    threads, per_thread = 8, 10
    start = threading.Barrier(threads)

    def worker() -> int:
        start.wait()
        conflicts = 0
        done = 0
        while done < per_thread:
            current = store.get_conversation("c1")
            assert current is not None
            try:
                store.save_conversation(replace(current, turn_count=current.turn_count + 1))
            except VersionConflict:
                conflicts += 1
                continue
            done += 1
        return conflicts

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(worker) for _ in range(threads)]
        for future in futures:
            future.result()
    final = store.get_conversation("c1")
    assert final is not None
    assert final.version == threads * per_thread
    assert final.turn_count == threads * per_thread


# --- the owner's savings counter -----------------------------------------------------------


def test_savings_start_at_zero(store: Store) -> None:
    assert store.savings("alice") == Tally()


def test_a_save_with_a_tally_adds_to_its_owners_counter_exactly(store: Store) -> None:
    store.create_conversation(conversation("c1"))
    store.create_conversation(conversation("c2", owner="bob"))
    saved = store.save_conversation(conversation("c1"), tally=Tally(spent_usd=0.00012345, warms=1))
    saved = store.save_conversation(saved, tally=Tally(saved_usd=0.069, rescues=1))
    store.save_conversation(saved, turn(0), tally=Tally(spent_usd=0.1, warms=1))
    store.save_conversation(conversation("c2", owner="bob"), tally=Tally(spent_usd=1.0, warms=1))
    assert store.savings("alice") == Tally(0.10012345, 0.069, 2, 1)
    assert store.savings("alice").net_usd == round(0.069 - 0.10012345, 8)
    assert store.savings("bob") == Tally(1.0, 0.0, 1, 0)
    assert store.get_turns("c1") == [turn(0)]


def test_a_save_that_fails_its_version_check_adds_nothing(store: Store) -> None:
    store.create_conversation(conversation())
    store.save_conversation(conversation(title="moved on"))
    with pytest.raises(VersionConflict):
        store.save_conversation(conversation(), tally=Tally(spent_usd=0.5, warms=1))
    assert store.savings("alice") == Tally()


def test_a_save_with_a_day_spend_adds_to_that_days_counter_with_the_state(store: Store) -> None:
    store.create_conversation(conversation())
    warm = Tally(spent_usd=0.00012345, warms=1)
    saved = store.save_conversation(
        conversation(), tally=warm, spend=DaySpend("2026-12-01", 123, NOW_S + 86_400)
    )
    store.save_conversation(saved, spend=DaySpend("2026-12-01", 7, NOW_S + 86_400))
    assert store.spent("alice", "2026-12-01") == 130
    assert store.spent("alice", "2026-12-02") == 0
    assert store.savings("alice") == warm


def test_a_save_with_a_day_spend_that_fails_its_version_check_counts_nothing(store: Store) -> None:
    store.create_conversation(conversation())
    store.save_conversation(conversation(title="moved on"))
    with pytest.raises(VersionConflict):
        store.save_conversation(conversation(), spend=DaySpend("2026-12-01", 500, NOW_S))
    assert store.spent("alice", "2026-12-01") == 0


def test_a_warms_spend_counts_once_however_often_its_record_is_written(store: Store) -> None:
    # Issue 24: a warm's cost is counted in an item of its own, before the state, keyed by the
    # warm: a retried record adds nothing, and a billed warm whose record lost a race still
    # counts (once: recording it again after a fresh read adds nothing either).
    day, expires = "2026-12-01", NOW_S + 86_400
    store.create_conversation(conversation())
    store.create_conversation(conversation("c2"))
    first = DaySpend(day, 123, expires, warm_seq=7)
    saved = store.save_conversation(conversation(), spend=first)
    saved = store.save_conversation(saved, spend=first)
    raced = DaySpend(day, 50, expires, warm_seq=8)
    with pytest.raises(VersionConflict):
        store.save_conversation(conversation(), spend=raced)
    store.save_conversation(saved, spend=raced)
    store.save_conversation(conversation("c2"), spend=DaySpend(day, 7, expires, warm_seq=1))
    assert store.spent("alice", day) == store.committed("alice", day) == 180
    assert store.spent("alice", "2026-12-02") == 0
    # The warms count against the budget a turn reserves from.
    with pytest.raises(BudgetExhausted):
        store.reserve_spend("alice", day, 1, 180, expires)
    store.reserve_spend("alice", day, 20, 181, expires)
    assert store.committed("alice", day) == 200


def test_tallies_from_concurrent_conversations_of_one_owner_all_count(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(store, DynamoStore):
        _serialize_moto_writes(monkeypatch)
    ids = [f"c{n}" for n in range(6)]
    for conversation_id in ids:
        store.create_conversation(conversation(conversation_id))
    start = threading.Barrier(len(ids))

    def worker(conversation_id: str) -> None:
        start.wait()
        current = store.get_conversation(conversation_id)
        assert current is not None
        for _ in range(5):
            current = store.save_conversation(current, tally=Tally(spent_usd=0.001, warms=1))

    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        for future in [pool.submit(worker, conversation_id) for conversation_id in ids]:
            future.result()
    assert store.savings("alice") == Tally(spent_usd=0.03, warms=30)


# --- history ---------------------------------------------------------------------------------


def entry(seq: int, conversation_id: str = "c1", **changes: Any) -> HistoryEntry:
    base = HistoryEntry(
        kind="warm",
        at=NOW_S * 1000 + seq,
        outcome="warmed",
        conversation_id=conversation_id,
        seq=seq,
        cost_usd=0.00052,
        usage=Usage(input_tokens=8, cache_read_input_tokens=5000),
        target=NOW_S * 1000,
        spent_total_usd=0.001 * seq,
    )
    return replace(base, **changes)


def _record(store: Store, entries: list[HistoryEntry], conversation_id: str = "c1") -> None:
    current = store.get_conversation(conversation_id)
    assert current is not None
    for item in entries:
        current = store.save_conversation(current, history=item)


def test_history_entries_roundtrip_newest_first_and_page(store: Store) -> None:
    store.create_conversation(conversation())
    written = [
        entry(1, kind="turn", outcome="sealed", turn_id="t000000", ended_at=5, target=None),
        entry(2),
        entry(3, outcome="failed", usage=None, cost_usd=0.0, reason="overloaded"),
        entry(4, outcome="skipped", usage=None, cost_usd=0.0, reason="paused-idle"),
        entry(5, kind="turn", outcome="sealed", turn_id="t000001", rescue=True, saved_usd=0.07),
    ]
    _record(store, written)
    first = store.history("c1", 2, None, NOW_S)
    assert first.entries == written[:2:-1] and first.next_before == 4
    second = store.history("c1", 2, first.next_before, NOW_S)
    assert second.entries == [written[2], written[1]] and second.next_before == 2
    last = store.history("c1", 2, second.next_before, NOW_S)
    assert last.entries == [written[0]] and last.next_before is None
    assert store.history("c1", 5, None, NOW_S).next_before is None
    assert store.history("other", 5, None, NOW_S).entries == []


def test_history_is_not_part_of_the_warm_paths_snapshot(store: Store) -> None:
    store.create_conversation(conversation())
    _record(store, [entry(1)])
    snapshot = store.load("c1", NOW_S)
    assert snapshot is not None and snapshot.turns == []


def test_a_save_that_fails_its_version_check_records_no_history(store: Store) -> None:
    store.create_conversation(conversation())
    store.save_conversation(conversation(title="moved on"))
    with pytest.raises(VersionConflict):
        store.save_conversation(conversation(), history=entry(1))
    assert store.history("c1", 10, None, NOW_S).entries == []


def test_the_history_keeps_the_newest_max_entries(store: Store) -> None:
    store.create_conversation(conversation())
    _record(store, [entry(1), entry(2), entry(MAX_ENTRIES + 1)])
    # Writing entry 1001 deleted entry 1 in the same write; entry 2 is the oldest kept.
    assert [e.seq for e in store.history("c1", 10, None, NOW_S).entries] == [MAX_ENTRIES + 1, 2]


def test_expired_history_entries_are_skipped_before_ttl_removes_them(store: Store) -> None:
    store.create_conversation(conversation())
    old = entry(1, at=(NOW_S - RETENTION_DAYS * 86_400 - 10) * 1000)
    _record(store, [old, entry(2), entry(3, at=old.at)])
    page = store.history("c1", 1, None, NOW_S)
    assert [e.seq for e in page.entries] == [2] and page.next_before is None


def test_history_written_with_a_turn_lands_with_it(store: Store) -> None:
    store.create_conversation(conversation())
    ended = turn(0, status="sealed", assistant_text="a", cost_usd=0.004)
    store.save_conversation(conversation(turn_count=1), ended, history=entry(1, kind="turn"))
    assert store.get_turns("c1") == [ended]
    assert [e.seq for e in store.history("c1", 10, None, NOW_S).entries] == [1]


# --- connections and subscriptions --------------------------------------------------------


def test_connection_put_get_delete(store: Store) -> None:
    conn = connection()
    store.put_connection(conn)
    assert store.get_connection("conn-1") == conn
    store.delete_connection("conn-1")
    assert store.get_connection("conn-1") is None


def test_put_connection_again_replaces_it(store: Store) -> None:
    store.put_connection(connection())
    moved = replace(connection(), owner="bob", expires_at=NOW_S + 9000)
    store.put_connection(moved)
    assert store.get_connection("conn-1") == moved


def test_get_missing_connection_is_none_and_delete_is_a_no_op(store: Store) -> None:
    assert store.get_connection("nope") is None
    store.delete_connection("nope")
    assert store.get_connection("nope") is None


def test_subscribe_per_channel_independently(store: Store) -> None:
    store.subscribe("conn-1", "c1", "surface", NOW_S + 60)
    store.subscribe("conn-2", "c1", "chat", NOW_S + 60)
    store.subscribe("conn-3", "c1", "chat", NOW_S + 60)
    assert store.subscribers("c1", "surface", NOW_S) == ["conn-1"]
    assert store.subscribers("c1", "chat", NOW_S) == ["conn-2", "conn-3"]
    store.unsubscribe("conn-1", "c1", "chat")
    assert store.subscribers("c1", "surface", NOW_S) == ["conn-1"]
    store.unsubscribe("conn-1", "c1", "surface")
    assert store.subscribers("c1", "surface", NOW_S) == []
    assert store.subscribers("c1", "chat", NOW_S) == ["conn-2", "conn-3"]
    assert store.subscribers("c2", "chat", NOW_S) == []


def test_subscribing_twice_keeps_one_entry_with_the_later_expiry(store: Store) -> None:
    store.subscribe("conn-1", "c1", "chat", NOW_S + 5)
    store.subscribe("conn-1", "c1", "chat", NOW_S + 500)
    assert store.subscribers("c1", "chat", NOW_S) == ["conn-1"]
    assert store.subscribers("c1", "chat", NOW_S + 100) == ["conn-1"]


def test_subscribers_skip_expired_entries(store: Store) -> None:
    store.subscribe("gone", "c1", "chat", NOW_S - 1)
    store.subscribe("edge", "c1", "chat", NOW_S)
    store.subscribe("live", "c1", "chat", NOW_S + 1)
    assert store.subscribers("c1", "chat", NOW_S) == ["live"]
    assert store.subscribers("c1", "chat", NOW_S - 2) == ["edge", "gone", "live"]


def test_delete_connection_removes_all_its_subscriptions_only(store: Store) -> None:
    store.put_connection(connection("conn-1"))
    store.put_connection(connection("conn-2"))
    for conversation_id in ["c1", "c2"]:
        for channel in CHANNELS:
            store.subscribe("conn-1", conversation_id, channel, NOW_S + 60)
            store.subscribe("conn-2", conversation_id, channel, NOW_S + 60)
    store.delete_connection("conn-1")
    for conversation_id in ["c1", "c2"]:
        for channel in CHANNELS:
            assert store.subscribers(conversation_id, channel, NOW_S) == ["conn-2"]
    assert store.get_connection("conn-2") == connection("conn-2")


def test_delete_connection_with_many_subscriptions(store: Store) -> None:
    store.put_connection(connection("conn-1"))
    for index in range(30):
        store.subscribe("conn-1", f"c{index}", "chat", NOW_S + 60)
        store.subscribe("conn-1", f"c{index}", "surface", NOW_S + 60)
    store.delete_connection("conn-1")
    assert all(store.subscribers(f"c{index}", "chat", NOW_S) == [] for index in range(30))
    assert all(store.subscribers(f"c{index}", "surface", NOW_S) == [] for index in range(30))
    assert store.get_connection("conn-1") is None


def test_conversation_ids_with_separators_do_not_collide(store: Store) -> None:
    store.subscribe("conn-1", "a#chat", "surface", NOW_S + 60)
    store.subscribe("conn-2", "a", "chat", NOW_S + 60)
    assert store.subscribers("a", "chat", NOW_S) == ["conn-2"]
    store.delete_connection("conn-1")
    assert store.subscribers("a#chat", "surface", NOW_S) == []
    assert store.subscribers("a", "chat", NOW_S) == ["conn-2"]


def test_consume_counts_up_to_the_limit_per_bucket_and_window(store: Store) -> None:
    assert [store.consume("frames#conn-1", 100, 3, NOW_S + 60) for _ in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert store.consume("frames#conn-1", 101, 3, NOW_S + 60)  # a new window
    assert store.consume("frames#conn-2", 100, 3, NOW_S + 60)  # another bucket


def test_load_reads_conversation_turns_and_live_subscribers_at_once(store: Store) -> None:
    store.create_conversation(conversation("c1"))
    saved = store.save_conversation(conversation("c1"), turn(0))
    store.save_conversation(saved, turn(1))
    store.subscribe("conn-1", "c1", "surface", NOW_S + 60)
    store.subscribe("conn-2", "c1", "chat", NOW_S + 60)
    store.subscribe("conn-3", "c1", "surface", NOW_S - 1)
    store.subscribe("conn-4", "c2", "surface", NOW_S + 60)
    snapshot = store.load("c1", NOW_S)
    assert snapshot is not None
    assert snapshot.conversation == store.get_conversation("c1")
    assert [t.index for t in snapshot.turns] == [0, 1]
    assert snapshot.subscribers == {"surface": ["conn-1"], "chat": ["conn-2"]}
    assert store.load("missing", NOW_S) is None


# --- limits: the conversation cap, list summaries by page, the spend ledger -----------------


def test_the_conversation_cap_is_counted_in_the_same_write(store: Store) -> None:
    from chalicelib.ports import ConversationCapReached as CapReached

    store.create_conversation(conversation("a"), cap=2)
    store.create_conversation(conversation("b"), cap=2)
    with pytest.raises(CapReached):
        store.create_conversation(conversation("c"), cap=2)
    assert store.get_conversation("c") is None
    # An id clash is not counted; another owner has a count of their own.
    with pytest.raises(AlreadyExists):
        store.create_conversation(conversation("a", owner="bob"), cap=2)
    store.create_conversation(conversation("x", owner="bob"), cap=2)
    store.create_conversation(conversation("y", owner="bob"), cap=2)


def test_concurrent_creations_never_pass_the_cap(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.ports import ConversationCapReached as CapReached

    if isinstance(store, DynamoStore):
        _serialize_moto_writes(monkeypatch)

    def create(index: int) -> bool:
        try:
            store.create_conversation(conversation(f"c{index}"), cap=3)
        except CapReached:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(create, range(12)))
    assert sum(created) == 3
    assert len(store.list_summaries("alice", 100, None).summaries) == 3


def test_summaries_page_newest_first_without_bodies(store: Store) -> None:
    from chalicelib.domain.conversation import summary_of

    for index in range(7):
        store.create_conversation(
            conversation(f"c{index}", created_at=1_000 + index, system="s" * 100_000)
        )
    store.create_conversation(conversation("t", created_at=1_003))  # a created_at tie: id breaks it
    store.create_conversation(conversation("other", owner="bob", created_at=5_000))
    pages, after = [], None
    while True:
        page = store.list_summaries("alice", 3, after)
        pages.append([summary.id for summary in page.summaries])
        after = page.next_after
        if after is None:
            break
    assert pages == [["c6", "c5", "c4"], ["t", "c3", "c2"], ["c1", "c0"]]
    saved = store.save_conversation(conversation("c6", created_at=1_006, title="renamed"))
    (first,) = store.list_summaries("alice", 1, None).summaries
    assert first == summary_of(saved)
    assert store.list_summaries("nobody", 3, None).summaries == []
    # A full last page has no next page (no empty page to fetch).
    assert store.list_summaries("alice", 8, None).next_after is None


def test_spend_adds_up_per_owner_and_day(store: Store) -> None:
    assert store.spent("alice", "2026-12-01") == 0
    assert store.add_spend("alice", "2026-12-01", 1_500, NOW_S + 86_400) == 1_500
    assert store.add_spend("alice", "2026-12-01", 250, NOW_S + 86_400) == 1_750
    store.add_spend("alice", "2026-12-02", 7, NOW_S + 86_400)
    store.add_spend("bob", "2026-12-01", 9, NOW_S + 86_400)
    assert store.spent("alice", "2026-12-01") == 1_750
    assert store.spent("alice", "2026-12-02") == 7


def test_a_reservation_counts_against_the_budget_until_it_is_settled(store: Store) -> None:
    day, expires = "2026-12-01", NOW_S + 86_400
    store.add_spend("alice", day, 1_000, expires)
    store.reserve_spend("alice", day, 3_000, 5_000, expires)
    assert (store.spent("alice", day), store.committed("alice", day)) == (1_000, 4_000)
    store.reserve_spend("alice", day, 3_000, 5_000, expires)  # 4,000 < 5,000: admitted
    with pytest.raises(BudgetExhausted):  # 7,000 committed: nothing more
        store.reserve_spend("alice", day, 1, 5_000, expires)
    assert store.committed("alice", day) == 7_000
    store.settle_spend("alice", day, 3_000, 1_200, expires)  # billed less than its worst case
    assert (store.spent("alice", day), store.committed("alice", day)) == (2_200, 5_200)
    store.settle_spend("alice", day, 3_000, 0, expires)  # never reached the model
    assert (store.spent("alice", day), store.committed("alice", day)) == (2_200, 2_200)
    store.reserve_spend("alice", day, 10_000, 5_000, expires)  # under the budget again
    assert store.committed("bob", day) == 0


def test_a_day_spent_before_reservations_existed_is_committed_by_its_spend(store: Store) -> None:
    day, expires = "2026-12-01", NOW_S + 86_400
    # The day's item as the code before reservations wrote it: `microUsd` alone.
    if isinstance(store, DynamoStore):
        key = {"pk": {"S": "USER#alice"}, "sk": {"S": f"SPEND#{day}"}}
        item = {**key, "microUsd": {"N": "6000"}}
        SESSION.client("dynamodb").put_item(TableName=TABLE_NAME, Item=item)
    else:
        store._spend["alice", day] = 6_000  # type: ignore[attr-defined]
    assert (store.spent("alice", day), store.committed("alice", day)) == (6_000, 6_000)
    with pytest.raises(BudgetExhausted):
        store.reserve_spend("alice", day, 1, 5_000, expires)


def test_concurrent_spend_is_never_lost(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    if isinstance(store, DynamoStore):
        _serialize_moto_writes(monkeypatch)  # DynamoDB's ADD is atomic; moto's is not
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: store.add_spend("alice", "d", 3, NOW_S), range(40)))
    assert store.spent("alice", "d") == 120


@pytest.mark.usefixtures("dynamodb")
def test_the_dynamodb_listing_reads_the_summary_index_only() -> None:
    from chalicelib.adapters.store_items import SUMMARY_GSI

    client = SESSION.client("dynamodb")
    store = DynamoStore(TABLE_NAME, client_factory=lambda: client)
    for index in range(3):
        store.create_conversation(conversation(f"c{index}", system="s" * 150_000))
    seen: list[dict[str, Any]] = []
    query = client.query

    def spy(**request: Any) -> Any:
        response = query(**request)
        seen.append({"request": request, "items": response.get("Items", [])})
        return response

    client.query = spy  # type: ignore[method-assign]
    page = store.list_summaries("alice", 2, None)
    assert [s.id for s in page.summaries] == ["c2", "c1"]
    assert len(seen) == 1 and seen[0]["request"]["IndexName"] == SUMMARY_GSI
    assert all("body" not in item for item in seen[0]["items"])


@pytest.mark.usefixtures("dynamodb")
def test_a_throttled_creation_is_an_aws_failure_not_a_cap() -> None:
    from botocore.exceptions import ClientError

    client = SESSION.client("dynamodb")
    store = DynamoStore(TABLE_NAME, client_factory=lambda: client)

    def cancelled(**_request: Any) -> Any:
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": "None"}, {"Code": "ThrottlingError"}],
            },
            "TransactWriteItems",
        )

    client.transact_write_items = cancelled  # type: ignore[method-assign]
    with pytest.raises(ClientError):
        store.create_conversation(conversation("c1"), cap=5)


def _closed(stored: Conversation) -> Conversation:
    return replace(stored, warming=replace(stored.warming, closed=True))


def test_closing_frees_a_place_and_reopening_takes_one_back_in_the_same_write(
    store: Store,
) -> None:
    from chalicelib.ports import ConversationCapReached, PlaceChange

    first = conversation("a")
    store.create_conversation(first, cap=2)
    store.create_conversation(conversation("b"), cap=2)
    closed = store.save_conversation(_closed(first), place=PlaceChange(False, 2))
    store.create_conversation(conversation("c"), cap=2)
    reopened = replace(closed, warming=replace(closed.warming, closed=False))
    with pytest.raises(ConversationCapReached):
        store.save_conversation(reopened, place=PlaceChange(True, 2))
    assert store.get_conversation("a") == closed  # nothing written
    second = store.get_conversation("b")
    assert second is not None
    store.save_conversation(_closed(second), place=PlaceChange(False, 2))
    assert store.save_conversation(reopened, place=PlaceChange(True, 2)).version == 2


def test_a_refused_save_names_the_cap_it_ran_into(store: Store) -> None:
    from chalicelib.ports import CapReached, ConversationCapReached, PlaceChange, SlotChange

    warm = conversation("w")
    store.create_conversation(warm, cap=2)
    enabled = replace(warm, warming=replace(warm.warming, enabled=True))
    store.save_conversation(enabled, slot=SlotChange(True, 1))  # the one warming slot
    first = conversation("a")
    store.create_conversation(first, cap=2)
    closed = store.save_conversation(_closed(first), place=PlaceChange(False, 2))
    warming = replace(closed.warming, closed=False, enabled=True)
    reopened = replace(closed, warming=warming)
    # Under the open cap, over the warming cap: the warming cap refuses.
    with pytest.raises(CapReached):
        store.save_conversation(reopened, slot=SlotChange(True, 1), place=PlaceChange(True, 2))
    store.create_conversation(conversation("b"), cap=2)
    # Over the open cap, under the warming cap: the open cap refuses.
    with pytest.raises(ConversationCapReached):
        store.save_conversation(reopened, slot=SlotChange(True, 5), place=PlaceChange(True, 2))
    assert store.get_conversation("a") == closed
