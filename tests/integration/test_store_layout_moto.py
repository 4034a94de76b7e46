"""The state/fixed layout over DynamoDB (moto): the small META item, the SYSTEM item, the fixed part
read eventually consistent with its strong fallback, legacy items and their one-time migration."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import msgspec
import pytest

from chalicelib.adapters.store import DynamoStore
from chalicelib.adapters.store_items import (
    conversation_item,
    encode_summary,
    owner_index_keys,
    turn_item,
)
from chalicelib.adapters.store_migration import main, migrate
from chalicelib.domain.conversation import Conversation, Turn, summary_of
from chalicelib.ports import VersionConflict
from tests.conftest import SESSION, TABLE_NAME

BIG_SYSTEM = "S" * (200 * 1024 - 2)


@pytest.fixture
def store(dynamodb: Any) -> Iterator[DynamoStore]:
    yield DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb"))


def conversation(conversation_id: str = "c1", system: str = "You are terse.") -> Conversation:
    return Conversation(
        id=conversation_id,
        owner="alice",
        created_at=1_700_000_000_000,
        title="A chat",
        model="claude-sonnet-4-6",
        system=system,
        max_tokens=1024,
    )


def sealed(index: int, conversation_id: str = "c1") -> Turn:
    return Turn(conversation_id, index, f"q{index}", 1000 + index, "sealed", f"a{index}")


def item(conversation_id: str, sort_key: str) -> dict[str, Any] | None:
    key = {"pk": {"S": f"CONV#{conversation_id}"}, "sk": {"S": sort_key}}
    found = SESSION.client("dynamodb").get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True)
    return found.get("Item")


def put_legacy(conversation: Conversation, turns: list[Turn] = ()) -> None:  # type: ignore[assignment]
    """The META (and turns) as the code before the split wrote them: the prompt in the body, the
    owner index keys and the summary on META."""
    legacy = conversation_item(conversation, conversation.version)
    body = msgspec.to_builtins(conversation)
    del body["version"]
    gsi1pk, gsi1sk = owner_index_keys(conversation)
    legacy.update(
        body={"S": msgspec.json.encode(body).decode()},
        gsi1pk={"S": gsi1pk},
        gsi1sk={"S": gsi1sk},
        summary={"S": encode_summary(summary_of(conversation))},
    )
    client = SESSION.client("dynamodb")
    client.put_item(TableName=TABLE_NAME, Item=legacy)
    for turn in turns:
        client.put_item(TableName=TABLE_NAME, Item=turn_item(turn))


def with_turns(store: DynamoStore, count: int) -> Conversation:
    current = conversation()
    store.create_conversation(current)
    for index in range(count):
        current = store.save_conversation(replace(current, turn_count=index + 1), sealed(index))
    return current


def test_the_state_item_stays_small_and_the_prompt_has_its_own(store: DynamoStore) -> None:
    created = conversation(system=BIG_SYSTEM)
    store.create_conversation(created)
    saved = store.save_conversation(created)
    meta = item("c1", "META")
    assert meta is not None and "system" not in msgspec.json.decode(meta["body"]["S"])
    assert len(msgspec.json.encode(meta)) < 3 * 1024  # the 200 KB prompt is not in it
    assert item("c1", "SYSTEM") == {
        "pk": {"S": "CONV#c1"},
        "sk": {"S": "SYSTEM"},
        "system": {"S": BIG_SYSTEM},
    }
    fresh = DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb"))
    assert fresh.get_conversation("c1") == saved
    assert fresh.list_conversations("alice") == [saved]


def lagging(store: DynamoStore, drop: Any) -> list[bool]:
    """Eventually consistent queries answer as a replica behind the writes: `drop(items)`
    returns what it still shows. Returns each query's ConsistentRead."""
    client = store.client
    real = client.query
    reads: list[bool] = []

    def query(**request: Any) -> Any:
        reads.append(bool(request.get("ConsistentRead")))
        answer = real(**request)
        if not request.get("ConsistentRead"):
            answer = {**answer, "Items": drop(answer["Items"])}
        return answer

    client.query = query  # type: ignore[method-assign]
    return reads


def test_load_reads_the_fixed_part_eventually_consistent_when_it_is_complete(
    store: DynamoStore,
) -> None:
    current = with_turns(store, 3)
    reads = lagging(store, lambda items: items)
    snapshot = store.load("c1", 0)
    assert snapshot is not None and snapshot.conversation == current
    assert snapshot.turns == [sealed(0), sealed(1), sealed(2)]
    assert reads == [True, False]  # the state strongly, the prompt and turns at half price


@pytest.mark.parametrize(
    "replica",
    [
        lambda items: items[:-1],  # the last sealed turn not replicated yet
        lambda items: [i for i in items if i["sk"]["S"] != "SYSTEM"],  # nor the prompt
        # The turn as it was while generating, before the write that sealed it.
        lambda items: [
            {**i, "body": {"S": i["body"]["S"].replace('"sealed"', '"generating"')}}
            if i["sk"]["S"] == "TURN#000002"
            else i
            for i in items
        ],
    ],
    ids=["turn-missing", "system-missing", "turn-stale"],
)
def test_load_reads_strongly_when_the_eventual_read_is_behind_the_state(
    store: DynamoStore, replica: Any
) -> None:
    current = with_turns(store, 3)
    reads = lagging(store, replica)
    snapshot = store.load("c1", 0)
    assert snapshot is not None and snapshot.conversation == current
    assert snapshot.turns == [sealed(0), sealed(1), sealed(2)]
    assert reads == [True, False, True]


def test_the_system_prompt_is_read_once_per_container(store: DynamoStore) -> None:
    store.create_conversation(conversation())
    reads: list[str] = []
    store.client.meta.events.register(
        "provide-client-params.dynamodb.GetItem",
        lambda params, **_: reads.append(params["Key"]["sk"]["S"]),
    )
    for _ in range(3):
        assert store.get_conversation("c1") == conversation()
    assert reads == ["META", "SYSTEM", "META", "META"]


def test_a_legacy_item_reads_as_before_and_its_first_save_moves_the_prompt(
    store: DynamoStore,
) -> None:
    legacy = replace(conversation(system=BIG_SYSTEM), turn_count=1, version=4)
    put_legacy(legacy, [sealed(0)])
    assert store.get_conversation("c1") == legacy
    snapshot = store.load("c1", 0)
    assert snapshot is not None and snapshot.conversation == legacy
    assert snapshot.turns == [sealed(0)]
    saved = store.save_conversation(replace(legacy, title="renamed"))
    meta = item("c1", "META")
    assert meta is not None and "system" not in msgspec.json.decode(meta["body"]["S"])
    assert item("c1", "SYSTEM") is not None
    fresh = DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb"))
    assert fresh.get_conversation("c1") == saved
    assert saved.system == BIG_SYSTEM and saved.version == 5


def test_the_migration_moves_every_legacy_conversation_once(store: DynamoStore) -> None:
    old = [replace(conversation(f"old-{n}", system=f"prompt {n}"), version=n + 1) for n in range(3)]
    for legacy in old:
        put_legacy(legacy)
    store.create_conversation(conversation("new"))
    store.subscribe("conn-1", "old-0", "surface", 2_000_000_000)  # not a conversation item
    assert migrate(store.client, TABLE_NAME).__dict__ == {"seen": 4, "moved": 3}
    fresh = DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb"))
    for legacy in old:
        meta = item(legacy.id, "META")
        assert meta is not None and "system" not in msgspec.json.decode(meta["body"]["S"])
        assert fresh.get_conversation(legacy.id) == legacy  # the same version: nothing lost
    assert fresh.get_conversation("new") == conversation("new")
    assert migrate(store.client, TABLE_NAME).__dict__ == {"seen": 4, "moved": 0}


def test_a_save_racing_the_migration_keeps_its_state_and_the_prompt(store: DynamoStore) -> None:
    legacy = replace(conversation(system="keep me"), version=2)
    put_legacy(legacy)
    read = store.get_conversation("c1")  # a save is being prepared on the legacy read
    assert read == legacy
    client = SESSION.client("dynamodb")
    real = client.transact_write_items
    raced: list[int] = []

    def racing(**request: Any) -> Any:
        if not raced:  # the code from before the split saves in between: legacy again, v3
            raced.append(1)
            put_legacy(replace(legacy, title="raced", version=3))
        return real(**request)

    client.transact_write_items = racing  # type: ignore[method-assign]
    assert migrate(client, TABLE_NAME).moved == 1
    assert raced == [1]
    fresh = DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb"))
    assert fresh.get_conversation("c1") == replace(legacy, title="raced", version=3)
    # The save prepared on the legacy read at v2 loses to v3, as any stale save does.
    with pytest.raises(VersionConflict):
        store.save_conversation(replace(legacy, title="late"))


def test_a_save_prepared_before_the_migration_lands_after_it(store: DynamoStore) -> None:
    legacy = replace(conversation(system="keep me"), version=2)
    put_legacy(legacy)
    read = store.get_conversation("c1")
    assert read is not None
    assert migrate(store.client, TABLE_NAME).moved == 1
    saved = store.save_conversation(replace(read, title="after"))  # v2 still: it passes
    fresh = DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb"))
    assert fresh.get_conversation("c1") == saved
    assert saved.system == "keep me"


def test_the_reverse_migration_gives_older_code_its_layout_back(store: DynamoStore) -> None:
    legacy = replace(conversation("old", system="prompt"), version=3)
    put_legacy(legacy)
    store.create_conversation(conversation("new", system="fresh"))
    legacy_meta = item("old", "META")
    assert migrate(store.client, TABLE_NAME).moved == 1
    assert migrate(store.client, TABLE_NAME, reverse=True).__dict__ == {"seen": 2, "moved": 2}
    reversed_meta = item("old", "META")
    assert reversed_meta is not None and legacy_meta is not None
    body = msgspec.json.decode(reversed_meta.pop("body")["S"])
    assert body == msgspec.json.decode(legacy_meta.pop("body")["S"])  # what the older code wrote
    assert reversed_meta == legacy_meta
    new_meta = item("new", "META")
    assert new_meta is not None
    assert msgspec.json.decode(new_meta["body"]["S"])["system"] == "fresh"
    fresh = DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb"))
    assert fresh.get_conversation("old") == legacy
    assert fresh.get_conversation("new") == replace(conversation("new", system="fresh"))
    assert migrate(store.client, TABLE_NAME, reverse=True).moved == 0


def test_the_migration_command_names_its_table(
    store: DynamoStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_the_migration_moves_the_index_keys_off_the_state_item(store: DynamoStore) -> None:
    # Issue 24: a warm writes META; while META carries the index keys, every warm writes both
    # indexes too. After the migration only the LIST item is in them, and the list is the same.
    old = [replace(conversation(f"old-{n}"), created_at=1_700_000_000_000 + n) for n in range(2)]
    for legacy in old:
        put_legacy(legacy)
    before = store.list_summaries("alice", 10, None)
    assert migrate(store.client, TABLE_NAME).moved == 2
    for legacy in old:
        meta = item(legacy.id, "META")
        assert meta is not None and not {"gsi1pk", "gsi1sk", "summary"} & set(meta)
        gsi1pk, gsi1sk = owner_index_keys(legacy)
        assert item(legacy.id, "LIST") == {
            "pk": {"S": f"CONV#{legacy.id}"},
            "sk": {"S": "LIST"},
            "owner": {"S": "alice"},
            "gsi1pk": {"S": gsi1pk},
            "gsi1sk": {"S": gsi1sk},
        }
    assert store.list_summaries("alice", 10, None) == before
    assert [s.id for s in before.summaries] == ["old-1", "old-0"]


def test_the_reverse_migration_gives_the_owner_its_savings_back(store: DynamoStore) -> None:
    from chalicelib.domain.warming import Tally

    created = conversation("c1")
    store.create_conversation(created)
    store.save_conversation(created, tally=Tally(spent_usd=0.25, warms=2))
    assert migrate(store.client, TABLE_NAME, reverse=True).moved == 1
    meta = item("c1", "META")
    assert meta is not None and not {"spentUsd", "warms"} & set(meta)
    assert item("c1", "LIST") is None
    assert store.savings("alice") == Tally(spent_usd=0.25, warms=2)  # now from SAVINGS alone
    key = {"pk": {"S": "USER#alice"}, "sk": {"S": "SAVINGS"}}
    owner = SESSION.client("dynamodb").get_item(TableName=TABLE_NAME, Key=key)["Item"]
    assert (owner["warms"]["N"], owner["spentUsd"]["N"]) == ("2", "0.25")
    # Forward again: the keys move back to LIST, the owner's total stays where it is.
    assert migrate(store.client, TABLE_NAME).moved == 1
    assert store.savings("alice") == Tally(spent_usd=0.25, warms=2)


def _item_size(found: dict[str, Any]) -> int:
    """Attribute names plus values, as DynamoDB sizes an item ("Item sizes and formats"):
    strings in UTF-8, numbers about one byte per two digits plus one."""
    size = 0
    for name, value in found.items():
        ((kind, raw),) = value.items()
        size += len(name.encode()) + (len(raw.encode()) if kind == "S" else len(raw) // 2 + 1)
    return size


def test_a_warming_state_item_stays_under_one_kb_and_reads_back_whole(
    store: DynamoStore,
) -> None:
    # Issue 24: every warm writes META twice, 1 unit each while it stays under 1 KB. The body
    # leaves out what is still at its default; the read fills it back in.
    from chalicelib.domain.warming import Tally, WarmingState, WarmStats

    owner = "0f4c3a5e-1b2d-4e6f-8a9b-0c1d2e3f4a5b"  # a Cognito sub: 36 characters
    created = replace(conversation(system=BIG_SYSTEM), id="a" * 32, owner=owner)
    store.create_conversation(created)
    stats = WarmStats(
        warms=41, input_tokens=123, cache_read_tokens=205_000, total_cost_usd=0.02051234
    )
    warming = WarmingState(
        enabled=True,
        status="scheduled",
        seq=1234,
        next_warm_at=1_799_151_278_500,
        last_warm_at=1_799_150_988_500,
        last_refresh_at=1_799_150_988_500,
        turn_expires_at=1_799_150_708_500,
        has_prefix=True,
        idle_warms=7,
        prefix_tokens=51_200,
        stats=replace(
            stats, last_warm_cost_usd=0.0005, last_warm_tokens=5000, last_cache_pct=100.0
        ),
    )
    warm = replace(created, warming=warming, turn_count=12, history_count=1300)
    saved = store.save_conversation(warm, tally=Tally(spent_usd=0.00051234, warms=1))
    meta = item(created.id, "META")
    assert meta is not None and _item_size(meta) < 1024
    assert "gsi1pk" not in meta and "summary" not in meta  # no index writes either
    fresh = DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb"))
    assert fresh.get_conversation(created.id) == saved
