"""What a delivery says: the Standard Webhooks body ``{"type", "timestamp", "data"}``.

``data`` is the audit event as the API shows it (actor, token through which it acted, object,
address, changes), with its organization. It is built once, when the change happens, so a later
change never alters what was reported. Nothing secret is in an audit event; anything shaped
like a token or a signing secret is masked all the same.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from orgs.models import AuditEvent
from tokens.logging import mask as mask_tokens
from webhooks import events
from webhooks.signing import mask as mask_webhook_secrets


def new_message_id() -> str:
    """A ``webhook-id``: unique per message, kept when the message is sent again."""
    return "msg_" + secrets.token_urlsafe(18)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def encode(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    """The body as sent: compact JSON, secrets of any shape masked."""
    body = json.dumps(
        {"type": event_type, "timestamp": _timestamp(occurred_at), "data": data},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return mask_webhook_secrets(mask_tokens(body))


def event_data(event: AuditEvent, organization_slug: str) -> dict[str, Any]:
    """An audit event as a delivery's ``data``."""
    token = None
    if event.via_token_id is not None:
        token = {
            "id": event.via_token_id,
            "name": event.via_token_name,
            "partialToken": event.via_token_partial,
        }
    return {
        "id": event.pk,
        "occurredAt": _timestamp(event.occurred_at),
        "organization": {
            "id": event.organization_id,
            "slug": organization_slug,
            "name": event.organization_name,
        },
        "actor": {"id": event.actor_id, "name": event.actor_name, "kind": event.actor_kind},
        "token": token,
        "action": event.action,
        "object": {"type": event.object_type, "id": event.object_id, "name": event.object_repr},
        "groupId": event.group_id,
        "address": event.address,
        "changes": event.changes,
    }


def event_body(event: AuditEvent, organization_slug: str) -> str:
    return encode(event.action, event.occurred_at, event_data(event, organization_slug))


def ping_body(*, endpoint_id: int, organization: Any, requested_by: str, at: datetime) -> str:
    """The body of a test event: says what it is, who asked, and for which endpoint."""
    return encode(
        events.TEST_EVENT,
        at,
        {
            "message": "A test event from Keyward: this endpoint receives and verifies events.",
            "endpointId": endpoint_id,
            "organization": {
                "id": organization.pk,
                "slug": organization.slug,
                "name": organization.name,
            },
            "requestedBy": requested_by,
        },
    )
