"""`make smoke STAGE=…` (devstack/smoke.py) against stages in moto: the outputs it reads, the token
it gets (the stage's HS256 secret, or its Cognito test user's access token, verified through the
pool's JWKS), the cost it announces before any call, and what it does without credentials. The
run against the local stack, probe included, is tests/e2e/test_probe.py."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.client
import pytest

from chalicelib.adapters.prices import GenaiPriceBook
from chalicelib.auth import JwksVerifier, SharedSecretVerifier
from chalicelib.domain.catalog import CATALOG
from devstack import smoke
from tests.helpers import serving_jwks

ROOT = Path(__file__).resolve().parents[2]
STACK = "cache-warming-smoke"
HTTP_URL = "https://rest.example/api/"
WS_URL = "wss://ws.example/api/"
SIGNING_KEY = "a-stage-signing-secret-of-sixty-four-characters-or-thereabouts-0"


class Recorder:
    """Lines printed and AWS calls made, in one sequence; the probe is not run (stands in)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[str] = []
        self.targets: list[tuple[smoke.Target, str]] = []
        original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
        events = self.events

        def recorded(client: Any, operation: str, params: Any) -> Any:
            events.append(f"call {operation}")
            return original(client, operation, params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recorded)

    def out(self, line: str) -> None:
        self.events.append(line)

    def runner(self, target: smoke.Target, model: str, out: smoke.Out) -> bool:
        self.targets.append((target, model))
        return True

    def run(self, *argv: str) -> int:
        return smoke.smoke(list(argv), self.out, self.runner)


def _stack(aws: Any, **outputs: str) -> None:
    """A stack with the outputs a deployed stage has (moto creates the queue; outputs are literal)."""
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    aws.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_NAME", STACK)


def test_without_aws_credentials_it_says_so_in_one_line_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("make smoke sent something without credentials")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert smoke.main(["dev"]) == 2
    printed = capsys.readouterr()
    assert printed.out.splitlines() == [smoke.NO_CREDENTIALS] and printed.err == ""


def test_make_smoke_runs_the_driver_for_the_stage() -> None:
    dry = subprocess.run(
        ["make", "-n", "smoke", "STAGE=prod"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr
    assert "-m devstack.smoke prod" in dry.stdout


def test_an_hs256_stage_is_probed_with_a_token_from_its_secret(
    aws: Any, stage: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = aws.client("secretsmanager").create_secret(Name="jwt", SecretString=SIGNING_KEY)["ARN"]
    _stack(aws, EndpointURL=HTTP_URL, WebsocketConnectEndpointURL=WS_URL, JwtSigningSecretArn=arn)
    recorder = Recorder(monkeypatch)
    assert recorder.run("smoke") == 0

    first_call = next(i for i, e in enumerate(recorder.events) if e.startswith("call "))
    announced = recorder.events[:first_call]
    assert any("expected cost $" in line for line in announced), recorder.events
    ((target, model),) = recorder.targets
    assert (target.http_url, target.ws_url) == (HTTP_URL, WS_URL)
    assert SharedSecretVerifier(SIGNING_KEY).verify(target.token) == smoke.SMOKE_USER
    assert model == smoke.estimate(GenaiPriceBook(), int(time.time() * 1000)).model
    calls = [e for e in recorder.events if e.startswith("call ")]
    assert calls == ["call DescribeStacks", "call GetSecretValue"]
    assert SIGNING_KEY not in "\n".join(recorder.events)  # the secret is never printed


@pytest.fixture
def moto_jwks() -> Iterator[str]:
    """moto's Cognito signing key set (the one its tokens are signed with), served on loopback
    the way a pool serves `/.well-known/jwks.json`."""
    import moto.cognitoidp

    resources = Path(moto.cognitoidp.__file__).parent / "resources" / "jwks-public.json.gz"
    body = gzip.decompress(resources.read_bytes())
    with serving_jwks(body) as url:
        yield url


def _pool(aws: Any) -> tuple[str, str]:
    cognito = aws.client("cognito-idp")
    pool = cognito.create_user_pool(
        PoolName="smoke-users", AdminCreateUserConfig={"AllowAdminCreateUserOnly": True}
    )["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool,
        ClientName="web",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return pool, client


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def test_a_cognito_stage_is_probed_with_its_test_users_access_token(
    aws: Any, stage: None, monkeypatch: pytest.MonkeyPatch, moto_jwks: str
) -> None:
    pool, client = _pool(aws)
    _stack(
        aws,
        EndpointURL=HTTP_URL,
        WebsocketConnectEndpointURL=WS_URL,
        UserPoolId=pool,
        UserPoolClientId=client,
        JwtSigningSecretArn="arn:unused",
    )
    recorder = Recorder(monkeypatch)
    assert recorder.run("smoke") == 0
    assert recorder.run("smoke") == 0  # the second run finds its test user and resets it
    tokens = [target.token for target, _ in recorder.targets]

    issuer = f"https://cognito-idp.us-east-1.amazonaws.com/{pool}"
    verifier = JwksVerifier(moto_jwks, issuer, (client,))  # the functions' verifier, as deployed
    for token in tokens:
        assert _claims(token)["token_use"] == "access" and _claims(token)["client_id"] == client
        assert verifier.verify(token) == _claims(token)["sub"]
    calls = [e for e in recorder.events if e.startswith("call ")]
    assert "call GetSecretValue" not in calls
    assert calls.count("call AdminInitiateAuth") == 2


def test_the_pools_id_token_is_refused_by_the_same_verifier(aws: Any, moto_jwks: str) -> None:
    pool, client = _pool(aws)
    cognito = aws.client("cognito-idp")
    smoke.cognito_token(cognito, pool, client)  # creates the test user
    password = "Another-password-1"
    cognito.admin_set_user_password(
        UserPoolId=pool, Username=smoke.SMOKE_USER, Password=password, Permanent=True
    )
    signed_in = cognito.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": smoke.SMOKE_USER, "PASSWORD": password},
    )["AuthenticationResult"]
    verifier = JwksVerifier(
        moto_jwks, f"https://cognito-idp.us-east-1.amazonaws.com/{pool}", (client,)
    )
    assert _claims(signed_in["IdToken"])["token_use"] == "id"
    from chalicelib.domain.errors import Refused

    with pytest.raises(Refused):
        verifier.verify(signed_in["IdToken"])
    assert verifier.verify(signed_in["AccessToken"])


def test_a_missing_stack_is_one_line_and_no_probe(
    aws: Any, stage: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(monkeypatch)
    assert recorder.run("smoke") == 2
    assert recorder.targets == []
    assert f"make smoke: stack {STACK}" in recorder.events[-1]


def test_a_stack_without_its_urls_is_refused(
    aws: Any, stage: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stack(aws, JwtSigningSecretArn="arn:x")
    recorder = Recorder(monkeypatch)
    assert recorder.run("smoke") == 2
    assert "EndpointURL" in recorder.events[-1] and recorder.targets == []


def test_the_model_is_the_cheapest_active_catalog_model() -> None:
    prices, now = GenaiPriceBook(), int(time.time() * 1000)
    chosen = smoke.estimate(prices, now)
    for facts in CATALOG:
        if facts.lifecycle == "active":
            cost = smoke._run_cost(prices, facts.id, smoke.EXPECTED_REPLY_TOKENS, now)
            assert cost >= chosen.expected_usd, facts.id
    assert 0 < chosen.expected_usd < chosen.ceiling_usd
    # The smoke run stays cheap, and costs what the price library says, not a guess.
    assert chosen.ceiling_usd < 0.10
