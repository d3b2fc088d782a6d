"""The token format: generate, checksum, parse, digest. Pure functions, standard library only.

A token is a scope prefix (``kwo_``, ``kwg_``, ``kwu_``), 43 base62 characters from ``secrets``
(256 bits) and 6 base62 characters of the CRC32 of everything before them. The checksum lets
anyone reject a mistyped or truncated token without a database query.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
BODY_LENGTH = 43  # 62**43 > 2**256
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
PREFIXES = {"organization": "kwo_", "group": "kwg_", "personal": "kwu_"}
SCOPE_BY_PREFIX = {prefix: scope for scope, prefix in PREFIXES.items()}
PREFIX_LENGTH = 4
TOKEN_LENGTH = PREFIX_LENGTH + BODY_LENGTH + CHECKSUM_LENGTH
_ALPHABET_SET = frozenset(ALPHABET)
_BASE = len(ALPHABET)


class MalformedToken(ValueError):
    """The string is not a Keyward token (wrong shape, prefix or checksum)."""


def encode_base62(number: int, length: int) -> str:
    """Encode a non-negative integer as exactly ``length`` base62 characters."""
    if number < 0 or number >= _BASE**length:
        raise ValueError("number does not fit")
    characters = []
    for _ in range(length):
        number, remainder = divmod(number, _BASE)
        characters.append(ALPHABET[remainder])
    return "".join(reversed(characters))


def checksum(text: str) -> str:
    """The 6-character base62 CRC32 of ``text``."""
    return encode_base62(zlib.crc32(text.encode("ascii")), CHECKSUM_LENGTH)


def generate(scope: str) -> str:
    """Return a new random token for the scope."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    head = PREFIXES[scope] + body
    return head + checksum(head)


def parse(token: str) -> str:
    """Return the token's scope, or raise MalformedToken without touching any storage."""
    if len(token) != TOKEN_LENGTH:
        raise MalformedToken("wrong length")
    prefix = token[:PREFIX_LENGTH]
    scope = SCOPE_BY_PREFIX.get(prefix)
    if scope is None:
        raise MalformedToken("unknown prefix")
    rest = token[PREFIX_LENGTH:]
    if not _ALPHABET_SET.issuperset(rest):
        raise MalformedToken("character outside base62")
    head, given = token[:-CHECKSUM_LENGTH], token[-CHECKSUM_LENGTH:]
    if not hmac.compare_digest(checksum(head), given):
        raise MalformedToken("bad checksum")
    return scope


def digest(token: str, pepper: bytes) -> str:
    """HMAC-SHA256 of the token under the pepper, as 64 hex characters."""
    return hmac.new(pepper, token.encode("ascii"), hashlib.sha256).hexdigest()


def partial(token: str) -> str:
    """What may be shown of a token: its prefix and last four characters."""
    return f"{token[:PREFIX_LENGTH]}…{token[-4:]}"
