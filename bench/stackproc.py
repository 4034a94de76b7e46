"""``python -m bench.stackproc``: the local stack (``python -m devstack``) plus what a benchmark
needs from inside its process.

It runs ``devstack.__main__.main`` unchanged, in this process, so the stack's CPU and memory are
this process's. Two additions, both outside the app:

* dev tokens for several users (``--users N`` → ``bench-user-0`` …), written to ``--tokens-file``
  once the stack is ready: the app caps warming at 10 conversations per user and turns at 10 per
  minute per user, so a benchmark with hundreds of conversations spreads them over users, as real
  traffic is spread. The stack signs its dev tokens with a per-run secret it puts in this process's
  environment (``JWT_SECRET``), so only a process inside the stack can mint more.
* ``--lambda-log FILE``: one JSON line per Lambda invocation the stack's Lambda emulator ran
  (``function``, ``start``, ``seconds``, and ``ticks``: `<conversationId>@<target>` of the ticks
  it carried, one per SQS record), the billed duration of each warm invocation, waits included.
* ``--queue-max-delay S``: the timer sends targets at most S seconds away to the tick queue and
  books farther ones on Scheduler (SQS allows 900 s). Lowered, the Scheduler path (fire early,
  requeue with the remaining delay, warm) fits in a benchmark of a few minutes; the app is
  otherwise unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _write_tokens(endpoints_file: Path, tokens_file: Path, users: int) -> None:
    from chalicelib import auth

    while not endpoints_file.exists():
        time.sleep(0.05)
    secret = os.environ["JWT_SECRET"]
    tokens = {f"bench-user-{i}": auth.mint(f"bench-user-{i}", secret) for i in range(users)}
    temporary = tokens_file.with_name(tokens_file.name + ".tmp")
    temporary.write_text(json.dumps(tokens))
    temporary.replace(tokens_file)


def _log_lambdas(path: Path) -> None:
    """Time every invocation of the stack's Lambda emulator (its threads run the handlers)."""
    from devstack import lambdas

    original = getattr(lambdas.LambdaEmulator, "run", None)
    if original is None:  # the emulator changed shape: no durations, nothing else breaks
        return
    out = path.open("a", buffering=1)
    lock = threading.Lock()

    def run(self: Any, name: str, payload: Any) -> Any:
        start = time.time()
        try:
            return original(self, name, payload)
        finally:
            record = {
                "function": name,
                "start": start,
                "seconds": time.time() - start,
                "ticks": _tick_ids(payload),
            }
            with lock:
                out.write(json.dumps(record) + "\n")

    lambdas.LambdaEmulator.run = run  # type: ignore[method-assign]


def _tick_ids(payload: Any) -> list[str]:
    """`<conversationId>@<target>` of each tick in a warm invocation (an SQS batch or a raw tick)."""
    if not isinstance(payload, dict):
        return []
    bodies = [r.get("body", "") for r in payload.get("Records", [])]
    ticks = [json.loads(b) for b in bodies if b.startswith("{")] if bodies else [payload]
    return [f"{t.get('conversationId')}@{t.get('target')}" for t in ticks if isinstance(t, dict)]


def _lower_queue_delay(seconds: int) -> None:
    from chalicelib.adapters import timer

    original = timer.PreciseTimer.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["queue_max_delay_ms"] = seconds * 1000
        original(self, *args, **kwargs)

    timer.PreciseTimer.__init__ = init  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stackproc")
    parser.add_argument("--tokens-file", type=Path, required=True)
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--lambda-log", type=Path)
    parser.add_argument("--queue-max-delay", type=int)
    args, devstack_args = parser.parse_known_args(argv)
    endpoints = Path(devstack_args[devstack_args.index("--endpoints-file") + 1])
    if args.lambda_log is not None:
        _log_lambdas(args.lambda_log)
    if args.queue_max_delay is not None:
        _lower_queue_delay(args.queue_max_delay)
    threading.Thread(
        target=_write_tokens, args=(endpoints, args.tokens_file, args.users), daemon=True
    ).start()
    from devstack.__main__ import main as devstack_main

    code = devstack_main(devstack_args)
    # Exit now: after a heavy run, request threads still busy inside moto would otherwise hold
    # the interpreter's exit (non-daemon threads) well past the stack's own clean stop.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
