"""Inbound frame validation and the outbound surface frames."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.warming import WarmingState
from chalicelib.wire import frames, surface
from chalicelib.wire.errors import STATUS
from chalicelib.wire.frames import FrameRefused, parse_frame

C = "conv-1"
INVOKE = {"type": "invoke", "surfaceId": "cache-warming", "conversationId": C}


def frame(**fields: object) -> str:
    return json.dumps(fields)


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


BAD_FRAMES: list[tuple[str, str, str | None]] = [
    ("not json", "bad_json", None),
    ("", "bad_json", None),
    ("[1,2]", "bad_json", None),
    ('"ping"', "bad_json", None),
    ("null", "bad_json", None),
    ('{"type": "ping", "x": NaN}', "bad_json", None),
    ("[" * 20_000 + "]" * 20_000, "frame_too_large", None),
    ("[" * 5000 + "]" * 5000, "bad_json", None),
    (frame(requestId="r"), "missing_field", "r"),
    (frame(type=5, requestId="r"), "invalid_field", "r"),
    (frame(type="dance", requestId="r"), "unknown_type", "r"),
    (frame(type="ping", requestId=7), "invalid_field", None),
    (frame(type="ping", requestId="x" * 129), "invalid_field", None),
    (frame(type="subscribe", conversationId=C, requestId="r"), "missing_field", "r"),
    (frame(type="subscribe", surfaceId="other", conversationId=C), "unknown_surface", None),
    (frame(type="subscribe", surfaceId="cache-warming"), "missing_field", None),
    (frame(type="subscribe", surfaceId="cache-warming", conversationId=""), "missing_field", None),
    (frame(type="subscribe", surfaceId="cache-warming", conversationId=5), "invalid_field", None),
    (
        frame(type="subscribe", surfaceId="cache-warming", conversationId="../etc"),
        "invalid_field",
        None,
    ),
    (
        frame(type="subscribe", surfaceId="cache-warming", conversationId="a#META"),
        "invalid_field",
        None,
    ),
    (
        frame(type="subscribe", surfaceId="cache-warming", conversationId="x" * 65),
        "invalid_field",
        None,
    ),
    (frame(**INVOKE), "missing_field", None),
    (frame(**INVOKE, action="cache-warming/explode"), "unknown_action", None),
    (frame(**INVOKE, action="cache-warming/toggle", payload="yes"), "invalid_payload", None),
    (frame(**INVOKE, action="cache-warming/toggle", payload=1), "invalid_payload", None),
    (frame(**INVOKE, action="cache-warming/set-interval"), "invalid_interval", None),
    (frame(**INVOKE, action="cache-warming/set-interval", payload=True), "invalid_interval", None),
    (frame(**INVOKE, action="cache-warming/set-interval", payload="60"), "invalid_interval", None),
    (frame(**INVOKE, action="cache-warming/set-interval", payload=60.5), "invalid_interval", None),
    (frame(**INVOKE, action="cache-warming/set-interval", payload=[60]), "invalid_interval", None),
    (
        '{"type":"invoke","surfaceId":"cache-warming","conversationId":"c","action":"cache-warming/set-interval","payload":Infinity}',
        "bad_json",
        None,
    ),
    (frame(type="chat.subscribe"), "missing_field", None),
    (frame(type="close", conversationId=None), "missing_field", None),
    (json.dumps({"type": "ping", "pad": "x" * 40_000}), "frame_too_large", None),
]


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
    frame = surface.surface_frame(C, WarmingState(), "r9")
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
    ]
    by_id = {f["id"]: f for f in frame["spec"]["fields"]}
    assert by_id["enabled"]["value"] is False and by_id["enabled"]["kind"] == "toggle"
    assert (by_id["interval"]["min"], by_id["interval"]["max"]) == (20, 270)
    assert by_id["timer"]["component"] == "cache-warming-timer"
    assert by_id["timer"]["value"] == {"nextWarmAt": None, "lastWarmAt": None}
    assert by_id["status"]["value"] == "off"
    assert by_id["last-cache-pct"]["label"] == "Last Cache %"
    assert by_id["cache-retention"]["label"] == "Cache retention"


def test_update_frame_without_request_id_has_none() -> None:
    frame = surface.update_frame(C, WarmingState())
    assert frame["type"] == "update" and "requestId" not in frame
    assert frame["conversationId"] == C
