"""The local stack: the unchanged app wired to local stand-ins for every outside system.

Why it is built this way: the product's promise is that the code running here is the code running
in Lambda; only endpoints differ. So nothing in ``app.py`` or ``chalicelib/`` knows about this
module. Every stand-in speaks the real wire protocol and the app reaches it through the endpoint
settings it already honours:

=====================  =========================================  ===============================
AWS / Anthropic        local stand-in                             how the app is pointed at it
=====================  =========================================  ===============================
DynamoDB, Scheduler,   moto server (``ThreadedMotoServer``,       ``AWS_ENDPOINT_URL_DYNAMODB``,
SQS                    tuned by ``devstack.moto_tuning``)         ``_SCHEDULER``, ``_SQS``
Scheduler firing       ``devstack.scheduler.SchedulerRunner``     polls moto, sends to the queue
SQS -> Lambda mapping  ``devstack.esm.SqsEventSourceMapping``     polls the tick queue, runs warm
Lambda (async invoke)  ``devstack.lambdas.LambdaEmulator``        ``AWS_ENDPOINT_URL_LAMBDA``
API Gateway WebSocket  ``devstack.gateway.WebSocketGateway``      ``WEBSOCKET_ENDPOINT``
API Gateway REST       Chalice's local server (``devstack.http``)  (it calls the app directly)
Anthropic              ``devstack.anthropic``                      ``ANTHROPIC_BASE_URL``
=====================  =========================================  ===============================

With ``ANTHROPIC_API_KEY`` set in the environment the real Messages API is used instead of the
emulator (``ANTHROPIC_BASE_URL`` is then left alone).

Configuration comes from ``.chalice/config.json`` exactly as ``chalice deploy`` would put it in the
Lambda environment (``TABLE_NAME``, ``SCHEDULE_GROUP``, ``DEFAULT_SYSTEM_PROMPT``...); the stack
adds only endpoints, ARNs, dummy credentials and a per-run ``JWT_SECRET``, then creates the table
and schedule group the app will actually use (read back from the app's own settings).

Prompt caching: the emulator applies each model's own minimum cacheable prefix from the catalog
(512 tokens for the default Sonnet 5.5), as the API does. The page creates its conversations with
a ~1,500-token system prompt and the probe with a ~1,300-token one, so both cache and warm from the
first turn; a conversation on the config's default system prompt ("You are a helpful assistant.")
stays below the minimum after a short exchange, and warming stops as `not-cacheable` exactly as it
would against Anthropic. ``--min-cacheable N`` overrides the minimum for every model (the
emulator's own tests use it).

Threads, not processes: everything runs in this one process, so Ctrl-C stops it all and the moto
state lives exactly as long as the stack. The app's shared clients are primed once at start-up
(a boto3 session is not safe to build clients from in parallel threads).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("devstack")

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_ENDPOINTS_FILE = PROJECT_DIR / ".devstack" / "endpoints.json"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
API_ID = "local"
DEV_USER = "dev-user"
START_TIMEOUT_S = 15.0

# Variables that would send the app elsewhere (a real account, a JWKS, Secrets Manager).
_SCRUBBED = (
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


def _bounded(call: Callable[[], None], what: str, timeout_s: float = START_TIMEOUT_S) -> None:
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


class Stack:
    """Start with ``start()`` (returns the endpoints), stop with ``stop()``; both are bounded."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.endpoints: dict[str, Any] = {}
        # MODEL_PROVIDER=bedrock: every model call goes to the local Bedrock stand-in
        # (devstack/bedrock) through the product's Bedrock adapter; never to real Bedrock.
        self.bedrock = os.environ.get("MODEL_PROVIDER") == "bedrock"
        self.real_anthropic = bool(os.environ.get("ANTHROPIC_API_KEY")) and not self.bedrock
        self._stoppers: list[tuple[str, Callable[[], None]]] = []

    # --- start ---------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> dict[str, Any]:
        # Heavy imports (moto, chalice, the app) happen in here, after the environment is set:
        # the app's modules then never see anything but the local endpoints, and `python -m
        # devstack --help` stays instant.
        options = self.options
        host = options.host
        check_ports(options, anthropic=not self.real_anthropic)
        _quiet_third_party_logs()

        aws_url = self._start_moto()
        anthropic_url = self._start_anthropic()

        from devstack.gateway import GatewayLimits, WebSocketGateway
        from devstack.lambdas import LambdaEmulator

        # Bound now, handlers attached once the app is loaded (nothing can call before).
        lambdas = LambdaEmulator(
            {}, host, options.lambda_port, workers=options.lambda_workers
        ).start()
        self._stoppers.append(("lambda emulator", lambdas.stop))
        limits = GatewayLimits(
            idle_timeout_s=options.ws_idle_timeout_s,
            max_connection_s=options.ws_max_connection_s,
            max_message_bytes=options.ws_max_message_bytes,
        )
        gateway = WebSocketGateway(
            {}, host, options.ws_port, options.management_port, limits=limits
        )
        gateway.start()
        self._stoppers.append(("websocket gateway", gateway.stop))

        secret = secrets.token_urlsafe(32)
        queues = self._create_tick_queues(aws_url)
        local_env = self._local_env(aws_url, lambdas.url, anthropic_url, secret)
        local_env.update(
            TICK_QUEUE_URL=queues.url, TICK_QUEUE_ARN=queues.arn, WARM_DLQ_ARN=queues.dlq_arn
        )
        for name in _SCRUBBED:
            os.environ.pop(name, None)
        os.environ.update(local_env)

        app, config = self._load_app()
        # `.chalice/config.json` is applied on top (as in Lambda); endpoints must stay ours.
        os.environ.update(local_env)
        stage = config.api_gateway_stage
        gateway.stage = stage
        os.environ["WEBSOCKET_ENDPOINT"] = gateway.management_url

        from chalicelib import auth, bootstrap
        from chalicelib.config import settings

        bootstrap.reset()
        from devstack.ticks import widen_client_pools

        widen_client_pools()
        app_settings = settings()
        self._create_resources(app_settings.table_name, app_settings.schedule_group)
        _prime_app_clients(bootstrap.services())

        lambdas.functions = {fn.name: app.handler_map[fn.name] for fn in app.pure_lambda_functions}
        lambdas.timeouts = {
            name: int(config.scope(options.chalice_stage, name).lambda_timeout or 900)
            for name in lambdas.functions
        }
        gateway.handlers = {
            "connect": app.handler_map[app.websocket_handlers["$connect"].name],
            "message": app.handler_map[app.websocket_handlers["$default"].name],
            "disconnect": app.handler_map[app.websocket_handlers["$disconnect"].name],
        }

        from devstack.http import HttpServer

        token = auth.mint(options.user, secret)
        http = HttpServer(app, config, host, options.http_port)
        # The page labels replies as emulated when they are, and keeps its socket alive within
        # this gateway's limits (shortened ones included).
        anthropic_mode = "api" if self.real_anthropic else "emulator"
        http.set_page_config(
            {
                "httpUrl": http.url,
                "wsUrl": gateway.ws_url,
                "token": token,
                "anthropic": anthropic_mode,
                "wsLimits": limits.as_dict(),
            }
        )
        http.start()
        self._stoppers.append(("http server", http.stop))

        self._start_scheduler(app_settings.schedule_group, lambdas.url)
        self._start_mapping(queues, lambdas)

        self.endpoints = {
            "httpUrl": http.url,
            "wsUrl": gateway.ws_url,
            "token": token,
            "anthropicUrl": anthropic_url,
            "anthropic": anthropic_mode,
            "managementUrl": gateway.management_url,
            "lambdaUrl": lambdas.url,
            "awsUrl": aws_url,
            "tableName": app_settings.table_name,
            "scheduleGroup": app_settings.schedule_group,
            "tickQueueUrl": queues.url,
            "tickDlqUrl": queues.dlq_url,
            "scheduler": "exact" if options.exact_scheduler else "aws-jitter",
            "wsLimits": limits.as_dict(),
        }
        self._write_endpoints()
        return self.endpoints

    def _start_moto(self) -> str:
        if self.options.moto_process:
            from devstack.moto_server import start_process

            url, stop = start_process(
                self.options.host, self.options.aws_port, self.options.project_dir
            )
            self._stoppers.append(("moto server process", stop))
            return url
        from moto.server import ThreadedMotoServer

        from devstack import moto_tuning

        moto_tuning.apply()
        moto = ThreadedMotoServer(
            ip_address=self.options.host, port=self.options.aws_port, verbose=False
        )
        _bounded(moto.start, "starting the moto server")
        self._stoppers.append(("moto server", lambda: _bounded(moto.stop, "stopping moto", 10)))
        host, port = moto.get_host_and_port()
        return f"http://{host}:{port}"

    def _start_anthropic(self) -> str:
        if self.real_anthropic:
            return os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
        from devstack.anthropic import AnthropicEmulator, EmulatorConfig

        config = EmulatorConfig(
            tokens_per_second=self.options.tokens_per_second,
            reply_tokens=self.options.reply_tokens,
            min_cacheable_override=self.options.min_cacheable,
        )
        if self.bedrock:
            from devstack.bedrock import BedrockStandIn

            emulator: AnthropicEmulator = BedrockStandIn(
                self.options.host, self.options.anthropic_port, config
            )
        else:
            emulator = AnthropicEmulator(self.options.host, self.options.anthropic_port, config)
        emulator.start()
        self._stoppers.append(("anthropic emulator", emulator.stop))
        return emulator.url

    def _local_env(
        self, aws_url: str, lambda_url: str, anthropic_url: str, secret: str
    ) -> dict[str, str]:
        prefix = f"{_app_name(self.options.project_dir)}-{self.options.chalice_stage}"
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
        if self.bedrock:
            env["MODEL_PROVIDER"] = "bedrock"
            env["ANTHROPIC_BEDROCK_BASE_URL"] = anthropic_url
            env["BEDROCK_SCOPE"] = os.environ.get("BEDROCK_SCOPE", "global")
        elif not self.real_anthropic:
            env["ANTHROPIC_BASE_URL"] = anthropic_url
            env["ANTHROPIC_API_KEY"] = "devstack-emulator-key"
        return env

    def _load_app(self) -> tuple[Any, Any]:
        """Load ``app.py`` the way ``chalice local`` does: config first, its env applied."""
        from chalice.cli.factory import CLIFactory

        factory = CLIFactory(str(self.options.project_dir), environ=os.environ)
        config = factory.create_config_obj(chalice_stage_name=self.options.chalice_stage)
        app = config.chalice_app
        # Chalice logs `app.log` to stdout (CloudWatch in Lambda); here stdout carries only the
        # start-up banner and the warm tick lines, so the app's other logs go to stderr.
        for handler in app.log.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
        return app, config

    def _create_resources(self, table_name: str, schedule_group: str) -> None:
        import boto3

        from chalicelib.adapters.store import create_table

        session = boto3.session.Session()
        create_table(session.client("dynamodb"), table_name)
        session.client("scheduler").create_schedule_group(Name=schedule_group)

    def _start_scheduler(self, group: str, lambda_url: str) -> None:
        import boto3

        from devstack.scheduler import SchedulerRunner

        session = boto3.session.Session()
        runner = SchedulerRunner(
            session.client("scheduler"),
            session.client("lambda", endpoint_url=lambda_url),
            [group],
            exact=self.options.exact_scheduler,
            sqs_client=session.client("sqs"),
        ).start()
        self._stoppers.append(("scheduler runner", runner.stop))

    def _create_tick_queues(self, aws_url: str) -> Any:
        from devstack.ticks import create_tick_queues_at

        prefix = f"{_app_name(self.options.project_dir)}-{self.options.chalice_stage}"
        return create_tick_queues_at(aws_url, prefix, REGION)

    def _start_mapping(self, queues: Any, lambdas: Any) -> None:
        from devstack.ticks import start_mapping

        mapping = start_mapping(
            queues, lambda event: lambdas.run("warm", event), self.options.esm_max_concurrency
        )
        self._stoppers.append(("tick queue mapping", mapping.stop))

    def _write_endpoints(self) -> None:
        path = self.options.endpoints_file
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.endpoints, indent=2) + "\n")
        temporary.replace(path)
        self._stoppers.append(("endpoints file", lambda: path.unlink(missing_ok=True)))

    # --- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop in reverse start order: no new work first, then the sockets, then the backends."""
        while self._stoppers:
            name, stop = self._stoppers.pop()
            started = time.monotonic()
            try:
                stop()
            except Exception:
                log.exception("stopping the %s failed", name)
            log.debug("stopped the %s in %.2f s", name, time.monotonic() - started)


def _app_name(project_dir: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        config = json.loads((project_dir / ".chalice" / "config.json").read_text())
        return str(config.get("app_name") or "app")
    return "app"


def _prime_app_clients(services: Any) -> None:
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


def _quiet_third_party_logs() -> None:
    for name in ("werkzeug", "websockets", "botocore", "urllib3", "httpx", "anthropic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
