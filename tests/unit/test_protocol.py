"""Inbound frame validation and the outbound surface frames."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Refused
from chalicelib.domain.warming import WarmingState
from chalicelib.wire import frames, replies, surface
from chalicelib.wire.errors import STATUS
from chalicelib.wire.frames import FrameRefused, parse_frame
from tests.helpers import BAD_FRAMES, INVOKE, C, frame


@pytest.mark.parametrize(
    "raw,expected",
    [
        (frame(type="ping"), frames.Ping()),
        (frame(type="ping", requestId="r1"), frames.Ping("r1")),
        (
            frame(type="subscribe", surfaceId="cache-warming", conversationId=C, requestId="r"),
            frames.Subscribe(C, "r"),
        ),
        (
            frame(type="unsubscribe", surfaceId="cache-warming", conversationId=C),
            frames.Unsubscribe(C),
        ),
        (
            frame(**INVOKE, action="cache-warming/toggle", payload=True),
            frames.InvokeToggle(C, True),
        ),
        (
            frame(**INVOKE, action="cache-warming/toggle", payload=False),
            frames.InvokeToggle(C, False),
        ),
        (frame(**INVOKE, action="cache-warming/toggle"), frames.InvokeToggle(C, None)),
        (
            frame(**INVOKE, action="cache-warming/toggle", payload=None),
            frames.InvokeToggle(C, None),
        ),
        (
            frame(**INVOKE, action="cache-warming/set-interval", payload=60),
            frames.InvokeSetInterval(C, 60),
        ),
        (
            frame(**INVOKE, action="cache-warming/set-interval", payload=60.0),
            frames.InvokeSetInterval(C, 60),
        ),
        (frame(type="chat.subscribe", conversationId=C), frames.ChatSubscribe(C)),
        (frame(type="chat.unsubscribe", conversationId=C), frames.ChatUnsubscribe(C)),
        (frame(type="close", conversationId=C, requestId="x"), frames.CloseConversation(C, "x")),
    ],
)
def test_valid_frames_parse(raw: str, expected: frames.Frame) -> None:
    assert parse_frame(raw) == expected


@pytest.mark.parametrize("raw,code,request_id", BAD_FRAMES)
def test_bad_frames_get_stable_codes(raw: str, code: str, request_id: str | None) -> None:
    with pytest.raises(FrameRefused) as caught:
        parse_frame(raw)
    assert caught.value.code == code
    assert caught.value.request_id == request_id
    assert caught.value.message


def test_invalid_utf8_is_bad_json() -> None:
    with pytest.raises(FrameRefused) as caught:
        parse_frame(b'{"type": "ping", "x": "\xff"}')
    assert caught.value.code == "bad_json"


def test_every_error_code_has_an_http_status() -> None:
    assert all(400 <= status < 600 for status in STATUS.values())


def test_surface_frame_has_the_fixed_fields_and_echoes_ids() -> None:
    frame = replies.surface_frame(C, WarmingState(), "r9")
    assert frame["conversationId"] == C and frame["requestId"] == "r9"
    ids = [f["id"] for f in frame["spec"]["fields"]]
    assert ids == [
        "enabled",
        "interval",
        "timer",
        "status",
        "last-cache-pct",
        "cache-retention",
        "warm-cost",
        "savings",
    ]
    by_id = {f["id"]: f for f in frame["spec"]["fields"]}
    assert by_id["enabled"]["value"] is False and by_id["enabled"]["kind"] == "toggle"
    assert (by_id["interval"]["min"], by_id["interval"]["max"]) == (20, 290)
    assert by_id["interval"]["value"] == 290
    assert by_id["timer"]["component"] == "cache-warming-timer"
    assert by_id["timer"]["value"] == {
        "nextWarmAt": None,
        "lastWarmAt": None,
        "cacheExpiresAt": None,
        "warmsLeft": None,
    }
    assert by_id["status"]["value"] == "off"
    assert by_id["last-cache-pct"]["label"] == "Last Cache %"
    assert by_id["cache-retention"]["label"] == "Cache retention"
    assert by_id["savings"]["value"] == {
        "spentUsd": 0.0,
        "savedUsd": 0.0,
        "netUsd": 0.0,
        "rescues": 0,
    }


def test_the_cache_retention_field_says_which_cache_is_in_use_and_why() -> None:
    state = WarmingState(retention="1h", auto=True, retention_reason="auto: 1h is cheaper")
    by_id = {f["id"]: f for f in surface.fields(state)}
    field = by_id["cache-retention"]
    assert (field["value"], field["setting"], field["reason"]) == (
        "1h",
        "auto",
        "auto: 1h is cheaper",
    )
    assert (by_id["interval"]["max"], by_id["interval"]["value"]) == (3590, 3590)


def test_update_frame_without_request_id_has_none() -> None:
    frame = replies.update_frame(C, WarmingState(), "warm")
    assert frame["type"] == "update" and "requestId" not in frame
    assert frame["conversationId"] == C


@pytest.mark.parametrize(
    "value",
    [
        "abc\n",  # `$` in re.match would accept a trailing newline
        "abc\ndef",
        "a" * 65,
        "abc/def",
        "abc#META",  # would reach into another item's sort key
        " abc",
        "abc ",
        "ab%2Fc",
        "",
    ],
)
def test_conversation_ids_are_matched_whole(value: str) -> None:
    """Regression: the whole id must match `[A-Za-z0-9_-]{1,64}` (fullmatch), in frames and in
    HTTP paths alike, so nothing can be appended to a key or a path."""
    with pytest.raises(Refused) as refused:
        frames.conversation_id_of(value)
    assert refused.value.code in ("invalid_field", "missing_field")
    assert frames.conversation_id_of("a" * 64) == "a" * 64
