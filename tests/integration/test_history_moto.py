"""`GET /conversations/{id}/history` over the real app, DynamoDB (moto) and the price library: the
entries are the ones the panel counts, valid against contract/schema.json, paged, owned, expiring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from tests.conftest import SESSION
from tests.fakes.ports import field_value
from tests.moto_stack import ENV, OWNER, MotoStack, create, invoke, sealed_turn

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "contract" / "schema.json").read_text())
PAGE = Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/HistoryPage"})


def history(stack: MotoStack, conversation_id: str, query: str = "", owner: str = OWNER) -> Any:
    path = f"/conversations/{conversation_id}/history{query}"
    return stack.http.http.get(path, headers=stack.headers(owner))


def test_the_history_shows_every_warm_and_turn_the_panel_counted(
    stack: MotoStack, conversation_id: str
) -> None:
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    for _ in range(2):
        assert stack.fire_due() == {"action": "warmed"}
    stack.clock.advance(100)
    sealed_turn(stack, conversation_id, "still there?")
    response = history(stack, conversation_id)
    assert response.status_code == 200, response.body
    page = response.json_body
    assert list(PAGE.iter_errors(page)) == []
    entries = page["entries"]
    assert [(e["seq"], e["kind"]) for e in entries] == [
        (4, "turn"),
        (3, "warm"),
        (2, "warm"),
        (1, "turn"),
    ]
    panel = field_value(stack.frames("ws-1", "update")[-1], "savings")
    assert entries[0]["rescue"] and entries[0]["savedUsd"] == panel["savedUsd"] > 0
    assert entries[0]["totals"] == {"spentUsd": panel["spentUsd"], "savedUsd": panel["savedUsd"]}
    warms = [e for e in entries if e["kind"] == "warm"]
    assert sum(e["costUsd"] for e in warms) == panel["spentUsd"]
    assert all(e["outcome"] == "warmed" and e["delayMs"] >= 0 for e in warms)
    detail = stack.http.http.get(f"/conversations/{conversation_id}", headers=stack.headers(OWNER))
    assert [t["costUsd"] for t in detail.json_body["turns"]] == [
        entries[3]["costUsd"],
        entries[0]["costUsd"],
    ]
    # Stored in its own partition, with the TTL attribute DynamoDB expires it by.
    table = SESSION.resource("dynamodb").Table(ENV["TABLE_NAME"])
    item = table.get_item(Key={"pk": f"HISTORY#{conversation_id}", "sk": f"{1:010d}"})["Item"]
    assert int(str(item["expiresAt"])) == entries[3]["at"] // 1000 + 30 * 86_400


def test_history_pages_by_cursor_and_refuses_strangers_and_bad_queries(stack: MotoStack) -> None:
    conversation_id = create(stack)
    for text in ("one", "two", "three"):
        sealed_turn(stack, conversation_id, text)
    first = history(stack, conversation_id, "?limit=2").json_body
    assert [e["seq"] for e in first["entries"]] == [3, 2] and first["nextCursor"]
    rest = history(stack, conversation_id, f"?limit=2&cursor={first['nextCursor']}").json_body
    assert [e["seq"] for e in rest["entries"]] == [1] and rest["nextCursor"] is None
    stranger = history(stack, conversation_id, owner="bob")
    assert (stranger.status_code, stranger.json_body["error"]["code"]) == (404, "not_found")
    for query in ("?limit=0", "?limit=101", "?cursor=nope"):
        refused = history(stack, conversation_id, query)
        assert (refused.status_code, refused.json_body["error"]["code"]) == (400, "invalid_field")
    unauthorized = stack.http.http.get(f"/conversations/{conversation_id}/history")
    assert unauthorized.status_code == 401
