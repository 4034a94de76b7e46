"""Writes that succeed but look like failures, and caps that must hold under concurrency.

botocore retries a DynamoDB call after a 500 or a timeout (up to 10 attempts): when the first
attempt of a conditional put landed, the retry fails its own condition. The product must know its
own write and never cancel the timer the stored state references. The warming cap is enforced by
the same write that enables warming, so concurrent enables cannot pass it together.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import moto
import pytest

from chalicelib.adapters.store import DynamoStore, create_table
from chalicelib.domain.conversation import Conversation
from chalicelib.services import Limits
from tests.conftest import SESSION, TABLE_NAME
from tests.fakes.ports import World, world
from tests.fakes.store import InMemoryStore
from tests.helpers import RacingStore, conversation_with_turn, invoke, subscribe
from tests.moto_stack import MotoStack, sealed_turn
from tests.moto_stack import invoke as ws_invoke


def retry_after_landing(client: Any, operation: str, sort_key: str | None = None) -> list[int]:
    """Make botocore retry the next `operation` (on an item with `sort_key`, if given) once after
    its first attempt succeeded, as it does when the response to a landed write is a 500 or is
    lost to a timeout."""
    attempts: list[int] = []

    def needs_retry(attempts_so_far: int = 0, **kwargs: Any) -> int | None:
        if sort_key is not None:
            body = json.loads((kwargs.get("request_dict") or {}).get("body") or b"{}")
            if body.get("Key", {}).get("sk", {}).get("S") != sort_key:
                return None
        if not attempts and attempts_so_far == 1:
            attempts.append(attempts_so_far)
            return 0  # retry at once
        return None

    event = f"needs-retry.dynamodb.{operation}"
    client.meta.events.register(event, lambda **kw: needs_retry(kw.get("attempts", 0), **kw))
    return attempts


def test_a_retried_put_whose_first_attempt_landed_is_our_own_write(
    stack: MotoStack, conversation_id: str
) -> None:
    ws_invoke(stack, "ws-1", conversation_id, "toggle", True)
    # The state item is updated in place (it holds the savings counters): one UpdateItem.
    client = stack.services.store.client  # type: ignore[attr-defined]
    retried = retry_after_landing(client, "UpdateItem", sort_key="META")
    ws_invoke(stack, "ws-1", conversation_id, "set-interval", 200)  # re-books: one update
    assert retried == [1]  # the scenario happened: a retry after a landed put
    state = stack.services.store.get_conversation(conversation_id).warming  # type: ignore[union-attr]
    assert state.enabled and state.status == "scheduled"
    # The timer the stored state references is alive, and it is the only one.
    (schedule,) = stack.live_schedules(conversation_id)
    assert schedule["Name"] == state.timer_ref
    assert json.loads(schedule["Target"]["Input"])["seq"] == state.seq
    update = stack.frames("ws-1", "update")[-1]
    assert update["fields"][3]["value"] == "scheduled"
    assert stack.frames("ws-1", "error") == []


def test_a_retried_transaction_whose_first_attempt_landed_is_our_own_write(
    stack: MotoStack,
    conversation_id: str,
) -> None:
    ws_invoke(stack, "ws-1", conversation_id, "toggle", True)
    client = stack.services.store.client  # type: ignore[attr-defined]
    retried = retry_after_landing(client, "TransactWriteItems")
    sealed_turn(stack, conversation_id, text="and again")  # the seal writes turn + state at once
    assert retried == [1]
    state = stack.services.store.get_conversation(conversation_id).warming  # type: ignore[union-attr]
    (schedule,) = stack.live_schedules(conversation_id)
    assert (state.status, schedule["Name"]) == ("scheduled", state.timer_ref)


@pytest.fixture(params=["memory", "dynamodb"])
def racing(request: pytest.FixtureRequest) -> Iterator[tuple[World, RacingStore]]:
    if request.param == "memory":
        store = RacingStore(InMemoryStore())
        yield world(store=store), store
        return
    with moto.mock_aws():
        create_table(SESSION.client("dynamodb"), TABLE_NAME)
        store = RacingStore(DynamoStore(TABLE_NAME, lambda: SESSION.client("dynamodb")))
        yield world(store=store), store


def test_concurrent_enables_cannot_pass_the_warming_cap_together(
    racing: tuple[World, RacingStore],
) -> None:
    w, store = racing
    w.services.ports.limits = Limits(warming_conversations=2)
    ids = [conversation_with_turn(w).id for _ in range(4)]
    for cid in ids:
        subscribe(w, f"ws-{cid}", cid)

    def enable(index: int) -> None:
        if index + 1 < len(ids):
            store.before_next_save = lambda: enable(index + 1)
        invoke(w, f"ws-{ids[index]}", ids[index], "toggle", True)

    # Each enable's write races the next one: all four pass any check made before writing.
    enable(0)
    enabled = [c for c in ids if w.store.get_conversation(c).warming.enabled]  # type: ignore[union-attr]
    assert len(enabled) == 2
    refused = [c for c in ids if w.sockets.of(f"ws-{c}", "error")]
    assert len(refused) == 2
    for cid in refused:
        (error,) = w.sockets.of(f"ws-{cid}", "error")
        assert (error["code"], error["conversationId"]) == ("limit_reached", cid)
    # Disabling one frees its place at once.
    invoke(w, f"ws-{enabled[0]}", enabled[0], "toggle", False)
    invoke(w, f"ws-{refused[0]}", refused[0], "toggle", True)
    assert w.store.get_conversation(refused[0]).warming.enabled  # type: ignore[union-attr]


def test_the_warming_cap_check_reads_no_conversation(racing: tuple[World, RacingStore]) -> None:
    w, store = racing
    cid = conversation_with_turn(w, title="mine").id
    subscribe(w, "ws-1", cid)
    listed: list[str] = []

    def listing(owner: str) -> list[Conversation]:
        listed.append(owner)
        return []

    store.list_conversations = listing  # type: ignore[attr-defined]
    invoke(w, "ws-1", cid, "toggle", True)
    assert listed == [] and w.store.get_conversation(cid).warming.enabled  # type: ignore[union-attr]
