"""The local stack's options, port check and start-up helpers (``devstack.stack`` runs them)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_ENDPOINTS_FILE = PROJECT_DIR / ".devstack" / "endpoints.json"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
API_ID = "local"
DEV_USER = "dev-user"
# A second user, so tenancy can be tried from outside: each gets `not_found` for the other's.
SECOND_USER = "dev-user-2"
# An expired token's `exp`, well past the verifier's 30 s leeway (chalicelib/auth.py, LEEWAY_S).
EXPIRED_AGO_S = 3600
START_TIMEOUT_S = 15.0

# Variables that would send the app elsewhere (a real account, a JWKS, Secrets Manager).
SCRUBBED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
    "JWT_JWKS_URL",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "WARM_DLQ_ARN",
    "ANTHROPIC_API_KEY_SECRET_ID",
)


class PortInUse(RuntimeError):
    pass


@dataclass(frozen=True)
class StackOptions:
    host: str = "127.0.0.1"
    http_port: int = 25203
    anthropic_port: int = 25204
    ws_port: int = 25205
    management_port: int = 25206
    lambda_port: int = 25207
    aws_port: int = 25208
    exact_scheduler: bool = False
    endpoints_file: Path | None = DEFAULT_ENDPOINTS_FILE
    tokens_per_second: float = 40.0
    reply_tokens: int = 300
    # None: the catalog's per-model minimums, as Anthropic applies them; a number overrides them
    # for every model (tests of the emulator only: the product's not-cacheable rule reads the
    # catalog, so an override makes the stack disagree with the API).
    min_cacheable: int | None = None
    lambda_workers: int = 64
    # ScalingConfig.MaximumConcurrency of the tick queue's mapping (the deployed default is 500;
    # a local invocation is a thread, and 50 carry thousands of warming conversations here).
    esm_max_concurrency: int = 50
    # moto in a process of its own (devstack/moto_server.py): another core for the stand-in AWS.
    moto_process: bool = False
    chalice_stage: str = "dev"
    # API Gateway's WebSocket limits (devstack.gateway cites them); tests shorten them.
    ws_idle_timeout_s: float = 600.0
    ws_max_connection_s: float = 7200.0
    ws_max_message_bytes: int = 128 * 1024
    project_dir: Path = PROJECT_DIR
    user: str = DEV_USER
    # Also mint a token that expired EXPIRED_AGO_S ago (endpoints' `expiredToken`).
    expired_token: bool = False


PORT_FLAGS = {
    "http_port": "--http-port",
    "anthropic_port": "--anthropic-port",
    "ws_port": "--ws-port",
    "management_port": "--management-port",
    "lambda_port": "--lambda-port",
    "aws_port": "--aws-port",
}


def check_ports(options: StackOptions, *, anthropic: bool) -> None:
    """Fail fast, naming the flag, when a fixed port is taken (instead of a hang or a trace)."""
    for attribute, flag in PORT_FLAGS.items():
        port = int(getattr(options, attribute))
        if port == 0 or (attribute == "anthropic_port" and not anthropic):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((options.host, port))
            except OSError as error:
                raise PortInUse(
                    f"port {port} on {options.host} is not available ({flag}): {error.strerror}"
                ) from error


def bounded(call: Callable[[], None], what: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Run a call that may block forever (moto's start() does when its port is taken, its stop()
    joins without a timeout) in a helper thread, with a deadline."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - re-raised below
            failure.append(error)

    thread = threading.Thread(target=run, name=f"bounded-{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if failure:
        raise RuntimeError(f"{what} failed: {failure[0]}") from failure[0]
    if thread.is_alive():
        raise RuntimeError(f"{what} did not finish within {timeout_s:.0f} s")


def app_name(project_dir: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        config = json.loads((project_dir / ".chalice" / "config.json").read_text())
        return str(config.get("app_name") or "app")
    return "app"


def prime_app_clients(services: Any) -> None:
    """Build the app's shared boto3 clients now, in one thread.

    Lambda runs one request per container; here many handler threads share the app's module-level
    singletons, and a boto3 session is not safe to build clients from concurrently. Building them
    up front (through the app's own lazy properties) removes that race. Attributes that a future
    version of the app no longer has are skipped.
    """
    services.store.list_conversations("devstack-warm-up")
    for path in (("timer", "scheduler"), ("timer", "queue", "client"), ("sockets", "client")):
        target: Any = services
        for attribute in path:
            target = getattr(target, attribute, None)
            if target is None:
                break
    with contextlib.suppress(Exception):
        services.ports.model()  # imports the anthropic SDK once (about 0.8 s)


def quiet_third_party_logs() -> None:
    for name in ("werkzeug", "websockets", "botocore", "urllib3", "httpx", "anthropic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def bedrock_requested() -> bool:
    """MODEL_PROVIDER=bedrock: every model call goes to the local Bedrock stand-in
    (devstack/bedrock) through the product's Bedrock adapter; never to real Bedrock."""
    return os.environ.get("MODEL_PROVIDER") == "bedrock"


def local_env_for(
    options: StackOptions,
    real_anthropic: bool,
    aws_url: str,
    lambda_url: str,
    anthropic_url: str,
    secret: str,
) -> dict[str, str]:
    """The endpoints, ARNs, dummy credentials and secret the stack adds to the app's env."""
    prefix = f"{app_name(options.project_dir)}-{options.chalice_stage}"
    env = {
        # Dummy credentials: moto and the local servers accept any signature.
        "AWS_ACCESS_KEY_ID": "devstack",
        "AWS_SECRET_ACCESS_KEY": "devstack",
        "AWS_SESSION_TOKEN": "devstack",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # No ~/.aws files: nothing there may send a call to a real account.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_DYNAMODB": aws_url,
        "AWS_ENDPOINT_URL_SCHEDULER": aws_url,
        "AWS_ENDPOINT_URL_SQS": aws_url,
        "AWS_ENDPOINT_URL_LAMBDA": lambda_url,
        "WEBSOCKET_API_ID": API_ID,
        "JWT_SECRET": secret,
        "GENERATE_FUNCTION_ARN": (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{prefix}-generate"
        ),
        "SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/{prefix}-scheduler",
    }
    if bedrock_requested():
        env["MODEL_PROVIDER"] = "bedrock"
        env["ANTHROPIC_BEDROCK_BASE_URL"] = anthropic_url
        env["BEDROCK_SCOPE"] = os.environ.get("BEDROCK_SCOPE", "global")
    elif not real_anthropic:
        env["ANTHROPIC_BASE_URL"] = anthropic_url
        env["ANTHROPIC_API_KEY"] = "devstack-emulator-key"
    return env


def more_tokens(mint: Callable[..., str], options: StackOptions, secret: str) -> dict[str, str]:
    """A second user's token, and (asked for) the first user's, already expired."""
    tokens = {"secondUser": SECOND_USER, "secondToken": mint(SECOND_USER, secret)}
    if options.expired_token:
        tokens["expiredToken"] = mint(options.user, secret, lifetime_s=-EXPIRED_AGO_S)
    return tokens


def create_resources(table_name: str, schedule_group: str) -> None:
    """The app's table and schedule group, in moto (the endpoints are in the environment)."""
    import boto3

    from chalicelib.adapters.store import create_table

    session = boto3.session.Session()
    create_table(session.client("dynamodb"), table_name)
    session.client("scheduler").create_schedule_group(Name=schedule_group)


def write_json(path: Path, data: Any) -> None:
    """Write the file whole or not at all: a reader polling for it never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    temporary.replace(path)
