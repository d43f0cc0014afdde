"""User tokens: signed, bound to one account and user, short-lived, and useless to anyone without the secret."""

from __future__ import annotations

import jwt

from paystream import user_tokens

SECRET = "s3cret-for-tests-only-0123456789abcdef"


def test_a_token_names_its_account_user_and_key_until_it_expires():
    token, issued = user_tokens.mint(SECRET, "acct-1", "user-1", "key_1", ttl_s=120, now=1_000_000)
    assert user_tokens.looks_like_token(token)
    assert issued.expires_at == 1_000_120
    fresh, _ = user_tokens.mint(SECRET, "acct-1", "user-1", "key_1", ttl_s=120)
    assert user_tokens.verify(SECRET, fresh) == user_tokens.UserToken("acct-1", "user-1", "key_1",
                                                                      user_tokens.verify(SECRET, fresh).expires_at)
    assert user_tokens.verify(SECRET, token) is None  # expired long ago


def test_a_token_lives_at_most_the_maximum():
    _, issued = user_tokens.mint(SECRET, "acct-1", "user-1", "key_1", ttl_s=10**6, now=0)
    assert issued.expires_at == user_tokens.MAX_TTL_S


def test_forged_changed_or_unsigned_tokens_are_refused():
    token, _ = user_tokens.mint(SECRET, "acct-1", "user-1", "key_1")
    assert user_tokens.verify("another-secret-entirely-0123456789", token) is None
    assert user_tokens.verify("", token) is None  # no secret configured: no token is accepted
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="paystream")
    for forged in (jwt.encode({**claims, "sub": "user-2"}, "a-guessed-secret-of-32-bytes-or-more", algorithm="HS256"),
                   jwt.encode({**claims, "sub": "user-2"}, None, algorithm="none"),
                   jwt.encode({**claims, "iss": "elsewhere"}, SECRET, algorithm="HS256"),
                   jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET, algorithm="HS256"),
                   token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        assert user_tokens.verify(SECRET, forged) is None
    assert not user_tokens.looks_like_token("psk_abc")
