"""Secrets at rest: supplier tokens are stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256,
from `cryptography`), keyed from SECRET_KEY through HKDF. A database dump alone does not reveal
them; rotating SECRET_KEY means entering the tokens again (decrypt then answers "")."""
from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"syncsite-suppliers",
               info=b"supplier-token").derive(secret_key.encode("utf-8", "surrogatepass"))
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(value: str) -> str:
    if not value:
        return ""
    return _fernet(settings.SECRET_KEY).encrypt(value.encode()).decode("ascii")


def decrypt(value: str) -> str:
    """The plain text, or "" when there is none or it was encrypted under another SECRET_KEY."""
    if not value:
        return ""
    try:
        return _fernet(settings.SECRET_KEY).decrypt(value.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        return ""
