"""The gateway's small parts: its limits (sources in `devstack/gateway.py`'s docstring), a
connection id shaped like API Gateway's, the live-socket record and the event fields built from
a request."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.frames import CloseCode


def new_connection_id() -> str:
    """A fresh id shaped like API Gateway's (e.g. ``L0SM9cOFvHcCIhw=``): 16 base64 characters.

    Like AWS's, it ends in ``=``, which botocore URL-quotes in management-API paths.
    ``+`` and ``/`` are avoided so ids stay easy to copy from logs into URLs.
    """
    raw = base64.b64encode(secrets.token_bytes(11)).decode()
    return raw.replace("+", "A").replace("/", "B")


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def request_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


@dataclass(frozen=True)
class GatewayLimits:
    """API Gateway's WebSocket limits (sources in the module docstring); tests shorten them."""

    idle_timeout_s: float = 600.0
    max_connection_s: float = 7200.0
    # Both directions: client messages and management-API posts.
    max_message_bytes: int = 128 * 1024

    def __post_init__(self) -> None:
        if self.idle_timeout_s <= 0 or self.max_connection_s <= 0 or self.max_message_bytes < 1:
            raise ValueError("gateway limits must be positive")

    def as_dict(self) -> dict[str, float | int]:
        return {
            "idleTimeoutSeconds": self.idle_timeout_s,
            "maxConnectionSeconds": self.max_connection_s,
            "maxMessageBytes": self.max_message_bytes,
        }


# Undocumented by AWS (see the module docstring): RFC 6455's "going away".
LIMIT_CLOSE_CODE = CloseCode.GOING_AWAY
LIMIT_CLOSE_REASON = "Going away"


@dataclass
class LiveSocket:
    """One live connection, as the gateway tracks it."""

    connection_id: str
    websocket: ServerConnection
    connected_at: float
    source_ip: str
    user_agent: str
    # The last message *from the client* (what the idle timeout counts, and GetConnection's
    # lastActiveAt).
    last_active_at: float = field(default_factory=time.time)


def header_maps(headers: Headers) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers.raw_items():
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def peer(websocket: ServerConnection) -> str:
    address = websocket.remote_address
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "127.0.0.1"
