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
from tests.helpers import serving_jwks

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


def test_dev_tokens_are_access_tokens_and_their_expiry_is_known() -> None:
    token = mint("alice", SECRET, lifetime_s=600)
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["token_use"] == "access"
    identity = SharedSecretVerifier(SECRET).identify(token)
    assert identity.subject == "alice"
    assert abs(identity.expires_at - (time.time() + 600)) < 5
    assert identity.authorized_until == identity.expires_at + 30


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
        jwt.encode(
            {"sub": "alice", "exp": int(time.time()) + 60, "token_use": "access"},
            None,  # type: ignore[arg-type]
            "none",
        ),
        # Signed with the right secret, but not access tokens.
        jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, SECRET, "HS256"),
        jwt.encode({"sub": "alice", "exp": int(time.time()) + 60, "token_use": "id"}, SECRET),
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
        "no-token-use",
        "id-token",
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
    with serving_jwks(body) as url:
        yield url


def rs256(key: Any, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    # A Cognito access token's shape: the app client in `client_id`, no `aud`.
    payload = {
        "sub": "user-1",
        "iss": ISSUER,
        "client_id": AUDIENCE,
        "token_use": "access",
        "exp": now + 300,
        "iat": now,
    }
    payload.update(claims)
    return jwt.encode(
        {k: v for k, v in payload.items() if v is not None}, key, "RS256", headers={"kid": kid}
    )


def test_a_provider_token_is_accepted(keys: dict[str, Any], jwks_url: str) -> None:
    assert JwksVerifier(jwks_url, ISSUER, (AUDIENCE,)).verify(rs256(keys["good"])) == "user-1"


@pytest.mark.parametrize(
    "case",
    [
        "forged",
        "expired",
        "wrong_issuer",
        "wrong_client",
        "no_sub",
        "unknown_kid",
        "hs256_confusion",
    ],
)
def test_bad_provider_tokens_are_refused(keys: dict[str, Any], jwks_url: str, case: str) -> None:
    verifier = JwksVerifier(jwks_url, ISSUER, (AUDIENCE,))
    token = {
        "forged": lambda: rs256(keys["forger"]),
        "expired": lambda: rs256(keys["good"], exp=int(time.time()) - 120),
        "wrong_issuer": lambda: rs256(keys["good"], iss="https://evil.example"),
        "wrong_client": lambda: rs256(keys["good"], client_id="someone-else"),
        "no_sub": lambda: rs256(keys["good"], sub=None),
        "unknown_kid": lambda: rs256(keys["good"], kid="k2"),
        "hs256_confusion": lambda: jwt.encode(
            {
                "sub": "user-1",
                "iss": ISSUER,
                "client_id": AUDIENCE,
                "token_use": "access",
                "exp": int(time.time()) + 60,
            },
            SECRET,
            "HS256",
            headers={"kid": "k1"},
        ),
    }[case]()
    assert refused(verifier, token)


# --- JWKS failures answer 401, within a total deadline; an audience allow-list is required -------


class _Server:
    """A loopback JWKS endpoint with a chosen misbehaviour."""

    def __init__(self, behaviour: str, body: bytes = b"") -> None:
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if behaviour == "hang":
                    release.wait(30)  # never answers within the deadline
                    return
                if behaviour == "trickle":
                    # Each byte arrives well within a per-read timeout; the whole never does.
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    for _ in range(1000):
                        if release.wait(0.2):
                            return
                        self.wfile.write(b" ")
                        self.wfile.flush()
                    return
                status = 500 if behaviour == "error" else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.mark.parametrize(
    ("behaviour", "body"),
    [
        ("hang", b""),
        ("trickle", b""),
        ("error", b'{"message": "internal error"}'),
        ("ok", b"not json"),
        ("ok", b'["not", "a", "jwk set"]'),
        ("ok", b'{"keys": [{"kty": "nonsense"}]}'),
    ],
    ids=["hangs", "trickles", "answers-500", "not-json", "not-an-object", "bad-keys"],
)
def test_a_failing_key_fetch_answers_401_within_the_deadline(
    keys: dict[str, Any], behaviour: str, body: bytes
) -> None:
    server = _Server(behaviour, body)
    try:
        verifier = JwksVerifier(server.url, ISSUER, (AUDIENCE,), fetch_deadline_s=1.0)
        started = time.monotonic()
        assert refused(verifier, rs256(keys["good"]))
        assert time.monotonic() - started < 2.5
    finally:
        server.close()


def test_an_unreachable_jwks_answers_401() -> None:
    verifier = JwksVerifier("http://127.0.0.1:9/jwks.json", ISSUER, (AUDIENCE,))
    assert refused(verifier, "a.b.c")


def test_jwks_mode_refuses_to_start_without_an_audience_allow_list(jwks_url: str) -> None:
    with pytest.raises(ValueError, match="audience"):
        JwksVerifier(jwks_url, ISSUER, ())
    with pytest.raises(ValueError, match="issuer"):
        JwksVerifier(jwks_url, "", (AUDIENCE,))


def test_a_cognito_access_token_is_accepted_by_its_client_id(
    keys: dict[str, Any], jwks_url: str
) -> None:
    verifier = JwksVerifier(jwks_url, ISSUER, ("other-client", AUDIENCE))
    identity = verifier.identify(rs256(keys["good"]))
    assert identity.subject == "user-1"
    assert abs(identity.expires_at - (time.time() + 300)) < 5
    # An access token's `aud` names a resource server, not the app client: it decides nothing.
    assert verifier.verify(rs256(keys["good"], aud="https://api.example.com")) == "user-1"


@pytest.mark.parametrize(
    "claims",
    [
        # A Cognito ID token of the same app client: `aud` names it, `token_use` is `id`.
        {"token_use": "id", "client_id": None, "aud": AUDIENCE},
        {"token_use": "id"},
        {"token_use": None},
        {"token_use": "ACCESS"},
        {"token_use": ["access"]},
    ],
    ids=["id-token", "id-token-with-client-id", "no-token-use", "token-use-case", "token-use-list"],
)
def test_only_access_tokens_are_accepted(
    keys: dict[str, Any], jwks_url: str, claims: dict[str, Any]
) -> None:
    verifier = JwksVerifier(jwks_url, ISSUER, (AUDIENCE,))
    assert refused(verifier, rs256(keys["good"], **claims))


@pytest.mark.parametrize(
    "claims",
    [
        {"client_id": "someone-else"},
        {"client_id": None},
        {"client_id": None, "aud": AUDIENCE},  # an ID token's place for the app client
        {"client_id": [AUDIENCE]},
    ],
    ids=["foreign-client", "no-client", "client-in-aud-only", "client-id-not-a-string"],
)
def test_tokens_for_another_client_are_refused(
    keys: dict[str, Any], jwks_url: str, claims: dict[str, Any]
) -> None:
    verifier = JwksVerifier(jwks_url, ISSUER, (AUDIENCE,))
    assert refused(verifier, rs256(keys["good"], **claims))


def test_the_audience_setting_is_a_comma_separated_allow_list() -> None:
    from chalicelib.auth import audiences

    assert audiences(" client-123, other ,,") == ("client-123", "other")
    assert audiences("") == ()


def test_made_up_key_ids_fetch_the_jwks_at_most_once_per_cooldown(keys: dict[str, Any]) -> None:
    fetches: list[int] = []
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["good"].public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(1)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        verifier = JwksVerifier(url, ISSUER, (AUDIENCE,))
        assert verifier.verify(rs256(keys["good"])) == "user-1"
        for n in range(20):
            assert refused(verifier, rs256(keys["good"], kid=f"made-up-{n}"))
        assert verifier.verify(rs256(keys["good"])) == "user-1"  # cached keys still serve
        assert len(fetches) == 1
    finally:
        server.shutdown()


def test_the_composition_root_refuses_jwks_mode_without_an_audience(
    monkeypatch: pytest.MonkeyPatch, jwks_url: str
) -> None:
    from chalicelib import bootstrap

    monkeypatch.setenv("JWT_JWKS_URL", jwks_url)
    monkeypatch.setenv("JWT_ISSUER", ISSUER)
    monkeypatch.setenv("JWT_AUDIENCE", " , ")
    bootstrap.reset()
    try:
        with pytest.raises(ValueError, match="audience"):
            bootstrap.verifier()
        monkeypatch.setenv("JWT_AUDIENCE", f"{AUDIENCE},another")
        bootstrap.reset()
        assert isinstance(bootstrap.verifier(), JwksVerifier)
    finally:
        monkeypatch.delenv("JWT_JWKS_URL")
        bootstrap.reset()
