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

import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devstack.stack_parts import (
    DEFAULT_ENDPOINTS_FILE,
    REGION,
    SCRUBBED,
    PortInUse,
    StackOptions,
    app_name,
    bedrock_requested,
    bounded,
    check_ports,
    create_resources,
    local_env_for,
    more_tokens,
    prime_app_clients,
    quiet_third_party_logs,
    write_json,
)

if TYPE_CHECKING:
    from chalicelib.config import Settings
    from devstack.gateway import WebSocketGateway
    from devstack.http import HttpServer
    from devstack.lambdas import LambdaEmulator

__all__ = ["DEFAULT_ENDPOINTS_FILE", "PortInUse", "Stack", "StackOptions"]

log = logging.getLogger("devstack")


class Stack:
    """Start with ``start()`` (returns the endpoints), stop with ``stop()``; both are bounded."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.endpoints: dict[str, Any] = {}
        self.bedrock = bedrock_requested()
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
        # Heavy imports (moto, chalice, the app) happen in the steps, after the environment is
        # set: the app's modules then never see anything but the local endpoints, and `python -m
        # devstack --help` stays instant.
        check_ports(self.options, anthropic=not self.real_anthropic)
        quiet_third_party_logs()
        aws_url = self._start_moto()
        anthropic_url = self._start_anthropic()
        lambdas = self._start_lambdas()
        gateway = self._start_gateway()
        secret = secrets.token_urlsafe(32)
        queues = self._create_tick_queues(aws_url)
        local_env = local_env_for(
            self.options, self.real_anthropic, aws_url, lambdas.url, anthropic_url, secret
        )
        local_env.update(
            TICK_QUEUE_URL=queues.url, TICK_QUEUE_ARN=queues.arn, WARM_DLQ_ARN=queues.dlq_arn
        )
        app, config = self._load_app(local_env)
        gateway.stage = config.api_gateway_stage
        os.environ["WEBSOCKET_ENDPOINT"] = gateway.management_url
        app_settings = self._prepare_app()
        self._attach_handlers(app, config, lambdas, gateway)
        from chalicelib import auth

        token = auth.mint(self.options.user, secret)
        http = self._start_http(app, config, gateway, token)
        self._start_scheduler(app_settings.schedule_group, lambdas.url)
        self._start_mapping(queues, lambdas)
        self.endpoints = {
            "httpUrl": http.url,
            "wsUrl": gateway.ws_url,
            "token": token,
            "anthropicUrl": anthropic_url,
            "anthropic": self._anthropic_mode,
            "managementUrl": gateway.management_url,
            "lambdaUrl": lambdas.url,
            "awsUrl": aws_url,
            **self._backend_endpoints(app_settings, queues),
            **more_tokens(auth.mint, self.options, secret),
            "wsLimits": gateway.limits.as_dict(),
        }
        self._write_endpoints()
        return self.endpoints

    def _backend_endpoints(self, app_settings: Settings, queues: Any) -> dict[str, str]:
        return {
            "tableName": app_settings.table_name,
            "scheduleGroup": app_settings.schedule_group,
            "tickQueueUrl": queues.url,
            "tickDlqUrl": queues.dlq_url,
            "scheduler": "exact" if self.options.exact_scheduler else "aws-jitter",
        }

    @property
    def _anthropic_mode(self) -> str:
        # The page labels replies as emulated when they are.
        return "api" if self.real_anthropic else "emulator"

    def _start_lambdas(self) -> LambdaEmulator:
        from devstack.lambdas import LambdaEmulator

        # Bound now, handlers attached once the app is loaded (nothing can call before).
        options = self.options
        lambdas = LambdaEmulator(
            {}, options.host, options.lambda_port, workers=options.lambda_workers
        ).start()
        self._stoppers.append(("lambda emulator", lambdas.stop))
        return lambdas

    def _start_gateway(self) -> WebSocketGateway:
        from devstack.gateway import GatewayLimits, WebSocketGateway

        options = self.options
        limits = GatewayLimits(
            idle_timeout_s=options.ws_idle_timeout_s,
            max_connection_s=options.ws_max_connection_s,
            max_message_bytes=options.ws_max_message_bytes,
        )
        gateway = WebSocketGateway(
            {}, options.host, options.ws_port, options.management_port, limits=limits
        )
        gateway.start()
        self._stoppers.append(("websocket gateway", gateway.stop))
        return gateway

    def _prepare_app(self) -> Settings:
        """The app's settings, with its table and schedule group created and its clients built."""
        from chalicelib import bootstrap
        from chalicelib.config import settings

        bootstrap.reset()
        from devstack.ticks import widen_client_pools

        widen_client_pools()
        app_settings = settings()
        create_resources(app_settings.table_name, app_settings.schedule_group)
        prime_app_clients(bootstrap.services())
        return app_settings

    def _attach_handlers(
        self, app: Any, config: Any, lambdas: LambdaEmulator, gateway: WebSocketGateway
    ) -> None:
        lambdas.functions = {fn.name: app.handler_map[fn.name] for fn in app.pure_lambda_functions}
        lambdas.timeouts = {
            name: int(config.scope(self.options.chalice_stage, name).lambda_timeout or 900)
            for name in lambdas.functions
        }
        gateway.handlers = {
            "connect": app.handler_map[app.websocket_handlers["$connect"].name],
            "message": app.handler_map[app.websocket_handlers["$default"].name],
            "disconnect": app.handler_map[app.websocket_handlers["$disconnect"].name],
        }

    def _start_http(
        self, app: Any, config: Any, gateway: WebSocketGateway, token: str
    ) -> HttpServer:
        from devstack.http import HttpServer

        http = HttpServer(app, config, self.options.host, self.options.http_port)
        # The page keeps its socket alive within this gateway's limits (shortened ones included).
        http.set_page_config(
            {
                "httpUrl": http.url,
                "wsUrl": gateway.ws_url,
                "token": token,
                "anthropic": self._anthropic_mode,
                "wsLimits": gateway.limits.as_dict(),
            }
        )
        http.start()
        self._stoppers.append(("http server", http.stop))
        return http

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
        bounded(moto.start, "starting the moto server")
        self._stoppers.append(("moto server", lambda: bounded(moto.stop, "stopping moto", 10)))
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

    def _load_app(self, local_env: dict[str, str]) -> tuple[Any, Any]:
        """Load ``app.py`` the way ``chalice local`` does: config first, its env applied."""
        from chalice.cli.factory import CLIFactory

        for name in SCRUBBED:
            os.environ.pop(name, None)
        os.environ.update(local_env)
        factory = CLIFactory(str(self.options.project_dir), environ=os.environ)
        config = factory.create_config_obj(chalice_stage_name=self.options.chalice_stage)
        app = config.chalice_app
        # Chalice logs `app.log` to stdout (CloudWatch in Lambda); here stdout carries only the
        # start-up banner and the warm tick lines, so the app's other logs go to stderr.
        for handler in app.log.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
        # `.chalice/config.json` is applied on top (as in Lambda); endpoints must stay ours.
        os.environ.update(local_env)
        return app, config

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

        prefix = f"{app_name(self.options.project_dir)}-{self.options.chalice_stage}"
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
        write_json(path, self.endpoints)
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
