"""Stored credentials (e.g. a reseller's fax mailbox password), encrypted with C2_SECRET_KEY.

Fernet (AES-128-CBC with HMAC-SHA256) from `cryptography`; the Fernet key is derived from the
secret with HKDF, so any C2_SECRET_KEY string works and the key never appears in the database.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from c2bot.config.settings import Settings


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted: C2_SECRET_KEY changed since it was stored."""


def _fernet(settings: Settings) -> Fernet:
    if settings.secret_key is None:
        raise SecretUnreadable("C2_SECRET_KEY is not set, so stored passwords cannot be used")
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"c2bot stored credentials"
    ).derive(settings.secret_key.get_secret_value().encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(settings: Settings, plain: str) -> str:
    return _fernet(settings).encrypt(plain.encode()).decode("ascii")


def unseal(settings: Settings, sealed: str) -> str:
    try:
        return _fernet(settings).decrypt(sealed.encode("ascii")).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "a stored password cannot be decrypted: C2_SECRET_KEY changed since it was stored; "
            "set the password again"
        ) from None
