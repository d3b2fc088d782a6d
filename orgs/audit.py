"""Writing audit events. Services call ``record`` inside their transaction."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from access.principal import Principal
from orgs.models import AuditEvent, Organization


def describe(value: Any) -> Any:
    """Make a value JSON-friendly for the before/after of an event."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [describe(item) for item in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, dict):
        return {str(key): describe(item) for key, item in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "total_seconds"):
        return int(value.total_seconds())
    if isinstance(value, models.Model):
        return str(value)
    return str(value)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"before": old, "after": new}}`` for the fields that changed."""
    changes = {}
    for key in sorted(set(before) | set(after)):
        old, new = describe(before.get(key)), describe(after.get(key))
        if old != new:
            changes[key] = {"before": old, "after": new}
    return changes


def record(
    *,
    actor: Principal,
    action: str,
    organization: Organization | None,
    object_type: str,
    object_id: Any = "",
    object_repr: str = "",
    group_id: int | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event naming the actor (and the token it acted through), and queue it for
    the organization's webhook endpoints in the same transaction (the outbox)."""
    token = actor.token
    # The event and its deliveries commit together even for a caller without a transaction;
    # inside a service's transaction this adds no savepoint and no query.
    with transaction.atomic(savepoint=False):
        event = AuditEvent.objects.create(
            organization=organization,
            organization_name=organization.name if organization else "",
            group_id=group_id,
            actor=actor.user,
            actor_name=actor.name[:150],
            actor_kind=actor.kind,
            via_token_id=token.pk if token is not None else None,
            via_token_name=token.name if token is not None else "",
            via_token_partial=token.partial_token if token is not None else "",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            object_repr=object_repr[:200],
            address=actor.address,
            changes=changes or {},
        )
        if organization is not None:
            from webhooks.outbox import enqueue_event  # webhooks builds on orgs, not the reverse

            enqueue_event(event, organization)
    return event
