"""Composition root: real adapters, built on first use so moto (or the local stack) can step in.

Nothing here runs at import time: a handler's first call builds what it needs (`chalicelib.lazy`).
Tests replace the whole graph with `use(services)`; `reset()` drops everything built.

The model provider is chosen here and only here (`MODEL_PROVIDER=anthropic|bedrock`): one
`Provider` holds the catalog id -> wire id mapping, the model adapter (its client and its error
mapping) and the price book priced by that same wire id.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from chalicelib.adapters.clock import SystemClock
from chalicelib.adapters.lambdas import AsyncInvoker
from chalicelib.adapters.secrets import SecretString
from chalicelib.adapters.sockets import ManagementApiSockets
from chalicelib.adapters.store import DynamoStore
from chalicelib.adapters.store_table import client_config as store_client_config
from chalicelib.adapters.tick_queue import SqsTickQueue
from chalicelib.adapters.timer import PreciseTimer
from chalicelib.auth import JwksVerifier, SharedSecretVerifier, TokenVerifier, audiences
from chalicelib.config import settings
from chalicelib.lazy import Lazy
from chalicelib.ports import Model, PriceBook
from chalicelib.services import Limits, Ports, Services

# A boto3 session must not create clients from several threads at once.
_session_lock = threading.Lock()
_override: Services | None = None


def use(services: Services) -> None:
    global _override
    _override = services


def reset() -> None:
    global _override
    _override = None
    for lazy in (_real, verifier, provider, _model, _prices, _session):
        lazy.clear()
    settings.cache_clear()


def services() -> Services:
    return _override or _real()


def _verifier() -> TokenVerifier:
    config = settings()
    if config.jwt_jwks_url:
        return JwksVerifier(config.jwt_jwks_url, config.jwt_issuer, audiences(config.jwt_audience))
    if config.jwt_secret or not config.jwt_secret_id:
        return SharedSecretVerifier(config.jwt_secret)
    # Deployed: the secret is read here, once per container (the verifier is built once). A
    # failed read raises, so nothing is cached and the next request tries again.
    return SharedSecretVerifier(
        SecretString(lambda: _client("secretsmanager"), config.jwt_secret_id).read()
    )


def _client(service: str, **options: Any) -> Any:
    with _session_lock:
        return _session().client(service, **options)  # type: ignore[call-overload]


def _build() -> Services:
    config = settings()
    invoker = AsyncInvoker(lambda: _client("lambda"), config.generate_function_arn)
    tick_queue = SqsTickQueue(lambda: _client("sqs"), config.tick_queue_url)
    timer = PreciseTimer(
        lambda: _client("scheduler"),
        tick_queue,
        group=config.schedule_group,
        queue_arn=config.tick_queue_arn,
        role_arn=config.scheduler_role_arn,
        dead_letter_arn=config.warm_dlq_arn,
    )
    ports = Ports(
        store=DynamoStore(
            config.table_name,
            client_factory=lambda: _client("dynamodb", config=store_client_config()),
        ),
        timer=timer,
        sockets=ManagementApiSockets(
            lambda: _client("apigatewaymanagementapi", endpoint_url=config.management_api_url)
        ),
        clock=SystemClock(),
        model=_model,
        invoker=lambda: invoker,
        prices=_prices,
        new_id=lambda: uuid.uuid4().hex,
        default_model=config.default_model,
        default_system=config.default_system_prompt,
        default_max_tokens=config.default_max_tokens,
        limits=Limits(
            conversations=config.max_conversations_per_user,
            daily_budget_usd=config.daily_budget_usd,
        ),
        tick_queue=tick_queue,
    )
    return Services(ports)


@dataclass(frozen=True)
class Provider:
    name: str  # "anthropic" | "bedrock"
    # The catalog id -> the id sent to this provider, which also keys its prices.
    wire_id: Callable[[str], str]
    # Builders, called once each through `_model` / `_prices`: the SDK and the price library load
    # only in the functions that use them.
    model: Callable[[], Model]
    prices: Callable[[], PriceBook]


def _same_id(model: str) -> str:
    return model


def _anthropic() -> Provider:
    def model() -> Model:
        # Imported here: the anthropic SDK is only loaded by the warm and generate functions.
        from chalicelib.adapters.model import AnthropicModel

        config = settings()
        return AnthropicModel.from_settings(_anthropic_key(), config.anthropic_base_url or None)

    def prices() -> PriceBook:
        # Imported here: the price library (pydantic + its data) loads only where costs are computed.
        from chalicelib.adapters.prices import GenaiPriceBook

        return GenaiPriceBook()

    return Provider("anthropic", _same_id, model, prices)


def _bedrock() -> Provider:
    """Claude on Amazon Bedrock, signed by the function's role: no Anthropic key or secret."""
    config = settings()
    from chalicelib.domain.catalog.bedrock import bedrock_id

    def wire_id(model: str) -> str:
        return bedrock_id(model, config.bedrock_scope)

    def model() -> Model:
        from chalicelib.adapters.bedrock import BedrockModel

        return BedrockModel.for_bedrock(
            config.region, config.bedrock_scope, config.bedrock_base_url or None
        )

    def prices() -> PriceBook:
        from chalicelib.adapters.prices import GenaiPriceBook

        # genai-prices names AWS's prices `aws`, keyed by the id Bedrock is sent.
        return GenaiPriceBook("aws", wire_id)

    return Provider("bedrock", wire_id, model, prices)


_PROVIDERS: dict[str, Callable[[], Provider]] = {"anthropic": _anthropic, "bedrock": _bedrock}


def _provider() -> Provider:
    name = settings().model_provider
    build = _PROVIDERS.get(name)
    if build is None:
        raise ValueError(f"MODEL_PROVIDER must be one of {sorted(_PROVIDERS)}: {name!r}")
    return build()


def _build_model() -> Model:
    return provider().model()


def _build_prices() -> PriceBook:
    return provider().prices()


def _anthropic_key() -> str:
    config = settings()
    if config.anthropic_api_key or not config.anthropic_api_key_secret_id:
        return config.anthropic_api_key
    # The deployed stack keeps the key in Secrets Manager.
    return SecretString(
        lambda: _client("secretsmanager"), config.anthropic_api_key_secret_id
    ).read()


_session: Lazy[boto3.session.Session] = Lazy(boto3.session.Session)
_real: Lazy[Services] = Lazy(_build)
verifier: Lazy[TokenVerifier] = Lazy(_verifier)
provider: Lazy[Provider] = Lazy(_provider)
_model: Lazy[Model] = Lazy(_build_model)
_prices: Lazy[PriceBook] = Lazy(_build_prices)
