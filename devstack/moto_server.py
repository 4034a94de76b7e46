"""``python -m devstack.moto_server``: the local stack's moto server, tuned, in a process of its own.

Why: everything else in the local stack runs in one Python process, so the GIL gives it about one
core; moto's request handling is the largest share of that work (every DynamoDB, SQS and Scheduler
call of every Lambda). `python -m devstack --moto-process` (the benchmarks use it) runs moto here
instead, on the machine's other core. The stack is otherwise unchanged: the same endpoints, the
same tuning (devstack/moto_tuning.py), state that lives as long as the stack.

Prints ``ready <host>:<port>`` once it serves, then runs until its stdin closes (the stack stops
it, or the stack's process is gone) or it gets SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

START_TIMEOUT_S = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.moto_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from moto.server import ThreadedMotoServer

    from devstack import moto_tuning

    moto_tuning.apply()
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()

    def stop(signum: int, frame: FrameType | None) -> None:
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"ready {host}:{port}", flush=True)
    sys.stdin.read()  # EOF: the stack closed the pipe, or its process is gone
    # moto's own stop() joins its server thread without a timeout; nothing here needs saving.
    os._exit(0)


def start_process(host: str, port: int, cwd: Path) -> tuple[str, Callable[[], None]]:
    """Start the server in a child process: its URL and a function that stops it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.moto_server", "--host", host, "--port", str(port)],
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def stop() -> None:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    line: list[str] = []
    reader = threading.Thread(
        target=lambda: line.append(process.stdout.readline() if process.stdout else ""),
        daemon=True,
    )
    reader.start()
    reader.join(START_TIMEOUT_S)
    if not line or not line[0].startswith("ready "):
        stop()
        raise RuntimeError(f"the moto server process did not start (said {line!r})")
    return f"http://{line[0].split()[1]}", stop


if __name__ == "__main__":
    sys.exit(main())
