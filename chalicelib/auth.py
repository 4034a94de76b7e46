"""Identity: bearer JWTs verified with PyJWT. A token's `sub` owns the conversations it creates.

Two verifiers: HS256 with a shared secret (the local stack and tests), and RS256 against an
identity provider's JWKS (production; Cognito-compatible `iss`/`aud`/`exp`/`sub` checks).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.errors import Refused

if TYPE_CHECKING:
    import jwt

# PyJWT (and the cryptography it loads) is imported where a token is checked or minted: only
# `$connect` and the HTTP routes need it, so `$default` and `$disconnect` start without it.

HS256 = "HS256"
DEV_TOKEN_LIFETIME_S = 7 * 24 * 3600
# Tolerated clock skew between the identity provider and Lambda.
LEEWAY_S = 30


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
    """RS256 tokens signed by a key from the provider's JWKS (fetched, then cached per container)."""

    def __init__(self, jwks_url: str, issuer: str, audience: str | None) -> None:
        import jwt

        self.client: jwt.PyJWKClient = jwt.PyJWKClient(jwks_url, lifespan=3600, timeout=5)
        self.issuer = issuer
        self.audience = audience

    def verify(self, token: str | None) -> str:
        import jwt

        if not token:
            raise _refuse()
        try:
            key = self.client.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                issuer=self.issuer,
                audience=self.audience,
                options={
                    "require": ["sub", "exp", "iss"],
                    "verify_aud": self.audience is not None,
                },
                leeway=LEEWAY_S,
            )
        except jwt.PyJWTError as error:
            raise _refuse() from error
        return _subject(claims)


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def mint(subject: str, secret: str, lifetime_s: int = DEV_TOKEN_LIFETIME_S) -> str:
    """A dev token for the local stack and tests."""
    import jwt

    now = int(time.time())
    return jwt.encode({"sub": subject, "iat": now, "exp": now + lifetime_s}, secret, HS256)
