"""`make smoke STAGE=<stage>`: the project's probe against a deployed stage, on the cheapest model.

``python -m devstack.smoke <stage>`` (``make smoke STAGE=dev``):

1. Without AWS credentials (boto3's default chain) it prints one line and exits 2: nothing sent.
2. It prints the stage, the model (the cheapest active catalog model, priced by the price
   library) and the run's expected cost, before it sends anything anywhere.
3. It reads the stage's stack outputs (stack ``cache-warming-<stage>``, or ``STACK_NAME``, as
   ``infra/deploy.sh`` names it): the REST and WebSocket URLs, and how the stage signs in.
4. It gets a token: with the stack's Cognito user pool (outputs ``UserPoolId``/``UserPoolClientId``)
   the pool's access token of a test user (``smoke-test``, created if missing, a fresh random
   password each run, signed in with ADMIN_USER_PASSWORD_AUTH: the operator's IAM credentials,
   never a browser); otherwise a one-hour HS256 token minted with the stage's signing secret
   (output ``JwtSigningSecretArn``, read from Secrets Manager, never printed).
5. It runs the probe (``devstack.probe``, its public ``Probe``) against those endpoints, the probe's
   conversation pinned to that model and ``maxTokens`` (the probe closes it at the end).

``python -m devstack.smoke local`` does steps 2 and 5 against the local stack instead, its URLs and
token from ``.devstack/endpoints.json`` (``--endpoints``): no AWS account is involved. ``make test``
runs it that way (tests/e2e/test_probe.py).

AWS calls: CloudFormation DescribeStacks; Secrets Manager GetSecretValue, or Cognito
AdminCreateUser, AdminSetUserPassword and AdminInitiateAuth (Amazon Cognito Developer Guide,
"Verifying JSON web tokens" for the access token it yields; the app client allows the admin flow:
infra/template.yaml, UserPoolClient).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib import auth
from chalicelib.domain.catalog import CATALOG
from chalicelib.domain.pricing import Usage
from chalicelib.ports import PriceBook
from devstack.probe import (
    DEFAULT_INTERVAL_S,
    SYSTEM_PROMPT,
    TURN_TEXTS,
    Http,
    Probe,
    load_endpoints,
)

NO_CREDENTIALS = "make smoke: no AWS credentials found (boto3's default chain); nothing was sent."
LOCAL = "local"
SMOKE_USER = "smoke-test"
TOKEN_LIFETIME_S = 3600
# The probe's conversation: enough room for a thinking model's short answers, and a bound on cost.
MAX_TOKENS = 4096
# What one probe run sends (devstack/probe.py): three turns, and at most this many warms (three
# with a socket, one without, the re-arm after a turn, and slack for a late one).
TURNS = len(TURN_TEXTS)
MAX_WARMS = 8
EXPECTED_REPLY_TOKENS = 400
# Anthropic's rough rule of thumb, about four bytes of English per token.
BYTES_PER_TOKEN = 4

Out = Callable[[str], None]


class SmokeError(Exception):
    """The smoke run cannot start: the one line says why."""


@dataclass(frozen=True)
class Target:
    http_url: str
    ws_url: str
    token: str
    sign_in: str  # how the token was had, for the report


@dataclass(frozen=True)
class Estimate:
    model: str
    expected_usd: float
    ceiling_usd: float


# --- the model and the cost ---------------------------------------------------------------


def _tokens(text: str) -> int:
    return -(-len(text.encode()) // BYTES_PER_TOKEN)


def _run_cost(prices: PriceBook, model: str, reply_tokens: int, at_ms: int) -> float:
    """One probe run. Every request marks the whole prompt for the cache: a turn reads what is
    cached and writes the rest (the system prompt on the first turn), and the warm after it
    writes the reply (counted with the turn); the other warms re-read the whole prefix."""
    cached, history = 0, _tokens(SYSTEM_PROMPT)
    total = 0.0
    for text in TURN_TEXTS:
        prompt = history + _tokens(text)
        written = prompt - cached + reply_tokens
        turn = Usage(0, reply_tokens, cached, written, written, 0)
        total += prices.cost_usd(model, turn, at_ms)
        cached = history = prompt + reply_tokens
    warm = Usage(0, 1, cached, 0, 0, 0)
    return total + MAX_WARMS * prices.cost_usd(model, warm, at_ms)


def estimate(prices: PriceBook, at_ms: int) -> Estimate:
    """The cheapest active catalog model for one probe run, and that run's cost."""
    costs = {
        facts.id: _run_cost(prices, facts.id, EXPECTED_REPLY_TOKENS, at_ms)
        for facts in CATALOG
        if facts.lifecycle == "active"
    }
    model = min(costs, key=lambda model_id: (costs[model_id], model_id))
    return Estimate(model, costs[model], _run_cost(prices, model, MAX_TOKENS, at_ms))


# --- the stage: outputs and a token ----------------------------------------------------------


def has_credentials() -> bool:
    import boto3

    return boto3.session.Session().get_credentials() is not None


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    from botocore.exceptions import ClientError

    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise SmokeError(f"make smoke: stack {stack_name}: {error}") from error
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def cognito_token(cognito: Any, pool_id: str, client_id: str) -> str:
    """The test user's access token; its password is new each run and never kept."""
    # Random, with every class a pool policy may require: lower, upper, digit, symbol.
    password = f"{secrets.token_urlsafe(24)}aA1-"
    # An existing test user (an earlier run) is reused: its password is reset below.
    with contextlib.suppress(cognito.exceptions.UsernameExistsException):
        cognito.admin_create_user(UserPoolId=pool_id, Username=SMOKE_USER, MessageAction="SUPPRESS")
    cognito.admin_set_user_password(
        UserPoolId=pool_id, Username=SMOKE_USER, Password=password, Permanent=True
    )
    signed_in = cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": SMOKE_USER, "PASSWORD": password},
    )
    return str(signed_in["AuthenticationResult"]["AccessToken"])


def secret_token(secretsmanager: Any, secret_id: str) -> str:
    secret = secretsmanager.get_secret_value(SecretId=secret_id)["SecretString"]
    return auth.mint(SMOKE_USER, secret, lifetime_s=TOKEN_LIFETIME_S)


def stage_target(session: Any, stack_name: str) -> Target:
    outputs = stack_outputs(session.client("cloudformation"), stack_name)
    missing = [k for k in ("EndpointURL", "WebsocketConnectEndpointURL") if k not in outputs]
    if missing:
        raise SmokeError(f"make smoke: stack {stack_name} has no output {', '.join(missing)}")
    if "UserPoolId" in outputs:
        pool, client = outputs["UserPoolId"], outputs["UserPoolClientId"]
        token = cognito_token(session.client("cognito-idp"), pool, client)
        sign_in = f"Cognito user {SMOKE_USER} of {pool}"
    elif "JwtSigningSecretArn" in outputs:
        token = secret_token(session.client("secretsmanager"), outputs["JwtSigningSecretArn"])
        sign_in = f"HS256 token for {SMOKE_USER} from the stage's signing secret"
    else:
        raise SmokeError(f"make smoke: stack {stack_name} names no way to sign in")
    return Target(outputs["EndpointURL"], outputs["WebsocketConnectEndpointURL"], token, sign_in)


def local_target(endpoints: Path) -> Target:
    found = load_endpoints(endpoints)
    return Target(found["httpUrl"], found["wsUrl"], found["token"], "the local stack's dev token")


# --- the probe, pinned to the model ---------------------------------------------------------


class PinnedHttp(Http):
    """The probe's HTTP client; the conversation it creates uses the smoke's model."""

    def __init__(self, base_url: str, token: str, model: str) -> None:
        super().__init__(base_url, token)
        self.model = model

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if method == "POST" and path == "/conversations" and isinstance(body, dict):
            body = {**body, "model": self.model, "maxTokens": MAX_TOKENS}
        return super().call(method, path, body)


def run_probe(target: Target, model: str, out: Out) -> bool:
    probe = Probe(target.http_url, target.ws_url, target.token, out=out)
    probe.http = PinnedHttp(target.http_url, target.token, model)
    started = time.monotonic()
    ok = probe.run()
    print(f"smoke: {probe.summary(time.monotonic() - started)}", file=sys.stderr, flush=True)
    return ok


# --- the run ---------------------------------------------------------------------------------


def announce(stage: str, cost: Estimate, out: Out) -> None:
    out(f"smoke: stage {stage}; model {cost.model} (the cheapest active catalog model)")
    out(
        f"smoke: expected cost ${cost.expected_usd:.4f} (at most ${cost.ceiling_usd:.4f} if "
        f"every reply used maxTokens {MAX_TOKENS}): {TURNS} turns and up to {MAX_WARMS} warms, "
        f"{DEFAULT_INTERVAL_S} s apart, priced by genai-prices at Anthropic's rates"
    )


def smoke(argv: list[str], out: Out, runner: Callable[[Target, str, Out], bool] = run_probe) -> int:
    args = _parser().parse_args(argv)
    local = args.stage == LOCAL
    if not local and not has_credentials():
        out(NO_CREDENTIALS)
        return 2
    from chalicelib.adapters.prices import GenaiPriceBook

    cost = estimate(GenaiPriceBook(), int(time.time() * 1000))
    announce(args.stage, cost, out)
    try:
        target = local_target(args.endpoints) if local else _stage(args.stage)
    except SmokeError as error:
        out(str(error))
        return 2
    out(f"smoke: {target.http_url} and {target.ws_url}, signed in with {target.sign_in}")
    return 0 if runner(target, cost.model, out) else 1


def _stage(stage: str) -> Target:
    import boto3

    stack_name = os.environ.get("STACK_NAME") or f"cache-warming-{stage}"
    return stage_target(boto3.session.Session(), stack_name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.smoke", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("stage", help=f"the deployed stage, or {LOCAL!r} for the local stack")
    parser.add_argument(
        "--endpoints",
        type=Path,
        default=Path(".devstack/endpoints.json"),
        help="with stage local: the endpoints the stack wrote (default %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return smoke(sys.argv[1:] if argv is None else argv, lambda line: print(line, flush=True))


if __name__ == "__main__":
    sys.exit(main())
