"""API: the caller and the audit log. Translation only: visibility lives in the querysets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Query, Router
from pydantic import ConfigDict

from access import rules
from api.support import (
    MAX_ID,
    CamelSchema,
    InputSchema,
    Page,
    Paging,
    paginate,
    permission_note,
    principal_of,
    requires,
    responses,
)
from orgs.models import AuditEvent

router = Router(tags=["organization"])


# Schemas -------------------------------------------------------------------------------------


class OrganizationRef(CamelSchema):
    id: int
    slug: str
    name: str


class GroupRef(CamelSchema):
    id: int
    slug: str
    name: str


class PrincipalOut(CamelSchema):
    user_id: int
    kind: str
    name: str
    token_id: int
    scope: str
    organization: OrganizationRef
    group: GroupRef | None
    permissions: list[str]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "userId": 311,
                    "kind": "technical",
                    "name": "CI deploy",
                    "tokenId": 42,
                    "scope": "organization",
                    "organization": {"id": 1, "slug": "acme", "name": "Acme Corp"},
                    "group": None,
                    "permissions": ["api.api-tokens.read", "api.api-tokens.write"],
                }
            ]
        }
    )


class ActorOut(CamelSchema):
    id: int | None
    name: str
    kind: str = Field(description="human, technical, operator or system")


class ViaTokenOut(CamelSchema):
    id: int
    name: str
    partial_token: str


class AuditEventOut(CamelSchema):
    id: int
    occurred_at: datetime
    actor: ActorOut
    token: ViaTokenOut | None = Field(description="The token the actor acted through.")
    action: str
    object_type: str
    object_id: str
    object_repr: str
    group_id: int | None
    address: str | None
    changes: dict[str, Any] = Field(description='{"field": {"before": ..., "after": ...}}')

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1001,
                    "occurredAt": "2026-11-23T08:12:40Z",
                    "actor": {"id": 311, "name": "CI deploy", "kind": "technical"},
                    "token": {"id": 42, "name": "CI deploy", "partialToken": "kwo_…x7Qa"},
                    "action": "token.revoked",
                    "objectType": "api_token",
                    "objectId": "57",
                    "objectRepr": "old deploy (kwo_…b2Zk)",
                    "groupId": None,
                    "address": "203.0.113.17",
                    "changes": {"status": {"before": "active", "after": "revoked"}},
                }
            ]
        }
    )


class AuditFilters(InputSchema):
    actor_id: int | None = Field(None, ge=1, le=MAX_ID, description="The acting user.")
    token_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Events about this token or done through it."
    )
    action: str | None = Field(
        None,
        max_length=60,
        description="An action (token.revoked), or a prefix ending in a dot (token.).",
        json_schema_extra={"example": "token."},
    )
    since: datetime | None = Field(None, description="Events at or after this time.")
    until: datetime | None = Field(None, description="Events before this time.")


# Translation ---------------------------------------------------------------------------------


def _event_out(event: AuditEvent) -> dict[str, Any]:
    token = None
    if event.via_token_id is not None:
        token = {
            "id": event.via_token_id,
            "name": event.via_token_name,
            "partial_token": event.via_token_partial,
        }
    return {
        "id": event.pk,
        "occurred_at": event.occurred_at,
        "actor": {"id": event.actor_id, "name": event.actor_name, "kind": event.actor_kind},
        "token": token,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "group_id": event.group_id,
        "address": event.address,
        "changes": event.changes,
    }


def _utc(value: datetime | None, field: str) -> datetime | None:
    """A query time in UTC (UTC when it has no offset)."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValidationError({field: ["This time is out of range."]}) from None


# The caller ----------------------------------------------------------------------------------


@router.get(
    "/me",
    auth=requires(None),
    response=responses({200: PrincipalOut}),
    by_alias=True,
    tags=["principal"],
    summary="The caller",
    description="The user the token acts as, its organization and group, and its effective "
    "permissions. " + permission_note(None),
)
def me(request: HttpRequest) -> PrincipalOut:
    principal = principal_of(request)
    token = principal.token
    return PrincipalOut(
        user_id=principal.user.pk,
        kind=principal.user.kind,
        name=principal.user.name,
        token_id=token.pk,
        scope=token.scope,
        organization=OrganizationRef(
            id=token.organization.pk, slug=token.organization.slug, name=token.organization.name
        ),
        group=GroupRef(id=token.group.pk, slug=token.group.slug, name=token.group.name)
        if token.group_id
        else None,
        permissions=sorted(rules.effective_permissions(principal)),
    )


# Audit log -----------------------------------------------------------------------------------


@router.get(
    "/audit-events",
    auth=requires("api.audit-events.read"),
    response=responses({200: Page[AuditEventOut]}),
    by_alias=True,
    tags=["audit"],
    summary="Read the audit log",
    description="Newest first. Organization-wide for organization admins and tokens; a group "
    "token or group admin sees its groups' events. " + permission_note("api.audit-events.read"),
)
def list_audit_events(
    request: HttpRequest, filters: Query[AuditFilters], paging: Query[Paging]
) -> dict[str, Any]:
    events = AuditEvent.objects.visible_to(principal_of(request))
    if filters.actor_id is not None:
        events = events.filter(actor_id=filters.actor_id)
    if filters.token_id is not None:
        events = events.for_token(filters.token_id)
    if filters.action:
        if filters.action.endswith("."):
            events = events.filter(action__startswith=filters.action)
        else:
            events = events.filter(action=filters.action)
    since, until = _utc(filters.since, "since"), _utc(filters.until, "until")
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    if since and until and since > until:
        raise ValidationError({"since": ["since must not be after until."]})
    page = paginate(events.order_by("-occurred_at", "-id"), paging)
    page["items"] = [_event_out(event) for event in page["items"]]
    return page
