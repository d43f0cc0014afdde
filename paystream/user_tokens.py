"""User tokens: short-lived JWTs (PyJWT, HS256) that a server's API key mints for one of its users,
so a client app can call the API directly and see that user's objects only.

A token names its account, its user and the key that minted it, and expires within
minutes: it is not looked up anywhere, so revoking the key stops new tokens at once
and the ones already out at their expiry (at most MAX_TTL_S).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ISSUER = "paystream"
ALGORITHM = "HS256"
DEFAULT_TTL_S = 300
MAX_TTL_S = 900


@dataclass(frozen=True)
class UserToken:
    account: str
    user_id: str
    key_id: str
    expires_at: int


def looks_like_token(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("eyJ")


def mint(secret: str, account: str, user_id: str, key_id: str, ttl_s: int = DEFAULT_TTL_S,
         now: float | None = None) -> tuple[str, UserToken]:
    issued = int(now if now is not None else time.time())
    claims = {"iss": ISSUER, "sub": user_id, "acct": account, "kid": key_id, "iat": issued,
              "exp": issued + min(ttl_s, MAX_TTL_S)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM), UserToken(account, user_id, key_id, claims["exp"])


def verify(secret: str, token: str) -> UserToken | None:
    """The token's claims, or None when it is not ours, was changed, or has expired."""
    if not secret:
        return None
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "iss"]})
    except jwt.PyJWTError:
        return None
    if not all(isinstance(claims.get(k), str) for k in ("acct", "kid", "sub")):
        return None
    return UserToken(claims["acct"], claims["sub"], claims["kid"], claims["exp"])
