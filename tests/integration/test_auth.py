"""Token verification: HS256 dev tokens and RS256 tokens against a JWKS served on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.auth import JwksVerifier, SharedSecretVerifier, bearer, mint
from chalicelib.domain.errors import Refused

SECRET = "a-dev-secret-that-is-long-enough-for-hs256"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST"
AUDIENCE = "client-123"


def refused(verifier: Any, token: str | None) -> bool:
    try:
        verifier.verify(token)
    except Refused as error:
        assert error.code == "unauthorized"
        return True
    return False


def test_dev_tokens_round_trip() -> None:
    assert SharedSecretVerifier(SECRET).verify(mint("alice", SECRET)) == "alice"


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "garbage",
        mint("alice", "another-secret-that-is-long-enough-too"),
        mint("alice", SECRET, lifetime_s=-120),  # expired beyond the leeway
        jwt.encode({"sub": "alice"}, SECRET, "HS256"),  # no exp
        jwt.encode({"exp": int(time.time()) + 60}, SECRET, "HS256"),  # no sub
        jwt.encode({"sub": "", "exp": int(time.time()) + 60}, SECRET, "HS256"),
        # alg "none" takes no key; PyJWT's stubs want one
        jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, None, "none"),  # type: ignore[arg-type]
    ],
    # Stable ids: the tokens embed the current time, and xdist workers must collect the same ids.
    ids=[
        "none",
        "empty",
        "garbage",
        "other-secret",
        "expired",
        "no-exp",
        "no-sub",
        "empty-sub",
        "alg-none",
    ],
)
def test_bad_dev_tokens_are_refused(token: str | None) -> None:
    assert refused(SharedSecretVerifier(SECRET), token)


def test_an_empty_secret_refuses_everything() -> None:
    assert refused(SharedSecretVerifier(""), mint("alice", SECRET))


def test_bearer_header_parsing() -> None:
    assert bearer({"Authorization": "Bearer abc"}) == "abc"
    assert bearer({"authorization": "bearer  abc "}) == "abc"
    assert bearer({"Authorization": "Basic abc"}) is None
    assert bearer({"Authorization": "Bearer "}) is None
    assert bearer({}) is None


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {
        "good": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "forger": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


@pytest.fixture(scope="module")
def jwks_url(keys: dict[str, Any]) -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["good"].public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def rs256(key: Any, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now}
    payload.update(claims)
    return jwt.encode(
        {k: v for k, v in payload.items() if v is not None}, key, "RS256", headers={"kid": kid}
    )


def test_a_provider_token_is_accepted(keys: dict[str, Any], jwks_url: str) -> None:
    assert JwksVerifier(jwks_url, ISSUER, AUDIENCE).verify(rs256(keys["good"])) == "user-1"


def test_audience_is_optional_for_access_tokens(keys: dict[str, Any], jwks_url: str) -> None:
    token = rs256(keys["good"], aud=None, client_id=AUDIENCE)
    assert JwksVerifier(jwks_url, ISSUER, None).verify(token) == "user-1"


@pytest.mark.parametrize(
    "case",
    [
        "forged",
        "expired",
        "wrong_issuer",
        "wrong_audience",
        "no_sub",
        "unknown_kid",
        "hs256_confusion",
    ],
)
def test_bad_provider_tokens_are_refused(keys: dict[str, Any], jwks_url: str, case: str) -> None:
    verifier = JwksVerifier(jwks_url, ISSUER, AUDIENCE)
    token = {
        "forged": lambda: rs256(keys["forger"]),
        "expired": lambda: rs256(keys["good"], exp=int(time.time()) - 120),
        "wrong_issuer": lambda: rs256(keys["good"], iss="https://evil.example"),
        "wrong_audience": lambda: rs256(keys["good"], aud="someone-else"),
        "no_sub": lambda: rs256(keys["good"], sub=None),
        "unknown_kid": lambda: rs256(keys["good"], kid="k2"),
        "hs256_confusion": lambda: jwt.encode(
            {"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
            SECRET,
            "HS256",
            headers={"kid": "k1"},
        ),
    }[case]()
    assert refused(verifier, token)
