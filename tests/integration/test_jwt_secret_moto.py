"""The deployed JWT signing secret: read from Secrets Manager by the composition root, once per
container, never taken from the environment as a value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib import bootstrap
from chalicelib.auth import mint
from tests.conftest import SESSION

SIGNING_KEY = "a-generated-signing-key-of-sixty-four-characters-000000000000000"


@pytest.fixture
def deployed_env(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.delenv("JWT_JWKS_URL", raising=False)
    monkeypatch.setenv("JWT_SECRET_ID", "cache-warming-test-jwt")
    bootstrap.reset()
    yield "cache-warming-test-jwt"
    bootstrap.reset()


def test_tokens_verify_against_the_secret_read_once_per_container(
    deployed_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = SESSION.client("secretsmanager")
    secrets.create_secret(Name=deployed_env, SecretString=SIGNING_KEY)
    assert bootstrap.verifier().verify(mint("alice", SIGNING_KEY)) == "alice"
    # A second request in the same container does not read the secret again.
    secrets.put_secret_value(SecretId=deployed_env, SecretString="rotated-" + SIGNING_KEY)
    assert bootstrap.verifier().verify(mint("bob", SIGNING_KEY)) == "bob"


def test_a_failed_read_raises_and_the_next_request_reads_again(deployed_env: str) -> None:
    with pytest.raises(ClientError) as error:
        bootstrap.verifier()
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    SESSION.client("secretsmanager").create_secret(Name=deployed_env, SecretString=SIGNING_KEY)
    assert bootstrap.verifier().verify(mint("alice", SIGNING_KEY)) == "alice"
