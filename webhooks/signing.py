"""Signing secrets: their format, their encryption at rest, and Standard Webhooks signatures.

A secret is ``whsec_`` and the base64 of 32 random bytes. Unlike a token's, it must be
recoverable to sign each delivery, so it is stored encrypted (Fernet, keys from
``KEYWARD_WEBHOOK_SECRET_KEYS``) and never in plain text. Imports nothing from Django models:
the logging configuration loads this module before the apps.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32
SECRET_SHAPE = re.compile(r"whsec_[A-Za-z0-9+/]{20,}={0,2}")


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def partial(secret: str) -> str:
    """What the console shows of a secret: the prefix and its last four characters."""
    return f"{PREFIX}…{secret.rstrip('=')[-4:]}"


def mask(text: str) -> str:
    """Replace anything shaped like a signing secret."""
    return SECRET_SHAPE.sub(f"{PREFIX}[masked]", text)


class MaskWebhookSecretsFilter(logging.Filter):
    """Masks anything shaped like a signing secret in every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        return True


# Encryption at rest ---------------------------------------------------------------------------


def _fernet_key(key: str) -> bytes:
    """A Fernet key derived from one configured key (any random string of 32+ characters)."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"keyward webhook signing secrets"
    ).derive(key.encode())
    return base64.urlsafe_b64encode(derived)


def _cipher() -> MultiFernet:
    from django.conf import settings

    keys = settings.KEYWARD_WEBHOOK_SECRET_KEYS
    # MultiFernet encrypts with its first key and tries them all; the setting lists the newest last.
    return MultiFernet([Fernet(_fernet_key(key)) for key in reversed(keys)])


def encrypt(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode("ascii")


class UnreadableSecret(Exception):
    """No configured key decrypts a stored secret (a key was removed too early)."""


def decrypt(ciphertext: str) -> str:
    try:
        return _cipher().decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise UnreadableSecret(
            "A webhook signing secret cannot be decrypted with KEYWARD_WEBHOOK_SECRET_KEYS."
        ) from None


def reencrypt(ciphertext: str) -> str:
    """The same secret encrypted with the newest key (to retire an older key)."""
    try:
        return _cipher().rotate(ciphertext.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError):
        raise UnreadableSecret(
            "A webhook signing secret cannot be decrypted with KEYWARD_WEBHOOK_SECRET_KEYS."
        ) from None


# Signatures -----------------------------------------------------------------------------------


def signature_header(secrets_in_use: list[str], message_id: str, at: datetime, body: str) -> str:
    """``webhook-signature``: one ``v1,<base64>`` per secret in use, space-separated (during a
    rotation's overlap both the new and the old secret sign)."""
    return " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body)
        for secret in secrets_in_use
    )
