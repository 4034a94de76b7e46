"""``python -m devstack`` (``make up``): run the whole product locally until Ctrl-C.

No AWS account and no API key needed; see ``devstack/stack.py`` for what runs and why. Prints the
URLs and dev tokens (a second user's; ``--expired-token``: one already expired), writes them to ``.devstack/endpoints.json`` (for the probe and tests), prints
the start-up time and then ``ready`` as the last start-up line. Afterwards stdout carries one JSON
line per warm tick (the app's ``cache_warming.ticks`` log); everything else goes to stderr.
SIGINT/SIGTERM stop everything and exit 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.stack import Stack, StackOptions

STARTED = time.monotonic()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="The local stack: moto (DynamoDB + Scheduler + SQS), a scheduler runner, the "
        "tick queue's event source mapping, a Lambda invoke emulator, a WebSocket gateway, "
        "Chalice's local HTTP server with the web page, and an Anthropic emulator (the real API "
        "when ANTHROPIC_API_KEY is set).",
    )
    _add_ports(parser)
    _add_emulator(parser)
    _add_lambdas(parser)
    _add_gateway(parser)
    parser.add_argument("--expired-token", action="store_true", help="also mint an expired token")
    parser.add_argument("--stage", default="dev", help="Chalice stage whose config is used")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    _check(parser, args)
    return args


def _add_ports(parser: argparse.ArgumentParser) -> None:
    from devstack.stack import DEFAULT_ENDPOINTS_FILE

    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--http-port", type=int, default=25203)
    parser.add_argument("--anthropic-port", type=int, default=25204)
    parser.add_argument("--ws-port", type=int, default=25205)
    parser.add_argument("--management-port", type=int, default=25206)
    parser.add_argument("--lambda-port", type=int, default=25207)
    parser.add_argument("--aws-port", type=int, default=25208)
    parser.add_argument(
        "--exact-scheduler",
        action="store_true",
        help="fire schedules at their at() time instead of AWS's [at, at+59 s] window",
    )
    parser.add_argument(
        "--endpoints-file",
        type=Path,
        default=DEFAULT_ENDPOINTS_FILE,
        help="where to write the endpoints JSON (default: %(default)s)",
    )


def _add_emulator(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tokens-per-second",
        type=float,
        default=40.0,
        help="emulator: streaming pace of replies (<= 0: unpaced)",
    )
    parser.add_argument(
        "--reply-tokens", type=int, default=300, help="emulator: length of every generated reply"
    )
    parser.add_argument(
        "--min-cacheable",
        default="model",
        help="emulator: 'model' for Anthropic's per-model minimum cacheable prefix (the "
        "default), or a number of tokens for every model",
    )


def _add_lambdas(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lambda-workers",
        type=int,
        default=64,
        help="threads running Lambda invocations (warms sleep in them)",
    )
    parser.add_argument(
        "--moto-process",
        action="store_true",
        help="run moto (DynamoDB, Scheduler, SQS) in a process of its own: another core",
    )
    parser.add_argument(
        "--esm-max-concurrency",
        type=int,
        default=50,
        help="most concurrent warm invocations the tick queue's event source mapping starts",
    )


def _add_gateway(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ws-idle-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="gateway: close a socket whose client sent nothing for this long (AWS: 600)",
    )
    parser.add_argument(
        "--ws-max-connection",
        type=float,
        default=7200.0,
        metavar="SECONDS",
        help="gateway: close every socket this long after it connected (AWS: 7200)",
    )
    parser.add_argument(
        "--ws-max-message-bytes",
        type=int,
        default=128 * 1024,
        metavar="BYTES",
        help="gateway: largest message in either direction (AWS: 131072)",
    )


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what the stack cannot run with (parser.error exits 2 with the usage line)."""
    if not _is_loopback(args.host):
        # moto and the management API have no authentication, and /devstack/config.json hands
        # out a token: none of it may be reachable from another machine.
        parser.error("--host must be an IPv4 loopback address such as 127.0.0.1")
    if args.reply_tokens < 1:
        parser.error("--reply-tokens must be at least 1")
    if args.lambda_workers < 1:
        parser.error("--lambda-workers must be at least 1")
    if not 2 <= args.esm_max_concurrency <= 1000:
        parser.error("--esm-max-concurrency must be 2-1000 (Lambda's MaximumConcurrency range)")
    if args.ws_idle_timeout <= 0 or args.ws_max_connection <= 0 or args.ws_max_message_bytes < 1:
        parser.error("the --ws-* limits must be positive")
    if args.min_cacheable == "model":
        args.min_cacheable = None
    else:
        try:
            args.min_cacheable = int(args.min_cacheable)
        except ValueError:
            parser.error("--min-cacheable takes a number of tokens or 'model'")


def _is_loopback(host: str) -> bool:
    # IPv4 only: the URLs handed to the page and the probe are built as "host:port".
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback


def configure_logging(verbose: bool) -> None:
    """Warm ticks (JSON) to stdout, one line each; devstack and app diagnostics to stderr."""
    from chalicelib.logs import TickLineFormatter

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ticks = logging.getLogger("cache_warming.ticks")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(TickLineFormatter())
    ticks.addHandler(handler)
    ticks.setLevel(logging.INFO)
    ticks.propagate = False
    logging.getLogger("cache_warming").setLevel(logging.INFO)
    logging.getLogger("devstack").setLevel(logging.DEBUG if verbose else logging.INFO)


def banner(endpoints: dict[str, Any], args: argparse.Namespace, real_anthropic: bool) -> str:
    if real_anthropic:
        anthropic = f"{endpoints['anthropicUrl']} (the real API: ANTHROPIC_API_KEY is set)"
    else:
        minimum = "per-model" if args.min_cacheable is None else f"{args.min_cacheable} tokens"
        anthropic = (
            f"{endpoints['anthropicUrl']} (emulator: {args.tokens_per_second:g} tokens/s, "
            f"{args.reply_tokens}-token replies, min cacheable {minimum})"
        )
    scheduler = (
        "exact (fires at at())" if args.exact_scheduler else "AWS precision (at() + 0..59 s)"
    )
    rows = [
        ("web page", endpoints["httpUrl"] + "/"),
        ("HTTP API", endpoints["httpUrl"]),
        ("WebSocket", endpoints["wsUrl"]),
        ("management API", endpoints["managementUrl"]),
        ("Lambda invoke", endpoints["lambdaUrl"]),
        (
            "AWS (moto)",
            f"{endpoints['awsUrl']} (table {endpoints['tableName']}, "
            f"schedule group {endpoints['scheduleGroup']})",
        ),
        ("tick queue", f"{endpoints['tickQueueUrl']} (DLQ {endpoints['tickDlqUrl']})"),
        ("Anthropic", anthropic),
        ("scheduler", scheduler),
        (
            "socket limits",
            f"idle {args.ws_idle_timeout:g} s, connection {args.ws_max_connection:g} s, "
            f"message {args.ws_max_message_bytes} bytes",
        ),
        ("dev token", endpoints["token"]),
        ("second token", f"{endpoints['secondToken']} (user {endpoints['secondUser']})"),
    ]
    if "expiredToken" in endpoints:
        rows.append(("expired token", endpoints["expiredToken"]))
    if args.endpoints_file is not None:
        rows.append(("endpoints", str(args.endpoints_file)))
    lines = ["devstack: the local stack (Ctrl-C stops it)"]
    lines += [f"  {label:<15} {value}" for label, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    from devstack.stack import PortInUse, Stack

    stack = Stack(_options(args))
    try:
        endpoints = stack.start()
    except PortInUse as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        logging.getLogger("devstack").exception("start-up failed")
        print(f"devstack: start-up failed: {error}", file=sys.stderr)
        return 1
    print(banner(endpoints, args, stack.real_anthropic))
    print(f"started in {time.monotonic() - STARTED:.2f} s")
    print("ready")
    _serve_until(stopping, stack)
    return 0


def _options(args: argparse.Namespace) -> StackOptions:
    from devstack.stack import StackOptions

    return StackOptions(
        host=args.host,
        http_port=args.http_port,
        anthropic_port=args.anthropic_port,
        ws_port=args.ws_port,
        management_port=args.management_port,
        lambda_port=args.lambda_port,
        aws_port=args.aws_port,
        exact_scheduler=args.exact_scheduler,
        endpoints_file=args.endpoints_file,
        tokens_per_second=args.tokens_per_second,
        reply_tokens=args.reply_tokens,
        min_cacheable=args.min_cacheable,
        lambda_workers=args.lambda_workers,
        esm_max_concurrency=args.esm_max_concurrency,
        moto_process=args.moto_process,
        chalice_stage=args.stage,
        ws_idle_timeout_s=args.ws_idle_timeout,
        ws_max_connection_s=args.ws_max_connection,
        ws_max_message_bytes=args.ws_max_message_bytes,
        expired_token=args.expired_token,
    )


def _serve_until(stopping: threading.Event, stack: Stack) -> None:
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        print("devstack: stopping", file=sys.stderr)
        stack.stop()
        print("devstack: stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
