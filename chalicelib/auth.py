"""Identity: bearer JWTs verified with PyJWT. A token's `sub` owns the conversations it creates.

Two verifiers: HS256 with a shared secret (the local stack, tests, and stacks without an identity
provider), and RS256 against an identity provider's JWKS (an Amazon Cognito user pool: `iss`,
`client_id`, `token_use`, `exp`, `sub` checked).

Only ACCESS tokens are bearers, in both modes: `token_use` must be `access`. Amazon Cognito
Developer Guide, "Verifying JSON web tokens", section "Verify the claims" (read 2026-12-07):
"If you are only accepting the access token in your web API operations, its value must be
`access`", and "the `client_id` claim in an access token should match the app client ID". An ID
token (`token_use` `id`, the app client in `aud`) says who signed in, not that this API may be
called: refused. The dev tokens `mint` makes carry `token_use: access` too, so one rule holds
everywhere and a token without `token_use` is refused in both modes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
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

# The one `token_use` a bearer may have (module docstring).
ACCESS = "access"

log = logging.getLogger("cache_warming")


@dataclass(frozen=True)
class Identity:
    """Who a verified token names, and until when (its `exp`, epoch seconds)."""

    subject: str
    expires_at: int

    @property
    def authorized_until(self) -> int:
        """The last second the token is honoured: `exp` plus the skew tolerated when it was
        verified, so a token accepted at `$connect` is not refused on the connection's first frame."""
        return self.expires_at + LEEWAY_S


class TokenVerifier(Protocol):
    def verify(self, token: str | None) -> str:
        """The token's subject; Refused('unauthorized') for anything else."""

    def identify(self, token: str | None) -> Identity:
        """The token's subject and expiry; Refused('unauthorized') for anything else."""


def _refuse(reason: str = "a valid bearer token is required") -> Refused:
    return Refused("unauthorized", reason)


def _identity(claims: dict[str, Any]) -> Identity:
    if claims.get("token_use") != ACCESS:
        raise _refuse("only access tokens are accepted")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 256:
        raise _refuse("the token has no subject")
    expires_at = claims.get("exp")
    # PyJWT has checked `exp` is a number in the future (within the leeway).
    if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
        raise _refuse("the token has no expiry")
    return Identity(subject, int(expires_at))


class _Verifier:
    def verify(self, token: str | None) -> str:
        return self.identify(token).subject

    def identify(self, token: str | None) -> Identity:
        raise NotImplementedError


class SharedSecretVerifier(_Verifier):
    def __init__(self, secret: str) -> None:
        self.secret = secret

    def identify(self, token: str | None) -> Identity:
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
        return _identity(claims)


class JwksVerifier(_Verifier):
    """RS256 access tokens signed by a key from the provider's JWKS (fetched, then cached per
    container).

    The token's `client_id` must be one of `allowed_clients`: a Cognito access token carries its
    app client id there, not in `aud` ("Verifying JSON web tokens", above; Amazon Verified
    Permissions user guide, "Client and audience validation for Amazon Cognito", read
    2026-12-01: "Access tokens have a `client_id` claim that also contains the app client ID";
    an access token's `aud`, when present, names a resource server, not an app client, so it
    decides nothing here). Without an issuer and at least one allowed client any token from the
    provider, for any app, would pass: refused.
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

    def identify(self, token: str | None) -> Identity:
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
        identity = _identity(claims)
        client_id = claims.get("client_id")
        if not isinstance(client_id, str) or client_id not in self.allowed_clients:
            raise _refuse("the token was issued to another client")
        return identity

    def _signing_key(self, token: str) -> Any:
        try:
            return self.keys.get_signing_key_from_jwt(token).key
        except Exception as error:
            # A malformed token, an unknown key id, or the provider's JWKS unreachable, slow,
            # failing or unreadable: the caller cannot be verified, which is a 401, never a 500.
            log.warning("no signing key for a bearer token: %s", type(error).__name__)
            raise _refuse() from error


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
    """A dev token for the local stack, tests and smoke runs: an access token, as Cognito's are."""
    import jwt

    now = int(time.time())
    claims = {"sub": subject, "iat": now, "exp": now + lifetime_s, "token_use": ACCESS}
    return jwt.encode(claims, secret, HS256)
