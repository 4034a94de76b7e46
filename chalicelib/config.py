"""Settings from the environment, read once and frozen.

Every variable the Lambdas read is listed here (and only here), so the deployment template can be
checked against this module: `ENVIRONMENT_VARIABLES` names them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    "TABLE_NAME",
    "SCHEDULE_GROUP",
    "SCHEDULER_ROLE_ARN",
    "TICK_QUEUE_URL",
    "TICK_QUEUE_ARN",
    "GENERATE_FUNCTION_ARN",
    "WARM_DLQ_ARN",
    "METRICS_NAMESPACE",
    "WEBSOCKET_API_ID",
    "WEBSOCKET_STAGE",
    "WEBSOCKET_ENDPOINT",
    "JWT_SECRET",
    "JWT_SECRET_ID",
    "JWT_JWKS_URL",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_API_KEY_SECRET_ID",
    "ANTHROPIC_BASE_URL",
    "MODEL_PROVIDER",
    "BEDROCK_SCOPE",
    "ANTHROPIC_BEDROCK_BASE_URL",
    "DEFAULT_MODEL",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_SYSTEM_PROMPT",
    "DAILY_BUDGET_USD",
    "MAX_CONVERSATIONS_PER_USER",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)

DEFAULT_MODEL = "claude-sonnet-5-5"
# Thinking models spend output tokens on thinking before they answer: too small a budget ends in
# a blank reply (failed `empty_reply`). Only the tokens used are billed.
DEFAULT_MAX_TOKENS = 8192
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
# Per user and UTC day, turns and warms together (docs/operations.md, "Per-user limits"):
# about 1,000 turns of a 20,000-token conversation that reads the cache on the default model.
DEFAULT_DAILY_BUDGET_USD = 5.0
DEFAULT_MAX_CONVERSATIONS = 500
# The local stack's (and tests') namespace; deployed, `CacheWarming/<stack>`.
DEFAULT_METRICS_NAMESPACE = "CacheWarming"


@dataclass(frozen=True)
class Settings:
    table_name: str
    schedule_group: str
    scheduler_role_arn: str
    # The tick queue: URL for SendMessage, ARN as the Scheduler's target.
    tick_queue_url: str
    tick_queue_arn: str
    generate_function_arn: str
    warm_dlq_arn: str
    # CloudWatch namespace of the app's own metrics (chalicelib/metrics.py): one per stack, so two
    # stages in one account never add up in one metric; the template sets it.
    metrics_namespace: str
    websocket_api_id: str
    websocket_stage: str
    # Full management-API URL; overrides api id + stage (the local stack's gateway, custom domains).
    websocket_endpoint: str
    # HS256 signing secret: its value (the local stack and tests) or, deployed, the Secrets
    # Manager secret holding it, read once per container (never a value in the environment).
    jwt_secret: str
    jwt_secret_id: str
    # Production identity: RS256 tokens from this JWKS (e.g. a Cognito user pool); wins over the secret.
    jwt_jwks_url: str
    jwt_issuer: str
    jwt_audience: str
    anthropic_api_key: str
    anthropic_api_key_secret_id: str
    anthropic_base_url: str
    # Who serves the model (chalicelib/bootstrap.py `provider`): "anthropic" or "bedrock".
    model_provider: str
    # Bedrock only: the inference profile scope ("global", "us", "eu", ...; "" for the regional
    # model id itself) and an endpoint override (the local stand-in).
    bedrock_scope: str
    bedrock_base_url: str
    default_model: str
    default_max_tokens: int
    default_system_prompt: str
    # None: no budget (DAILY_BUDGET_USD="none").
    daily_budget_usd: float | None
    max_conversations_per_user: int
    region: str

    @property
    def management_api_url(self) -> str:
        if self.websocket_endpoint:
            return self.websocket_endpoint
        return (
            f"https://{self.websocket_api_id}.execute-api.{self.region}.amazonaws.com/"
            f"{self.websocket_stage}"
        )


def settings_from(env: Mapping[str, str]) -> Settings:
    return Settings(
        table_name=env.get("TABLE_NAME", "cache-warming"),
        schedule_group=env.get("SCHEDULE_GROUP", "cache-warming"),
        scheduler_role_arn=env.get(
            "SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/cache-warming-scheduler"
        ),
        tick_queue_url=env.get(
            "TICK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/cache-warming-ticks"
        ),
        tick_queue_arn=env.get(
            "TICK_QUEUE_ARN", "arn:aws:sqs:us-east-1:123456789012:cache-warming-ticks"
        ),
        generate_function_arn=env.get(
            "GENERATE_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:generate"
        ),
        warm_dlq_arn=env.get("WARM_DLQ_ARN", ""),
        metrics_namespace=env.get("METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE,
        websocket_api_id=env.get("WEBSOCKET_API_ID", "local"),
        websocket_stage=env.get("WEBSOCKET_STAGE", "api"),
        websocket_endpoint=env.get("WEBSOCKET_ENDPOINT", ""),
        jwt_secret=env.get("JWT_SECRET", ""),
        jwt_secret_id=env.get("JWT_SECRET_ID", ""),
        jwt_jwks_url=env.get("JWT_JWKS_URL", ""),
        jwt_issuer=env.get("JWT_ISSUER", ""),
        jwt_audience=env.get("JWT_AUDIENCE", ""),
        anthropic_api_key=env.get("ANTHROPIC_API_KEY", ""),
        anthropic_api_key_secret_id=env.get("ANTHROPIC_API_KEY_SECRET_ID", ""),
        anthropic_base_url=env.get("ANTHROPIC_BASE_URL", ""),
        model_provider=env.get("MODEL_PROVIDER", "anthropic") or "anthropic",
        bedrock_scope=env.get("BEDROCK_SCOPE", "global"),
        bedrock_base_url=env.get("ANTHROPIC_BEDROCK_BASE_URL", ""),
        default_model=env.get("DEFAULT_MODEL", DEFAULT_MODEL),
        default_max_tokens=int(env.get("DEFAULT_MAX_TOKENS", str(DEFAULT_MAX_TOKENS))),
        default_system_prompt=env.get("DEFAULT_SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT),
        daily_budget_usd=_budget(env.get("DAILY_BUDGET_USD", "")),
        max_conversations_per_user=int(
            env.get("MAX_CONVERSATIONS_PER_USER") or DEFAULT_MAX_CONVERSATIONS
        ),
        region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
    )


def _budget(value: str) -> float | None:
    """Empty: the default; "none": no budget; otherwise dollars, at least 0 (0 stops all spend)."""
    if not value.strip():
        return DEFAULT_DAILY_BUDGET_USD
    if value.strip().lower() == "none":
        return None
    budget = float(value)
    if not budget >= 0:
        raise ValueError(f"DAILY_BUDGET_USD must be a number of dollars >= 0 or 'none': {value!r}")
    return budget


@lru_cache(maxsize=1)
def settings() -> Settings:
    return settings_from(os.environ)
