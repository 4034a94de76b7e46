"""Identity: HS256 bearer tokens (PyJWT). A token's `sub` owns the conversations it creates."""

from __future__ import annotations

import time
from collections.abc import Mapping

import jwt

from chalicelib.domain.protocol import ProtocolError

ALGORITHM = "HS256"
DEV_TOKEN_LIFETIME_S = 7 * 24 * 3600


def verify(token: str | None, secret: str) -> str:
    """The token's subject; ProtocolError('unauthorized') for a missing, expired or forged token."""
    if not token or not secret:
        raise ProtocolError("unauthorized", "a valid bearer token is required")
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
        )
    except jwt.PyJWTError as error:
        raise ProtocolError("unauthorized", "a valid bearer token is required") from error
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise ProtocolError("unauthorized", "the token has no subject")
    return subject


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def mint(subject: str, secret: str, lifetime_s: int = DEV_TOKEN_LIFETIME_S) -> str:
    now = int(time.time())
    return jwt.encode({"sub": subject, "iat": now, "exp": now + lifetime_s}, secret, ALGORITHM)
