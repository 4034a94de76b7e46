"""``python -m devstack.anthropic``: serve in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from devstack.anthropic.config import EmulatorConfig
from devstack.anthropic.emulator import AnthropicEmulator


def main(argv: list[str] | None = None) -> int:
    """Run the emulator in the foreground until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.anthropic",
        description="Anthropic Messages API emulator with prompt-cache semantics.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=25204)
    parser.add_argument("--tokens-per-second", type=float, default=40.0)
    parser.add_argument("--reply-tokens", type=int, default=300)
    parser.add_argument(
        "--min-cacheable",
        type=int,
        default=None,
        help="minimum cacheable prefix (tokens) for every model (default: each model's own)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.reply_tokens < 1:
        parser.error("--reply-tokens must be >= 1")
    config = EmulatorConfig(
        tokens_per_second=args.tokens_per_second,
        reply_tokens=args.reply_tokens,
        min_cacheable_override=args.min_cacheable,
        verbose=args.verbose,
    )
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with AnthropicEmulator(args.host, args.port, config) as emulator:
        print(f"Anthropic emulator listening on {emulator.url}", flush=True)
        while not stopping.wait(0.5):
            pass
    return 0
