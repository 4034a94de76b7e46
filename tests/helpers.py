"""Helpers the tests share: driving the use cases as a socket would, and the hostile frames corpus."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.domain.conversation import Conversation
from chalicelib.domain.prompts import Prompt
from tests import parsed
from tests.fakes.ports import World

OWNER = "alice"


def send(w: World, connection_id: str, **frame: Any) -> dict[str, Any]:
    w.services.handle_frame(connection_id, json.dumps(frame))
    return w.sockets.last(connection_id)


def invoke(
    w: World,
    connection_id: str,
    conversation_id: str,
    action: str,
    payload: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "invoke",
        "surfaceId": "cache-warming",
        "conversationId": conversation_id,
        "action": f"cache-warming/{action}",
        **extra,
    }
    if payload is not None:
        frame["payload"] = payload
    return send(w, connection_id, **frame)


def subscribe(
    w: World, connection_id: str, conversation_id: str, owner: str = OWNER
) -> dict[str, Any]:
    if w.store.get_connection(connection_id) is None:
        w.services.connect(connection_id, owner)
    return send(
        w,
        connection_id,
        type="subscribe",
        surfaceId="cache-warming",
        conversationId=conversation_id,
    )


def conversation_with_turn(w: World, **body: Any) -> Conversation:
    """A conversation whose first turn has been generated and sealed."""
    conversation = w.services.create_conversation(OWNER, parsed.conversation(body))
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "hello"}))
    assert w.services.generate(conversation.id, 0) == "sealed"
    stored = w.store.get_conversation(conversation.id)
    assert stored is not None
    return stored


def fire(w: World, conversation_id: str) -> Any:
    """Deliver the one live tick the way Scheduler would: the warm handler waits for the target."""
    tick = w.timer.pop_due(conversation_id)
    return w.services.handle_tick(tick.conversation_id, tick.seq, tick.target)


def chat_subscribe(w: World, connection_id: str, conversation_id: str) -> None:
    if w.store.get_connection(connection_id) is None:
        w.services.connect(connection_id, OWNER)
    w.services.handle_frame(
        connection_id, json.dumps({"type": "chat.subscribe", "conversationId": conversation_id})
    )


def events(w: World, connection_id: str) -> list[str]:
    return [f["event"] for f in w.sockets.of(connection_id, "chat")]


class RacingStore:
    """Wraps a store; `before_next_save` runs once inside the next save, between read and write."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.before_next_save: Any = None

    def save_conversation(self, conversation: Conversation, *args: Any, **kwargs: Any) -> Any:
        racer, self.before_next_save = self.before_next_save, None
        if racer is not None:
            racer()
        return self.inner.save_conversation(conversation, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# --- frames the parser must refuse: (raw frame, error code, requestId echoed) ----------------

C = "conv-1"
INVOKE = {"type": "invoke", "surfaceId": "cache-warming", "conversationId": C}


def frame(**fields: object) -> str:
    return json.dumps(fields)


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


# --- model adapter prompts (test_model_adapter.py, test_bedrock_adapter.py) -------------------


@dataclass(frozen=True)
class AdapterPrompts:
    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    warm: Prompt
    turn: Prompt


def adapter_prompts(system_repeats: int, model: str = "claude-sonnet-4-6") -> AdapterPrompts:
    """A cached system prompt of `system_repeats` times "Be brief. " (long enough for the model's
    minimum cacheable prefix), a cached first exchange, the documented pre-warm shape (the cached
    prefix, then a placeholder user message) and a turn on the first message."""
    system = [
        {
            "type": "text",
            "text": "Be brief. " * system_repeats,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Hello!", "cache_control": {"type": "ephemeral"}}],
        },
    ]
    placeholder = {"role": "user", "content": [{"type": "text", "text": "(warm-up)"}]}
    warm = Prompt(model, 0, system, [*messages, placeholder])
    return AdapterPrompts(system, messages, warm, Prompt(model, 100, system, [messages[0]]))


@contextmanager
def serving_jwks(body: bytes) -> Iterator[str]:
    """A key set served the way an identity provider serves `/.well-known/jwks.json`: its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
