"""contract/schema.json against the backend's own definitions, so the two cannot drift.

The schema is what front ends build against (clients/js generates its types from it); the backend
defines the same things in code. Every enum, table and frame shape in the schema is compared here
with its definition in chalicelib (imported, not copied), and frames built by the backend's own
builders are validated against the schema, so a change on either side fails this test.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

import pytest
from jsonschema import Draft202012Validator

from chalicelib import auth, ports
from chalicelib.domain import conversation as conversation_domain
from chalicelib.domain import errors as domain_errors
from chalicelib.domain import history, warming
from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.domain.pricing import TTL_SECONDS, Usage
from chalicelib.domain.timing import TIMINGS
from chalicelib.domain.turns import TurnEndedNotice
from chalicelib.domain.warming import WarmingState, WarmStats
from chalicelib.services.frames import CONNECTION_LIFETIME_S, AuthorityEnded
from chalicelib.services.ports import Limits
from chalicelib.wire import commands, frames, replies, surface, views
from chalicelib.wire import errors as wire_errors

ROOT = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((ROOT / "contract" / "schema.json").read_text())
DEFS: dict[str, Any] = SCHEMA["$defs"]
C = "5f0c0d1e2f3a4b5c6d7e8f9a0b1c2d3e"


def validator(name: str) -> Draft202012Validator:
    """A validator for one definition (its refs resolve against the same $defs)."""
    assert name in DEFS, name
    return Draft202012Validator({"$defs": DEFS, "$ref": f"#/$defs/{name}"})


def assert_valid(name: str, instance: Any) -> None:
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def enum(name: str) -> list[Any]:
    values: list[Any] = DEFS[name]["enum"]
    return values


def one_of(name: str) -> list[str]:
    return [entry["$ref"].rsplit("/", 1)[1] for entry in DEFS[name]["oneOf"]]


def test_the_schema_is_valid_json_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


# --- enums and tables --------------------------------------------------------------------------


def test_error_codes_and_http_statuses_are_the_backends() -> None:
    assert SCHEMA["x-errorHttpStatus"] == wire_errors.STATUS
    assert enum("ErrorCode") == list(domain_errors.CODES) == list(wire_errors.STATUS)


def test_warming_statuses_are_the_backends() -> None:
    assert enum("WarmingStatus") == list(get_args(warming.Status))


def test_turn_statuses_abort_reasons_and_retentions_are_the_backends() -> None:
    assert enum("TurnStatus") == list(get_args(conversation_domain.TurnStatus))
    assert enum("AbortReason") == list(get_args(conversation_domain.AbortReason))
    assert enum("CacheRetention") == list(get_args(warming.Retention)) == list(TTL_SECONDS)
    assert enum("CacheRetentionSetting") == list(get_args(warming.RetentionSetting))


def test_surface_constants_are_the_backends() -> None:
    assert DEFS["SurfaceId"]["const"] == surface.SURFACE_ID
    assert DEFS["ToggleAction"]["const"] == surface.TOGGLE_ACTION
    assert DEFS["SetIntervalAction"]["const"] == surface.SET_INTERVAL_ACTION
    assert tuple(enum("Action")) == surface.ACTIONS
    assert DEFS["TimerComponent"]["const"] == surface.TIMER_COMPONENT


def test_limits_are_the_backends() -> None:
    limits = SCHEMA["x-limits"]
    assert limits["maxFrameBytes"] == frames.MAX_FRAME_BYTES
    assert limits["maxBodyBytes"] == commands.MAX_BODY_BYTES
    assert limits["maxRequestIdChars"] == frames.MAX_REQUEST_ID_CHARS
    assert DEFS["RequestId"]["maxLength"] == frames.MAX_REQUEST_ID_CHARS
    # The backend full-matches its pattern; the schema anchors the same one.
    anchored = f"^{frames.ID_PATTERN.pattern}$"
    assert limits["conversationIdPattern"] == DEFS["ConversationId"]["pattern"] == anchored
    assert limits["maxTextBytes"] == conversation_domain.MAX_TEXT_BYTES
    assert limits["maxTitleChars"] == conversation_domain.MAX_TITLE_CHARS
    assert limits["maxSystemBytes"] == conversation_domain.MAX_SYSTEM_BYTES
    assert limits["maxPushBytes"] == frames.MAX_PUSH_BYTES
    assert limits["minIntervalSeconds"] == TIMINGS.min_interval_s
    assert limits["lateTickGuardSeconds"] == TIMINGS.late_guard_s
    assert list(limits["defaultIntervalSeconds"]) == list(TTL_SECONDS)
    for retention, high in limits["maxIntervalSeconds"].items():
        assert warming.interval_bounds(retention) == (TIMINGS.min_interval_s, high)
        assert limits["defaultIntervalSeconds"][retention] == warming.default_interval(retention)
    caps = Limits()
    assert limits["framesPerSecondPerConnection"] == caps.frames_per_second
    assert limits["turnsPerMinutePerUser"] == caps.turns_per_minute
    assert limits["warmingConversationsPerUser"] == caps.warming_conversations
    assert limits["conversationsPerUser"] == caps.conversations
    assert limits["dailyBudgetUsdPerUser"] == caps.daily_budget_usd
    assert limits["listPageSize"] == {
        "default": commands.DEFAULT_PAGE_SIZE,
        "max": commands.MAX_PAGE_SIZE,
    }
    assert limits["historyEntriesPerConversation"] == history.MAX_ENTRIES
    assert limits["historyRetentionDays"] == history.RETENTION_DAYS
    assert limits["tokenClockSkewSeconds"] == auth.LEEWAY_S
    assert limits["maxConnectionSeconds"] == CONNECTION_LIFETIME_S


def test_the_error_that_closes_a_connection_is_the_backends() -> None:
    code = AuthorityEnded("x").code
    assert f"An `{code}` error frame is the connection's last" in DEFS["ErrorFrame"]["description"]


# --- surface fields ----------------------------------------------------------------------------


def _states() -> list[WarmingState]:
    warmed = WarmStats(
        warms=3,
        input_tokens=30,
        cache_read_tokens=15000,
        cache_write_tokens=0,
        total_cost_usd=0.011,
        last_warm_cost_usd=0.001563,
        last_warm_tokens=5210,
        last_cache_pct=100.0,
    )
    base = WarmingState()
    states = [base, WarmingState(retention="1h"), WarmingState(auto=True, retention="1h")]
    states.append(
        replace(
            base,
            enabled=True,
            status="scheduled",
            interval_choice=20,
            next_warm_at=1767614647000,
            last_warm_at=1767614407000,
            stats=warmed.with_rescue(0.069),
        )
    )
    states += [replace(base, status=status) for status in get_args(warming.Status)]
    return states


@pytest.mark.parametrize("state", _states(), ids=lambda s: f"{s.retention}-{s.status}")
def test_surface_fields_match_the_schema(state: WarmingState) -> None:
    fields = surface.fields(state)
    assert_valid("SurfaceFields", fields)
    assert [field["id"] for field in fields] == enum("FieldId")
    # Each field's own definition names the same kind the backend sends.
    for field, name in zip(fields, one_of("SurfaceField"), strict=True):
        assert DEFS[name]["properties"]["id"]["const"] == field["id"]
        assert DEFS[name]["properties"]["kind"]["const"] == field["kind"]
        assert field["kind"] in enum("FieldKind")


def test_every_field_kind_is_used() -> None:
    kinds = {field["kind"] for field in surface.fields(WarmingState())}
    assert kinds == set(enum("FieldKind"))


def test_surface_and_update_frames_match_the_schema() -> None:
    for state in _states():
        assert_valid("SurfaceFrame", replies.surface_frame(C, state, "r1"))
        assert_valid("SurfaceFrame", replies.surface_frame(C, state, None))
        assert_valid("UpdateFrame", replies.update_frame(C, state, "toggle", "r2"))
        for cause in surface.CAUSES:
            assert_valid("UpdateFrame", replies.update_frame(C, state, cause))
        assert_valid("ServerFrame", replies.update_frame(C, state, "warm"))


def test_update_causes_are_the_backends() -> None:
    assert list(surface.CAUSES) == enum("UpdateCause")


# --- client frames -----------------------------------------------------------------------------

# One minimal valid frame per client frame definition, with the backend class it must parse to.
CLIENT_EXAMPLES: dict[str, tuple[dict[str, Any], type]] = {
    "SubscribeFrame": (
        {"type": "subscribe", "surfaceId": "cache-warming", "conversationId": C},
        frames.Subscribe,
    ),
    "UnsubscribeFrame": (
        {"type": "unsubscribe", "surfaceId": "cache-warming", "conversationId": C},
        frames.Unsubscribe,
    ),
    "ToggleFrame": (
        {
            "type": "invoke",
            "surfaceId": "cache-warming",
            "conversationId": C,
            "action": "cache-warming/toggle",
            "payload": True,
        },
        frames.InvokeToggle,
    ),
    "SetIntervalFrame": (
        {
            "type": "invoke",
            "surfaceId": "cache-warming",
            "conversationId": C,
            "action": "cache-warming/set-interval",
            "payload": 120,
        },
        frames.InvokeSetInterval,
    ),
    "ChatSubscribeFrame": ({"type": "chat.subscribe", "conversationId": C}, frames.ChatSubscribe),
    "ChatUnsubscribeFrame": (
        {"type": "chat.unsubscribe", "conversationId": C},
        frames.ChatUnsubscribe,
    ),
    "CloseFrame": ({"type": "close", "conversationId": C}, frames.CloseConversation),
    "PingFrame": ({"type": "ping"}, frames.Ping),
}


def test_client_frames_are_exactly_the_ones_the_backend_parses() -> None:
    assert set(one_of("ClientFrame")) == set(CLIENT_EXAMPLES)
    parsed_classes = set()
    for name, (example, expected) in CLIENT_EXAMPLES.items():
        assert_valid(name, example)
        assert_valid("ClientFrame", example)
        frame = frames.parse_frame(json.dumps({**example, "requestId": "r1"}))
        assert type(frame) is expected, name
        assert frame.request_id == "r1"
        parsed_classes.add(expected)
    # Every frame class the backend can produce has a schema definition (no type added unseen).
    assert parsed_classes == set(get_args(frames.Frame))
    types = {DEFS[name]["properties"]["type"]["const"] for name in CLIENT_EXAMPLES}
    assert types == set(enum("ClientFrameType")) == set(frames.PARSERS)


def test_a_type_outside_the_schema_is_unknown_to_the_backend() -> None:
    with pytest.raises(frames.FrameRefused) as refused:
        frames.parse_frame(json.dumps({"type": "chat.resume", "conversationId": C}))
    assert refused.value.code == "unknown_type"


def test_a_frame_the_schema_refuses_is_refused_by_the_backend() -> None:
    bad = [
        {"type": "subscribe", "surfaceId": "other", "conversationId": C},
        {"type": "subscribe", "surfaceId": "cache-warming", "conversationId": "bad id!"},
        {
            "type": "invoke",
            "surfaceId": "cache-warming",
            "conversationId": C,
            "action": "cache-warming/toggle",
            "payload": "yes",
        },
        {
            "type": "invoke",
            "surfaceId": "cache-warming",
            "conversationId": C,
            "action": "cache-warming/set-interval",
            "payload": 1.5,
        },
        {"type": "ping", "requestId": ""},
        {"type": "ping", "requestId": "x" * 129},
    ]
    for frame in bad:
        assert not validator("ClientFrame").is_valid(frame), frame
        with pytest.raises(frames.FrameRefused):
            frames.parse_frame(json.dumps(frame))


# --- server frames -----------------------------------------------------------------------------


def test_ack_pong_and_error_frames_match_the_schema() -> None:
    for of in enum("AckOf"):
        assert_valid("AckFrame", replies.ack_frame(of, C, "r1"))
        assert_valid("AckFrame", replies.ack_frame(of, C, None))
    assert_valid("PongFrame", replies.pong_frame("r1"))
    assert_valid("PongFrame", replies.pong_frame(None))
    for code in domain_errors.CODES:
        refusal = domain_errors.Refused(code, "a sentence")
        assert_valid("ErrorFrame", replies.error_frame(refusal))
        assert_valid("ServerFrame", replies.error_frame(refusal, "r", C))
        assert_valid("HttpError", wire_errors.http_body(refusal))


USAGE = Usage(12, 300, 5100, 420, 420, 0)


def _ended(status: str, **changes: object) -> TurnEndedNotice:
    turn = Turn(C, 2, "And then?", 1767614400000, status, "Then the end.", 1767614401000)  # type: ignore[arg-type]
    ended: Any = replace  # keyword changes of several field types
    return TurnEndedNotice(ended(turn, **changes), 0.00614 if status == "sealed" else None)


def _backend_chat_frames() -> list[dict[str, Any]]:
    """One frame of every kind the backend's chat builders make, every failure code included."""
    turn = Turn(C, 2, "And then?", 1767614400000)
    built = [replies.started_frame(turn), replies.delta_frame(C, turn.turn_id, "Then the ", 0)]
    built.append(replies.ended_frame(_ended("sealed", usage=USAGE)))
    built += [replies.ended_frame(_ended("aborted", abort_reason=r)) for r in enum("AbortReason")]
    built += [replies.ended_frame(_ended("failed", error_code=c)) for c in replies.FAILURE_MESSAGES]
    return built


def test_chat_events_and_their_fields_are_the_ones_the_backend_builds() -> None:
    built = _backend_chat_frames()
    assert {frame["event"] for frame in built} == set(enum("ChatEvent"))
    definitions = {DEFS[n]["properties"]["event"]["const"]: n for n in one_of("ChatFrame")}
    assert set(definitions) == set(enum("ChatEvent"))
    for frame in built:
        assert_valid("ChatFrame", frame)
        assert_valid("ServerFrame", frame)
        definition = DEFS[definitions[frame["event"]]]
        assert set(definition["required"]) <= set(frame) <= set(definition["properties"]), frame


def test_turn_failure_codes_are_the_ones_the_backend_reports() -> None:
    import anthropic
    import httpx2 as httpx

    from chalicelib.adapters import model

    request = httpx.Request("POST", "http://emulator/v1/messages")

    def status_error(cls: type[anthropic.APIStatusError], status: int) -> Exception:
        return cls("x", response=httpx.Response(status, request=request), body=None)

    errors = [
        status_error(anthropic.RateLimitError, 429),
        status_error(anthropic.InternalServerError, 529),
        status_error(anthropic.BadRequestError, 400),
        status_error(anthropic.NotFoundError, 404),
        status_error(anthropic.InternalServerError, 500),
        anthropic.APITimeoutError(request),
        anthropic.APIConnectionError(request=request),
        RuntimeError("anything else"),
    ]
    reported = {model.error_code(error) for error in errors}
    codes = set(enum("TurnFailureCode"))
    assert reported <= codes
    # The chat frame has a message for every code a failed turn can carry (the model's, and
    # `empty_reply`, `timeout` and `upstream_error` decided by the turn rules).
    assert set(replies.FAILURE_MESSAGES) == codes


# --- HTTP --------------------------------------------------------------------------------------


def test_routes_are_the_apps() -> None:
    from app import app

    def normalized(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path)

    declared = {(route["method"], normalized(route["path"])) for route in SCHEMA["x-routes"]}
    served = {
        (method, normalized(path)) for path, methods in app.routes.items() for method in methods
    }
    assert declared == served
    for route in SCHEMA["x-routes"]:
        assert route["response"] in DEFS
        assert route.get("body", "Health") in DEFS


def test_http_views_match_the_schema() -> None:
    conversation = Conversation(
        id=C,
        owner="dev-user",
        created_at=1767614400000,
        title="New conversation",
        model="claude-sonnet-5-5",
        system="You are a helpful assistant.",
        max_tokens=8192,
        warming=_states()[3],
        turn_count=4,
        active_turn_id="t000003",
    )
    turns = [
        Turn(C, 0, "Hi", 1767614400000, "sealed", "Hello!", 1767614401000, USAGE),
        Turn(C, 1, "More", 1767614500000, "aborted", "Part", 1767614503000, abort_reason="closed"),
        Turn(C, 2, "Again", 1767614600000, "failed", "", 1767614601000, error_code="timeout"),
        Turn(C, 3, "Now", 1767614700000),
    ]
    assert_valid("Conversation", views.conversation_view(conversation))
    assert_valid("ConversationDetail", views.conversation_detail(conversation, turns))
    for turn in turns:
        assert_valid("Turn", views.turn_view(turn))
    fresh = Conversation(
        id=C, owner="u", created_at=0, title="t", model="m", system="s", max_tokens=1
    )
    assert_valid("WarmingSummary", views.warming_view(fresh))


def test_the_savings_route_matches_the_schema() -> None:
    totals = warming.Tally(spent_usd=0.25, saved_usd=0.75, warms=40, rescues=3)
    view = views.user_savings_view(totals)
    assert_valid("UserSavings", view)
    assert view["netUsd"] == 0.5
    assert_valid("UserSavings", views.user_savings_view(warming.Tally()))


def test_history_entries_and_pages_match_the_schema() -> None:
    usage = Usage(input_tokens=8, cache_read_input_tokens=5000, cache_creation_input_tokens=210)
    entries = [
        history.HistoryEntry("warm", 1767614407000, "warmed", C, 9, 0.00052, usage, target=1767614406990, spent_total_usd=0.0021),
        history.HistoryEntry("warm", 1767614407000, "failed", C, 8, reason="overloaded", target=None),
        history.HistoryEntry("warm", 1767614700000, "skipped", C, 7, reason="paused-idle", target=1767614697000),
        history.HistoryEntry("turn", 1767614500000, "sealed", C, 6, 0.0061, usage, turn_id="t000001", ended_at=1767614503000, rescue=True, saved_usd=0.069, spent_total_usd=0.0021, saved_total_usd=0.069),
        history.HistoryEntry("turn", 1767614500000, "aborted", C, 5, reason="cancelled", turn_id="t000000", ended_at=1767614501000),
    ]  # fmt: skip
    for entry in entries:
        view = views.history_entry_view(entry)
        assert_valid("HistoryEntry", view)
        assert_valid("HistoryWarm" if entry.kind == "warm" else "HistoryTurn", view)
    assert views.history_entry_view(entries[0])["delayMs"] == 10
    for outcome in ("warmed", "failed", "skipped"):
        assert outcome in enum("WarmOutcome")
    page = views.history_view(ports.HistoryPage(entries, next_before=5))
    assert_valid("HistoryPage", page)
    assert commands.list_history({"cursor": page["nextCursor"]}).before == 5
    assert_valid("HistoryPage", views.history_view(ports.HistoryPage([], None)))


# Each enum of the schema is one table of docs/contract.md, named by its first column's header:
# every value must be a row of that table (not merely a word somewhere on the page), and every
# row a value.
PROSE_TABLES = {
    "ErrorCode": "code",
    "WarmingStatus": "status",
    "FieldId": "id",
    "ChatEvent": "event",
    "TurnStatus": "turn status",
    "TurnFailureCode": "`turn-failed` code",
    "ClientFrameType": "type",
    "ServerFrameType": "server type",
    "UpdateCause": "`cause`",
    "WarmOutcome": "outcome",
}


def prose_tables(text: str) -> dict[str, list[str]]:
    """The first cells of every markdown table's rows, by the table's first header."""
    tables: dict[str, list[str]] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines[:-1]):
        if line.startswith("| ") and lines[number + 1].startswith("|---"):
            rows = tables.setdefault(line.split("|")[1].strip(), [])
            for row in lines[number + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(row.split("|")[1].strip())
    return tables


def test_the_prose_contract_has_a_table_row_for_every_enum_value() -> None:
    tables = prose_tables((ROOT / "docs" / "contract.md").read_text())
    for name, header in PROSE_TABLES.items():
        assert header in tables, f"docs/contract.md has no table headed {header!r} for {name}"
        assert tables[header] == [f"`{value}`" for value in enum(name)], name


def test_the_table_reader_finds_rows_not_words() -> None:
    text = "`missing` in prose\n\n| code | HTTP |\n|---|---|\n| `a` | 400 |\n| `b` | 401 |\nafter\n"
    assert prose_tables(text) == {"code": ["`a`", "`b`"]}
