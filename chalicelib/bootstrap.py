"""Composition root: real adapters, built on first use so moto (or the local stack) can step in.

Tests replace the whole graph with `use(services)`; `reset()` drops it.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

import boto3

from chalicelib.adapters.clock import SystemClock
from chalicelib.adapters.lambdas import AsyncInvoker
from chalicelib.adapters.sockets import ManagementApiSockets
from chalicelib.adapters.store import DynamoStore
from chalicelib.adapters.timer import PreciseTimer
from chalicelib.auth import JwksVerifier, SharedSecretVerifier, TokenVerifier
from chalicelib.config import Settings, settings
from chalicelib.ports import Model
from chalicelib.services import Ports, Services

_override: Services | None = None


def use(services: Services) -> None:
    global _override
    _override = services


def reset() -> None:
    global _override
    _override = None
    _real.cache_clear()
    verifier.cache_clear()
    _models.clear()
    settings.cache_clear()


def services() -> Services:
    return _override or _real()


@lru_cache(maxsize=1)
def verifier() -> TokenVerifier:
    config = settings()
    if config.jwt_jwks_url:
        return JwksVerifier(config.jwt_jwks_url, config.jwt_issuer, config.jwt_audience or None)
    return SharedSecretVerifier(config.jwt_secret)


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    return boto3.session.Session()


@lru_cache(maxsize=1)
def _real() -> Services:
    config = settings()
    invoker = AsyncInvoker(lambda: _session().client("lambda"), config.generate_function_arn)
    timer = PreciseTimer(
        lambda: _session().client("scheduler"),
        invoker,
        group=config.schedule_group,
        warm_function_arn=config.warm_function_arn,
        role_arn=config.scheduler_role_arn,
        dead_letter_arn=config.warm_dlq_arn,
    )
    ports = Ports(
        store=DynamoStore(config.table_name, client_factory=lambda: _session().client("dynamodb")),
        timer=timer,
        sockets=ManagementApiSockets(
            lambda: _session().client(
                "apigatewaymanagementapi", endpoint_url=config.management_api_url
            )
        ),
        clock=SystemClock(),
        model=lambda: _model(config),
        invoker=lambda: invoker,
        new_id=lambda: uuid.uuid4().hex,
        default_model=config.default_model,
        default_system=config.default_system_prompt,
        default_max_tokens=config.default_max_tokens,
    )
    return Services(ports)


_models: dict[str, Model] = {}


def _model(config: Settings) -> Model:
    # Imported here: the anthropic SDK is only loaded by the warm and generate functions.
    from chalicelib.adapters.model import AnthropicModel

    if "model" not in _models:
        _models["model"] = AnthropicModel.from_settings(
            _anthropic_key(config), config.anthropic_base_url or None
        )
    return _models["model"]


def _anthropic_key(config: Settings) -> str:
    if config.anthropic_api_key or not config.anthropic_api_key_secret_id:
        return config.anthropic_api_key
    # The deployed stack keeps the key in Secrets Manager, read once per container.
    secret = (
        _session()
        .client("secretsmanager")
        .get_secret_value(SecretId=config.anthropic_api_key_secret_id)
    )
    return str(secret["SecretString"])
