"""Savings over the real app, DynamoDB (moto) and the price library: per conversation on the panel
and in `GET /conversations/{id}`, per user in `GET /savings` from the atomic counter item."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SESSION
from tests.fakes.ports import field_value
from tests.moto_stack import (
    ENV,
    OWNER,
    MotoStack,
    create,
    invoke,
    join,
    sealed_turn,
)


def get(stack: MotoStack, path: str, owner: str = OWNER) -> Any:
    response = stack.http.http.get(path, headers=stack.headers(owner))
    assert response.status_code == 200, response.body
    return response.json_body


def warming_on(stack: MotoStack) -> str:
    conversation_id = create(stack)
    sealed_turn(stack, conversation_id)
    join(stack, "ws-1", conversation_id)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    return conversation_id


def test_every_warm_adds_its_cost_to_the_owners_counter(stack: MotoStack) -> None:
    conversation_id = warming_on(stack)
    assert get(stack, "/savings") == {
        "spentUsd": 0,
        "savedUsd": 0,
        "netUsd": 0,
        "rescues": 0,
        "warms": 0,
    }
    for _ in range(3):
        assert stack.fire_due() == {"action": "warmed"}
    detail = get(stack, f"/conversations/{conversation_id}")
    spent = detail["warming"]["totalCostUsd"]
    assert spent > 0
    assert detail["warming"]["savings"] == {
        "spentUsd": spent,
        "savedUsd": 0.0,
        "netUsd": -spent,
        "rescues": 0,
    }
    totals = get(stack, "/savings")
    assert totals == {
        "spentUsd": spent,
        "savedUsd": 0.0,
        "netUsd": -spent,
        "rescues": 0,
        "warms": 3,
    }
    # The counters are the conversation's own, on its state item, added to by the very writes
    # that record the warms (no item of their own to write per warm).
    table = SESSION.resource("dynamodb").Table(ENV["TABLE_NAME"])
    item = table.get_item(Key={"pk": f"CONV#{conversation_id}", "sk": "META"})["Item"]
    assert (item["warms"], float(str(item["spentUsd"]))) == (3, spent)


def test_a_turn_warming_kept_alive_is_a_rescue_on_the_panel_and_in_the_totals(
    stack: MotoStack,
) -> None:
    conversation_id = warming_on(stack)
    for _ in range(2):  # warms at 290 s and 580 s after the turn: alive until 880 s
        assert stack.fire_due() == {"action": "warmed"}
    stack.clock.advance(100)  # 680 s after the turn: its own cache expired at 300 s
    sealed_turn(stack, conversation_id, "still there?")
    panel = field_value(stack.frames("ws-1", "update")[-1], "savings")
    assert panel["rescues"] == 1 and panel["savedUsd"] > 0
    totals = get(stack, "/savings")
    assert (totals["rescues"], totals["savedUsd"]) == (1, panel["savedUsd"])
    assert totals["netUsd"] == pytest.approx(panel["savedUsd"] - panel["spentUsd"], abs=1e-8)
    detail = get(stack, f"/conversations/{conversation_id}")
    assert detail["warming"]["savings"] == panel


def test_each_user_sees_their_own_totals(stack: MotoStack) -> None:
    warming_on(stack)
    assert stack.fire_due() == {"action": "warmed"}
    assert get(stack, "/savings", owner="bob")["warms"] == 0
    assert get(stack, "/savings")["warms"] == 1


def test_the_savings_route_needs_a_token(stack: MotoStack) -> None:
    response = stack.http.http.get("/savings")
    assert response.status_code == 401
    assert response.json_body["error"]["code"] == "unauthorized"
