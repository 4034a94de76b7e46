"""Free loopback ports for a local stack started by tests or benchmarks."""

from __future__ import annotations

import socket

# Every port flag of `python -m devstack`, in one place for whoever starts it on free ports.
PORT_FLAGS = (
    "--http-port",
    "--anthropic-port",
    "--ws-port",
    "--management-port",
    "--lambda-port",
    "--aws-port",
)


def free_ports(count: int) -> list[int]:
    """Ports the OS reports free right now (held together, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.bind(("127.0.0.1", 0))
            sockets.append(held)
        return [held.getsockname()[1] for held in sockets]
    finally:
        for held in sockets:
            held.close()


def port_args() -> list[str]:
    """`--http-port N --anthropic-port M ...` on free ports."""
    args: list[str] = []
    for flag, port in zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True):
        args += [flag, str(port)]
    return args
