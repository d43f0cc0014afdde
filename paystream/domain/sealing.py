"""Sealing: what paystream keeps of a secret or personal field is ciphertext only.

- A user's e-mail is sealed with that user's own data key (AES-256-GCM, bound to
  account and user) before it enters any topic or store. Topics keep messages
  forever; deleting the key (`paystream forget-user`) makes every copy unreadable:
  crypto-shredding.
- The provider's client secret goes back to the ingress that asked for it sealed to
  that process's ephemeral public key (HPKE, RFC 9180: X25519, HKDF-SHA256,
  ChaCha20-Poly1305). The private key lives only in that process's memory, so the
  reply on the topic is unreadable to anyone else, then and forever.
- A stored idempotent response is sealed with a key derived from the caller's API
  key, which paystream never stores: only that key's holder can replay it.

Pure computation (the `cryptography` package); where the keys live is the adapters' business.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SEALED_PREFIX = "sealed1."
_NONCE = 12
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
_REPLY_INFO = b"paystream client secret"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- personal data, per user ---------------------------------------------------
def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _owner(account: str, user_id: str) -> bytes:
    return f"{account}\x00{user_id}".encode()


def seal_personal(key: bytes, text: str, account: str, user_id: str) -> str:
    """`sealed1.<nonce+ciphertext>`: readable only with this user's key, and only as this user's."""
    nonce = os.urandom(_NONCE)
    return SEALED_PREFIX + _b64(nonce + AESGCM(key).encrypt(nonce, text.encode(), _owner(account, user_id)))


def unseal_personal(key: bytes | None, token: str | None, account: str, user_id: str) -> str | None:
    """The plaintext, or None when the key is gone (the user was forgotten) or the token is not theirs."""
    if key is None or not token or not token.startswith(SEALED_PREFIX):
        return None
    raw = _unb64(token[len(SEALED_PREFIX):])
    try:
        return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], _owner(account, user_id)).decode()
    except (InvalidTag, ValueError):
        return None


def is_sealed(text: str | None) -> bool:
    return bool(text) and text.startswith(SEALED_PREFIX)


# --- the client secret, to one ingress process -------------------------------------
class ReplyKey:
    """An ingress process's ephemeral key pair: commands carry the public half."""

    def __init__(self) -> None:
        self._private = X25519PrivateKey.generate()
        self.public = _b64(self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def open(self, token: str | None) -> str | None:
        if not token:
            return None
        try:
            return _SUITE.decrypt(_unb64(token), self._private, info=_REPLY_INFO).decode()
        except (InvalidTag, ValueError):
            return None


def seal_to(public_key: str, text: str) -> str:
    return _b64(_SUITE.encrypt(text.encode(), X25519PublicKey.from_public_bytes(_unb64(public_key)),
                               info=_REPLY_INFO))


# --- a stored response, to the API key that made it -----------------------------------
def _response_key(api_key: str, scope: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=scope.encode()).derive(api_key.encode())


def seal_for_api_key(api_key: str, scope: str, data: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(_response_key(api_key, scope)).encrypt(nonce, data, None)


def unseal_for_api_key(api_key: str, scope: str, sealed: bytes) -> bytes | None:
    try:
        return AESGCM(_response_key(api_key, scope)).decrypt(sealed[:_NONCE], sealed[_NONCE:], None)
    except (InvalidTag, ValueError):
        return None
