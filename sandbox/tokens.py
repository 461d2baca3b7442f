"""Access tokens: HS256 JWTs issued by the identity app and checked by both apps.

Expiry is checked against the app's injected clock, not the wall clock, so tests can move time.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict

import jwt

ISSUER = "sandbox-identity"
AUDIENCE = "public-service-portal"
ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "iss", "aud", "iat", "exp", "jti"]


class TokenError(Exception):
    """The token is malformed, forged, for someone else, or expired."""


def issue_token(secret: str, subject: str, now: float, ttl_seconds: int) -> str:
    issued_at = int(now)
    claims = {
        "sub": subject,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, now: float) -> Dict[str, Any]:
    """The claims of a valid token; raises `TokenError` otherwise."""
    try:
        claims: Dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={
                "require": _REQUIRED_CLAIMS,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise TokenError(str(exc)) from exc
    exp = claims.get("exp")
    if not isinstance(exp, int) or now >= exp:
        raise TokenError("token expired")
    return claims
