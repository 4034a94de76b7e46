"""An end-to-end probe of a running stack, driven like the front end drives it.

``python -m devstack.probe --endpoints .devstack/endpoints.json`` checks the local stack;
``--http-url/--ws-url/--token`` point it at a deployed stage instead. It uses only the public
surface (the WebSocket and HTTP API of ``docs/contract.md``), through the ``websockets`` sync client
and ``urllib``, so what it proves holds for any deployment, not just for this process.

Why these checks: they are the product's promises that unit tests cannot see — warming is off by
default; ``nextWarmAt`` is a promise kept to within 2 s; warming is server-side (it goes on with no
socket connected); a real turn re-arms the timer; an explicit close stops warming and aborts the
turn within a second; a mere disconnect stops nothing. Each check prints one line,
``PASS name: detail`` or ``FAIL name: detail``, with the measured timings; the exit code is 1 if
any check failed. A run takes about two minutes (three 20-second warm intervals, one interval with
no socket, three streamed turns).

The probe's conversation carries a realistic ~1,300-token system prompt, above the minimum
cacheable prefix of the default model (1,024 tokens for Sonnet), so warms read from the cache
against the real API too, not only against the emulator.
The checks live in `probe_turns.py` and `probe_warming.py` over `probe_session.py`, the
transports in `probe_transport.py`, the texts in `probe_text.py`; this module runs them and
re-exports what other tools use (`bench/`, the smoke test).

Timing checks compare server timestamps with this machine's clock: against a deployed stage they
also measure the clock skew between the two.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from devstack.probe_session import (
    ABORT_PROMISE_MS,
    DEFAULT_INTERVAL_S,
    EARLY_TOLERANCE_MS,
    SURFACE,
    WARM_PROMISE_MS,
)
from devstack.probe_text import SYSTEM_PROMPT, TURN_TEXTS
from devstack.probe_transport import (
    Http,
    ProbeError,
    Received,
    Socket,
    field_value,
    now_ms,
    timer,
    with_query,
)
from devstack.probe_turns import TurnChecks
from devstack.probe_warming import WarmingChecks

# The probe's public surface (bench/ and the smoke test build on it), wherever each part lives.
__all__ = [
    "ABORT_PROMISE_MS",
    "DEFAULT_INTERVAL_S",
    "EARLY_TOLERANCE_MS",
    "SURFACE",
    "SYSTEM_PROMPT",
    "TURN_TEXTS",
    "WARM_PROMISE_MS",
    "Http",
    "Probe",
    "ProbeError",
    "Received",
    "Socket",
    "field_value",
    "load_endpoints",
    "main",
    "now_ms",
    "timer",
    "with_query",
]


class Probe(TurnChecks, WarmingChecks):
    """Every check, in the order a user meets them; `run` reports a step that cannot go on as a
    failed check."""

    def run(self) -> bool:
        try:
            self._run()
        except ProbeError as error:
            self.check(self.current, False, str(error))
        except Exception as error:  # noqa: BLE001 - reported as a failed check, never a trace
            self.check(self.current, False, f"{type(error).__name__}: {error}")
        finally:
            self._cleanup()
        return self.passed

    def _run(self) -> None:
        self.current = "health"
        status, body = self.http.call("GET", "/health")
        self.check("health", status == 200 and body == {"status": "ok"}, f"{status} {body}")

        self.current = "create"
        created = self.http.expect(
            "POST",
            "/conversations",
            201,
            {"title": f"probe {time.strftime('%H:%M:%S')}", "system": SYSTEM_PROMPT},
        )
        self.conversation_id = str(created["conversationId"])

        self._default_off_and_echo()
        self._first_turn()
        announced, last = self._enable()
        announced, last = self._warms(announced, last)
        announced, last = self._warming_without_socket(announced, last)
        self._disconnect_mid_turn_and_rearm()
        self._close_during_turn()

    def _cleanup(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.conversation_id:
            # Never leave a probe conversation warming (it costs money on a real stage).
            with contextlib.suppress(ProbeError):
                self.http.call("POST", f"/conversations/{self.conversation_id}/close")


def load_endpoints(path: Path) -> dict[str, Any]:
    try:
        endpoints: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise SystemExit(
            f"probe: {path} does not exist; is the stack running (make up)?"
        ) from error
    return endpoints


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    http_url, ws_url, token = _target(parser, args)
    started = time.monotonic()
    probe = Probe(
        http_url,
        ws_url,
        token,
        interval_s=args.interval,
        warm_budget_ms=args.warm_budget_ms,
        turn_timeout_s=args.turn_timeout,
        out=lambda line: print(line, flush=True),
    )
    ok = probe.run()
    # The summary goes to stderr: stdout is exactly one line per check.
    print(probe.summary(time.monotonic() - started), file=sys.stderr, flush=True)
    return 0 if ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.probe", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--endpoints",
        type=Path,
        default=None,
        help="endpoints JSON written by the stack (default .devstack/endpoints.json)",
    )
    parser.add_argument("--http-url")
    parser.add_argument("--ws-url")
    parser.add_argument("--token")
    parser.add_argument(
        "--interval",
        type=int,
        default=DEFAULT_INTERVAL_S,
        help="warm interval to test, seconds (default %(default)s)",
    )
    parser.add_argument(
        "--warm-budget-ms",
        type=int,
        default=3_000,
        help="allowed warm latency (request + push) on top of the 2 s promise",
    )
    parser.add_argument("--turn-timeout", type=float, default=120.0)
    return parser


def _target(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, str, str]:
    """The stack to probe: the flags, else the endpoints file the stack wrote."""
    endpoints: dict[str, Any] = {}
    if args.endpoints is not None or not (args.http_url and args.ws_url and args.token):
        endpoints = load_endpoints(args.endpoints or Path(".devstack/endpoints.json"))
    http_url = args.http_url or endpoints.get("httpUrl")
    ws_url = args.ws_url or endpoints.get("wsUrl")
    token = args.token or endpoints.get("token")
    if not (http_url and ws_url and token):
        parser.error("need --endpoints, or all of --http-url, --ws-url and --token")
    return http_url, ws_url, token


if __name__ == "__main__":
    sys.exit(main())
