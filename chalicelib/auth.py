"""Identity: bearer JWTs verified with PyJWT. A token's `sub` owns the conversations it creates.

Two verifiers: HS256 with a shared secret (the local stack and tests), and RS256 against an
identity provider's JWKS (production; Cognito-compatible `iss`/`aud`/`exp`/`sub` checks).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from chalicelib.domain.errors import Refused

# PyJWT (and the cryptography it loads) is imported where a token is checked or minted: only
# `$connect` and the HTTP routes need it, so `$default` and `$disconnect` start without it.

HS256 = "HS256"
DEV_TOKEN_LIFETIME_S = 7 * 24 * 3600
# Tolerated clock skew between the identity provider and Lambda.
LEEWAY_S = 30
# The whole JWKS fetch, connect to last byte: well inside API Gateway's 29 s integration timeout
# and the 10 s of the WebSocket connect handler, so a slow provider costs a 401, not a timeout.
JWKS_FETCH_DEADLINE_S = 3.0
# Keys are cached this long per container; an unknown key id refetches (key rotation).
JWKS_LIFESPAN_S = 3600
# At most one fetch attempt per this many seconds (unknown key ids, outages).
JWKS_COOLDOWN_S = 10.0

log = logging.getLogger("cache_warming")


class TokenVerifier(Protocol):
    def verify(self, token: str | None) -> str:
        """The token's subject; Refused('unauthorized') for anything else."""


def _refuse(reason: str = "a valid bearer token is required") -> Refused:
    return Refused("unauthorized", reason)


def _subject(claims: dict[str, Any]) -> str:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 256:
        raise _refuse("the token has no subject")
    return subject


class SharedSecretVerifier:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    def verify(self, token: str | None) -> str:
        import jwt

        if not token or not self.secret:
            raise _refuse()
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[HS256],
                options={"require": ["sub", "exp"]},
                leeway=LEEWAY_S,
            )
        except jwt.PyJWTError as error:
            raise _refuse() from error
        return _subject(claims)


class JwksVerifier:
    """RS256 tokens signed by a key from the provider's JWKS (fetched, then cached per container).

    The token must name one of `allowed_clients`: in `aud` (ID tokens, and access tokens of
    providers that set an audience) or, when it has no `aud`, in `client_id` (Amazon Cognito access
    tokens carry the app client id there and no `aud`: Amazon Verified Permissions user guide,
    "Client and audience validation for Amazon Cognito", read 2026-12-01). Without an issuer and
    at least one allowed client any token from the provider, for any app, would pass: refused.
    """

    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        allowed_clients: tuple[str, ...],
        fetch_deadline_s: float = JWKS_FETCH_DEADLINE_S,
    ) -> None:
        if not issuer:
            raise ValueError("JWKS mode needs an issuer (JWT_ISSUER)")
        if not allowed_clients:
            raise ValueError("JWKS mode needs an audience / client-id allow-list (JWT_AUDIENCE)")
        self.keys = deadline_jwk_client(jwks_url, fetch_deadline_s)
        self.issuer = issuer
        self.allowed_clients = frozenset(allowed_clients)

    def verify(self, token: str | None) -> str:
        import jwt

        if not token:
            raise _refuse()
        key = self._signing_key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"require": ["sub", "exp", "iss"], "verify_aud": False},
                leeway=LEEWAY_S,
            )
        except jwt.PyJWTError as error:
            raise _refuse() from error
        if not self._for_this_app(claims):
            raise _refuse("the token was issued to another client")
        return _subject(claims)

    def _signing_key(self, token: str) -> Any:
        try:
            return self.keys.get_signing_key_from_jwt(token).key
        except Exception as error:
            # A malformed token, an unknown key id, or the provider's JWKS unreachable, slow,
            # failing or unreadable: the caller cannot be verified, which is a 401, never a 500.
            log.warning("no signing key for a bearer token: %s", type(error).__name__)
            raise _refuse() from error

    def _for_this_app(self, claims: dict[str, Any]) -> bool:
        audience = claims.get("aud")
        if audience is not None:
            named = [audience] if isinstance(audience, str) else audience
            return isinstance(named, list) and any(
                isinstance(item, str) and item in self.allowed_clients for item in named
            )
        client_id = claims.get("client_id")
        return isinstance(client_id, str) and client_id in self.allowed_clients


def audiences(setting: str) -> tuple[str, ...]:
    """`JWT_AUDIENCE`: a comma-separated allow-list of app client ids / audiences."""
    return tuple(item.strip() for item in setting.split(",") if item.strip())


def _jwk_client_class() -> type:
    import jwt

    class _DeadlineJwkClient(jwt.PyJWKClient):
        """PyJWKClient whose fetch has a TOTAL deadline: its own timeout bounds each socket
        operation only, so a server that trickles bytes could hold a request past API Gateway's
        29 s. The fetch runs in a daemon thread; past the deadline the caller gives up (the thread
        ends at the next per-operation timeout). Any failure is a PyJWKClientConnectionError."""

        def __init__(self, uri: str, deadline_s: float) -> None:
            super().__init__(uri, lifespan=JWKS_LIFESPAN_S, timeout=deadline_s)
            self.deadline_s = deadline_s
            self._attempted_at: float | None = None

        def fetch_data(self) -> Any:
            now = time.monotonic()
            if self._attempted_at is not None and now - self._attempted_at < JWKS_COOLDOWN_S:
                # Tokens with made-up key ids (or a provider outage) must not turn every request
                # into a fetch: at most one attempt per cooldown, the rest answer 401 at once.
                raise jwt.PyJWKClientConnectionError("JWKS fetched moments ago")
            self._attempted_at = now
            result: list[Any] = []
            failure: list[BaseException] = []

            def fetch() -> None:
                try:
                    result.append(super(_DeadlineJwkClient, self).fetch_data())
                except Exception as error:  # noqa: BLE001 - handed to the waiting thread
                    failure.append(error)

            worker = threading.Thread(target=fetch, name="jwks-fetch", daemon=True)
            worker.start()
            worker.join(self.deadline_s)
            if result:
                return result[0]
            reason = repr(failure[0]) if failure else f"no answer within {self.deadline_s} s"
            raise jwt.PyJWKClientConnectionError(f"JWKS fetch failed: {reason}")

    return _DeadlineJwkClient


def deadline_jwk_client(uri: str, deadline_s: float) -> Any:
    """The client class is built on first use: PyJWT loads only where a token is checked."""
    return _jwk_client_class()(uri, deadline_s)


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def mint(subject: str, secret: str, lifetime_s: int = DEV_TOKEN_LIFETIME_S) -> str:
    """A dev token for the local stack and tests."""
    import jwt

    now = int(time.time())
    return jwt.encode({"sub": subject, "iat": now, "exp": now + lifetime_s}, secret, HS256)
