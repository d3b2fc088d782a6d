"""API: ``POST /leaked-tokens``, where anyone who found a Keyward token reports it.

No authentication: holding a token is the proof. The answer is the same whether or not anything
matched, so the endpoint tells an outsider nothing (a token that did match is revoked by the
time they read it). A scanning partner that signs its requests as GitHub's secret scanning
partner program does (``Github-Public-Key-Identifier``, ``Github-Public-Key-Signature``: ECDSA
with SHA-256 over the raw body, keys in ``KEYWARD_LEAK_REPORTER_KEYS``) is a verified reporter
and gets GitHub's answer format, a label per token. What happens to a matched token is
``tokens.leaks``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import time
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from ninja import Field, Router, Schema
from pydantic import ConfigDict

from api.support import JSON_CONTENT_TYPES, CamelSchema, ErrorOut
from policies.addresses import client_address, subscriber_of
from tokens import leaks

logger = logging.getLogger("keyward.leaks")

router = Router(tags=["leaked-tokens"])

MAX_ITEMS = 100
TOKEN_MAX_LENGTH = 1000  # far beyond a real token; anything longer is not one
KEY_ID_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"
DEFAULT_TOKEN_TYPE = "keyward_api_token"
WINDOW_SECONDS = 60
EXAMPLE_HASH = "3b1e5c0f9d2a7e84c6b1f0a9d8e7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9"


# Schemas (for the documentation: the body is read raw, since a signature covers its bytes) --


REQUEST_EXAMPLE = [
    {
        "token": "kwo_…",
        "type": "keyward_api_token",
        "url": "https://github.com/octo/app/blob/abc123/.env",
        "source": "content",
    }
]


class LeakedTokenIn(Schema):
    token: str = Field(description="The token as found.")
    url: str | None = Field(None, description="Where it was found, if public.")
    source: str | None = Field(None, description="What found it, or where (e.g. `content`).")

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "token": "kwo_…",
                    "type": "keyward_api_token",
                    "url": "https://github.com/octo/app/blob/abc123/.env",
                    "source": "content",
                }
            ]
        },
    )


class ReceivedOut(CamelSchema):
    received: int = Field(description="How many items were received (not how many matched).")

    model_config = ConfigDict(json_schema_extra={"examples": [{"received": 2}]})


class LabelOut(Schema):
    token_hash: str = Field(description="SHA-256 of the reported token, hex.")
    token_type: str
    label: Literal["true_positive", "false_positive"]


# Verified reporters ------------------------------------------------------------------------------


class BadSignature(Exception):
    """The request claims a verified reporter but its signature does not verify."""


def _public_key(key_id: str) -> ec.EllipticCurvePublicKey | None:
    pem = settings.KEYWARD_LEAK_REPORTER_KEYS.get(key_id)
    if pem is None:
        return None
    try:
        key = load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError):
        # A key the operator configured badly verifies nothing: the request is refused as
        # from an unknown key, never a 500.
        logger.error("KEYWARD_LEAK_REPORTER_KEYS entry %r is not a PEM public key", key_id)
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def verified_reporter(request: HttpRequest, body: bytes) -> str | None:
    """The key id of a verified reporter; None for an anonymous report; BadSignature when a
    signature is claimed and does not verify (unknown key, bad encoding, wrong bytes)."""
    key_id = request.headers.get(KEY_ID_HEADER, "").strip()
    signature = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not key_id and not signature:
        return None
    key = _public_key(key_id) if key_id else None
    if key is None or not signature:
        raise BadSignature("unknown key or missing signature")
    try:
        key.verify(base64.b64decode(signature, validate=True), body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise BadSignature("signature does not verify") from None
    return key_id


# Rate limit ---------------------------------------------------------------------------------------


class _ReportLimit:
    """Reports per address in fixed one-minute windows, counted in the cache (Redis when
    configured). A cache that fails lets reports through: revoking a leak matters more."""

    def __init__(self) -> None:
        self._outage = False

    def retry_after(self, address: str | None, now: float | None = None) -> int | None:
        """Count this request; the seconds to wait when it is over the limit, else None."""
        now = time.time() if now is None else now
        key = f"keyward:leak-reports:{subscriber_of(address)}"
        until_key = f"{key}:until"
        try:
            if cache.add(key, 1, timeout=WINDOW_SECONDS):
                cache.set(until_key, now + WINDOW_SECONDS, timeout=WINDOW_SECONDS)
                count = 1
            else:
                try:
                    count = cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.add(key, 1, timeout=WINDOW_SECONDS)
                    cache.set(until_key, now + WINDOW_SECONDS, timeout=WINDOW_SECONDS)
                    count = 1
            until = cache.get(until_key) if count > settings.KEYWARD_LEAK_REPORTS_PER_MINUTE else 0
        except Exception as error:  # any cache error: serve, and say so once per outage
            if not self._outage:
                logger.warning("Cache unavailable; leak reports are not rate limited: %s", error)
            self._outage = True
            return None
        self._outage = False
        if count <= settings.KEYWARD_LEAK_REPORTS_PER_MINUTE:
            return None
        return max(1, math.ceil((until or now + WINDOW_SECONDS) - now))


report_limit = _ReportLimit()


# Reading the body ------------------------------------------------------------------------------


def _storable(text: str) -> bool:
    """Text every database and mail server takes: no NUL, no lone surrogate (which JSON's
    ``\\ud800`` escapes can carry, and UTF-8 cannot)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_reports(body: bytes) -> list[tuple[leaks.LeakReport, str]]:
    """The reports of a body (with each item's ``type``), or ValidationError naming what is
    wrong. Extra keys are ignored; ``url`` and ``source`` may be missing or null."""
    try:
        items = json.loads(body)
    except (ValueError, RecursionError):
        raise ValidationError({"body": ["The request body is not valid JSON."]}) from None
    if not isinstance(items, list):
        raise ValidationError({"body": ["Send a JSON array of {token, url?, source?} objects."]})
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ValidationError({"body": [f"Send between 1 and {MAX_ITEMS} items."]})
    errors: dict[str, list[str]] = {}
    reports = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors[f"{index}"] = ["Each item is an object with a token."]
            continue
        token = item.get("token")
        if not isinstance(token, str) or not token.strip():
            errors[f"{index}.token"] = ["Give the token as a string."]
        elif len(token) > TOKEN_MAX_LENGTH or not _storable(token):
            errors[f"{index}.token"] = ["This is not a token."]
        for name in ("url", "source"):
            value = item.get(name)
            if value is not None and not isinstance(value, str):
                errors[f"{index}.{name}"] = ["Give a string, or leave it out."]
            elif value is not None and not _storable(value):
                errors[f"{index}.{name}"] = ["Give text without NUL or unpaired surrogates."]
        kind = item.get("type")
        if not errors:
            reports.append(
                (
                    leaks.LeakReport(
                        token=str(token), url=item.get("url") or "", source=item.get("source") or ""
                    ),
                    kind if isinstance(kind, str) and kind else DEFAULT_TOKEN_TYPE,
                )
            )
    if errors:
        raise ValidationError(errors)
    return reports


def _error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    for name, value in headers.items():
        response.headers[name] = value
    return response


@router.post(
    "/leaked-tokens",
    auth=None,
    # 202 is documented below: its two shapes are answered as JSON directly.
    response={frozenset({400, 401, 429}): ErrorOut},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_ITEMS,
                        "items": LeakedTokenIn.model_json_schema(),
                        "examples": [REQUEST_EXAMPLE],
                    }
                }
            },
        },
        "responses": {
            "202": {
                "description": "Received: anonymous reporters get the count, verified reporters "
                "a label per token.",
                "content": {
                    "application/json": {
                        "schema": {
                            "anyOf": [
                                ReceivedOut.model_json_schema(by_alias=True),
                                {
                                    "type": "array",
                                    "items": LabelOut.model_json_schema(),
                                },
                            ],
                            "examples": [
                                {"received": 2},
                                [
                                    {
                                        "token_hash": EXAMPLE_HASH,
                                        "token_type": "keyward_api_token",
                                        "label": "true_positive",
                                    }
                                ],
                            ],
                        }
                    }
                },
            }
        },
    },
    summary="Report leaked tokens",
    description="Anyone who found Keyward tokens where they should not be (a public repository, "
    "a paste, a log) sends them here, up to 100 per request, in the shape of GitHub's secret "
    "scanning partner program; no authentication. A token whose secret matches is revoked at "
    "once (an old secret in its grace period ends instead), its organization's admins are "
    'e-mailed, and it can never be restored. The answer is `202 {"received": N}` whatever '
    "matched. A request signed as GitHub signs them (`Github-Public-Key-Identifier`, "
    "`Github-Public-Key-Signature`, with a key the operator configured) gets a label per token "
    "instead; a bad signature is 401. At most 30 requests a minute from one address (429), "
    "64 KiB a body.",
)
def report_leaked_tokens(request: HttpRequest) -> JsonResponse:
    address = client_address(request)
    body = request.body  # RequestDataTooBig over 64 KiB: a 400 from the API's handler
    try:
        reporter = verified_reporter(request, body)
    except BadSignature as error:
        logger.info("Leak report refused from %s: %s", address, error)
        retry_after = report_limit.retry_after(address)
        if retry_after is not None:
            return _too_many(retry_after)
        return _error(401, "unauthenticated", "The signature does not verify.")
    if reporter is None:
        retry_after = report_limit.retry_after(address)
        if retry_after is not None:
            return _too_many(retry_after)
    content_type = (request.content_type or "").lower()
    if content_type not in JSON_CONTENT_TYPES and not content_type.endswith("+json"):
        raise ValidationError({"body": ["Send the body as JSON (Content-Type: application/json)."]})
    reports = parse_reports(body)
    source_note = f"verified reporter {reporter}" if reporter else "anonymous report"
    outcomes = leaks.process_reports(
        [report for report, _kind in reports], reporter_address=address, reported_by=source_note
    )
    if reporter is None:
        return JsonResponse({"received": len(reports)}, status=202)
    labels = [
        {
            "token_hash": hashlib.sha256(report.token.encode()).hexdigest(),
            "token_type": kind,
            "label": "true_positive" if outcome.matched else "false_positive",
        }
        for (report, kind), outcome in zip(reports, outcomes, strict=True)
    ]
    return JsonResponse(labels, status=202, safe=False)


def _too_many(retry_after: int) -> JsonResponse:
    return _error(
        429,
        "too_many_requests",
        "Too many leak reports from your address; try again shortly.",
        **{"Retry-After": str(retry_after)},
    )
