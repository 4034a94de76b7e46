"""HTTP bodies against contract/schema.json: the schema and the edge's parse agree on every body.

The same check as the frames' (tests/unit/test_contract_schema.py): bodies the schema accepts
parse, bodies it refuses are refused with the documented code, and the parse reads exactly the
keys the schema's body definitions declare, so a key added on one side only fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from chalicelib.domain.conversation import MAX_SYSTEM_BYTES, MAX_TEXT_BYTES
from chalicelib.domain.errors import Refused
from chalicelib.wire import commands

ROOT = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((ROOT / "contract" / "schema.json").read_text())
DEFS: dict[str, Any] = SCHEMA["$defs"]

Parse = Callable[[Mapping[str, Any]], object]
BODIES: dict[str, Parse] = {
    "CreateConversationBody": commands.create_conversation,
    "StartTurnBody": commands.start_turn,
}


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$defs": DEFS, "$ref": f"#/$defs/{name}"})


class Recording(Mapping[str, Any]):
    """A body that remembers every key the parse looked up."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


@pytest.mark.parametrize("name", BODIES)
def test_the_parse_reads_exactly_the_keys_the_schema_declares(name: str) -> None:
    definition = DEFS[name]
    assert definition["additionalProperties"] is False
    body = Recording({"text": "hi"} if name == "StartTurnBody" else {})
    BODIES[name](body)
    assert body.read == set(definition["properties"])
    declared = commands.CREATE_KEYS if name == "CreateConversationBody" else commands.TURN_KEYS
    assert set(declared) == set(definition["properties"])


def test_every_route_body_is_one_of_these() -> None:
    assert {route["body"] for route in SCHEMA["x-routes"] if "body" in route} == set(BODIES)


CREATE_ACCEPTED: list[dict[str, Any]] = [
    {},
    {"title": "Notes", "system": "Be brief.", "model": "claude-sonnet-5-5", "maxTokens": 1024},
    {"title": None, "system": None, "model": None, "maxTokens": None, "cacheRetention": None},
    {"title": "", "system": ""},
    {"title": "t" * 200, "cacheRetention": "1h"},
    {"maxTokens": 8192.0},
    {"system": "é" * ((MAX_SYSTEM_BYTES - 2) // 2)},
]
CREATE_REFUSED: list[dict[str, Any]] = [
    {"max_tokens": 1024},
    {"title": "Notes", "colour": "red"},
    {"model": ""},
    {"model": 5},
    {"title": "t" * 201},
    {"title": 7},
    {"system": "   \n"},
    {"maxTokens": 0},
    {"maxTokens": 1.5},
    {"maxTokens": True},
    {"maxTokens": "1024"},
    {"cacheRetention": "10m"},
]
TURN_ACCEPTED: list[dict[str, Any]] = [
    {"text": "Hello"},
    {"text": " x "},
    {"text": "é" * ((MAX_TEXT_BYTES - 2) // 2)},
]
TURN_REFUSED: list[dict[str, Any]] = [
    {},
    {"text": ""},
    {"text": " \n\t "},
    {"text": None},
    {"text": 5},
    {"text": "Hello", "model": "claude-sonnet-5-5"},
]


def _verdict(parse: Parse, body: dict[str, Any]) -> str:
    try:
        parse(body)
    except Refused as refused:
        return refused.code
    return "ok"


@pytest.mark.parametrize(
    ("name", "body", "accepted"),
    [("CreateConversationBody", b, True) for b in CREATE_ACCEPTED]
    + [("CreateConversationBody", b, False) for b in CREATE_REFUSED]
    + [("StartTurnBody", b, True) for b in TURN_ACCEPTED]
    + [("StartTurnBody", b, False) for b in TURN_REFUSED],
    ids=lambda value: json.dumps(value)[:40] if isinstance(value, dict) else str(value),
)
def test_the_schema_and_the_parse_agree(name: str, body: dict[str, Any], accepted: bool) -> None:
    # Byte limits are not expressible in JSON Schema; the bodies above stay under them.
    assert validator(name).is_valid(body) is accepted
    verdict = _verdict(BODIES[name], body)
    unknown = set(body) - set(DEFS[name]["properties"])
    expected_code = "invalid_text" if name == "StartTurnBody" and not unknown else "invalid_field"
    assert verdict == ("ok" if accepted else expected_code)


def test_byte_limits_are_refused_past_the_schema() -> None:
    # The schema says "bytes" in prose only; the parse counts them.
    assert _verdict(commands.start_turn, {"text": "é" * (MAX_TEXT_BYTES // 2)}) == "invalid_text"
    too_long = {"system": "é" * (MAX_SYSTEM_BYTES // 2)}
    assert _verdict(commands.create_conversation, too_long) == "invalid_field"


def test_an_unknown_key_names_itself_and_what_the_body_takes() -> None:
    with pytest.raises(Refused) as refused:
        commands.create_conversation({"max_tokens": 5, "title": "x"})
    assert refused.value.message == (
        "unknown field 'max_tokens'; this body takes title, system, model, maxTokens, cacheRetention"
    )


def test_null_and_empty_mean_the_defaults_where_the_contract_says_so() -> None:
    command = commands.create_conversation(
        {"title": "", "system": None, "maxTokens": 64.0, "cacheRetention": None}
    )
    assert command == commands.CreateConversation(None, None, None, 64, "auto")
