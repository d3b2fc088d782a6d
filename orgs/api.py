"""API: the caller and the audit log. Translation only: visibility lives in the querysets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Query, Router
from pydantic import ConfigDict

from access import rules
from api.support import (
    MAX_ID,
    CamelSchema,
    InputSchema,
    permission_note,
    principal_of,
    rendered,
    requires,
    responses,
)
from orgs import audit_log
from orgs.audit_log import AuditLog, EventFilter, InvalidCursor
from orgs.models import AuditEvent

router = Router(tags=["organization"])

# Offsets walk every row they skip; past this many, cursors go on where offsets stop.
MAX_AUDIT_OFFSET = 10_000
MAX_AUDIT_COUNT = 10_000


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
    object_type: str | None = Field(
        None,
        max_length=40,
        description="With objectId: events about one object (api_token, group, user, ...).",
        json_schema_extra={"example": "api_token"},
    )
    object_id: str | None = Field(
        None,
        max_length=40,
        description="With objectType: the object's id.",
        json_schema_extra={"example": "57"},
    )
    group_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Events of this group (its tokens, members, itself)."
    )
    since: datetime | None = Field(None, description="Events at or after this time.")
    until: datetime | None = Field(None, description="Events before this time.")


class AuditPaging(InputSchema):
    limit: int = Field(
        50,
        ge=1,
        le=200,
        description="How many events, 1 to 200.",
        json_schema_extra={"example": 50},
    )
    cursor: str | None = Field(
        None,
        max_length=audit_log.MAX_CURSOR_LENGTH,
        description="A `nextCursor` from an earlier answer: go on from there. Opaque; keeps "
        "working across releases and while new events arrive.",
    )
    order: Literal["desc", "asc"] = Field(
        "desc",
        description="`desc`: newest first (the console's order). `asc`: oldest first, for "
        "reading the log forward and resuming (SIEM); leaves out the last "
        f"{int(audit_log.SETTLE.total_seconds())} seconds until they settle.",
    )
    offset: int = Field(
        0,
        ge=0,
        le=MAX_AUDIT_OFFSET,
        description=f"How many events to skip, at most {MAX_AUDIT_OFFSET:,}: kept for older "
        "clients. Beyond it, and for anything that pulls the log regularly, follow "
        "`nextCursor`. Not with `cursor`.",
        json_schema_extra={"example": 0},
    )


class AuditEventPage(CamelSchema):
    items: list[AuditEventOut]
    count: int | None = Field(
        description=f"Without a cursor, newest first: how many events match, counted up to "
        f"{MAX_AUDIT_COUNT:,} (see countIsCapped). Null when paging by cursor or oldest first."
    )
    count_is_capped: bool = Field(
        description=f"More than {MAX_AUDIT_COUNT:,} events match; count stops there."
    )
    limit: int
    offset: int
    next_cursor: str | None = Field(
        description="Pass it as `cursor` (with the same `order`) for the next page. Newest "
        "first: null when there are no older events. Oldest first: where to resume, also "
        "after an empty page (you are caught up: ask again later with the same cursor); null "
        "only when nothing was read yet."
    )


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
def me(request: HttpRequest) -> HttpResponse:
    # Built from what authentication already loaded, as plain data under the schema's JSON
    # names, and rendered as is: every value below is the type PrincipalOut declares, so
    # validating it again on each call (the busiest operation, the one the bearer path is
    # measured by: bench/auth.py) would only cost time. tests/tokens/test_auth.py validates the
    # answer against PrincipalOut.
    principal = principal_of(request)
    token, user = principal.token, principal.user
    # Bearer authentication: a token, and the user it acts as.
    assert token is not None and user is not None
    organization = token.organization
    group = token.group if token.group_id else None
    body = {
        "userId": user.pk,
        "kind": str(user.kind),
        "name": user.name,
        "tokenId": token.pk,
        "scope": str(token.scope),
        "organization": {
            "id": organization.pk,
            "slug": organization.slug,
            "name": organization.name,
        },
        "group": {"id": group.pk, "slug": group.slug, "name": group.name} if group else None,
        "permissions": sorted(rules.effective_permissions(principal)),
    }
    return rendered(request, body)


# Audit log -----------------------------------------------------------------------------------


@router.get(
    "/audit-events",
    auth=requires("api.audit-events.read"),
    response=responses({200: AuditEventPage}),
    by_alias=True,
    tags=["audit"],
    summary="Read the audit log",
    description="Organization-wide for organization admins and tokens; a group token or group "
    "admin sees its groups' events. Newest first by default; page with `nextCursor` (`cursor` "
    "in), or with `offset` up to "
    f"{MAX_AUDIT_OFFSET:,}. To pull the log into a SIEM, read oldest first (`order=asc`, "
    "optionally from `since`) and keep the last `nextCursor`: each pull resumes after the last "
    "event it returned, so events that arrive meanwhile come on a later pull, none lost and "
    "none twice. Oldest first leaves out events younger than "
    f"{int(audit_log.SETTLE.total_seconds())} seconds: an event becomes visible when its "
    "change commits, and waiting lets one committed a moment late arrive before the cursor "
    "passes its time. " + permission_note("api.audit-events.read"),
)
def list_audit_events(
    request: HttpRequest, filters: Query[AuditFilters], paging: Query[AuditPaging]
) -> dict[str, Any]:
    events = AuditLog(AuditEvent.objects.visible_to(principal_of(request)), _audit_filter(filters))
    position = None
    if paging.cursor is not None:
        if paging.offset:
            raise ValidationError({"offset": ["Give either offset or cursor, not both."]})
        try:
            position = audit_log.decode_cursor(paging.cursor)
        except InvalidCursor as error:
            raise ValidationError(
                {"cursor": [f"{error} Start again without it (or from since)."]}
            ) from None
    if paging.order == "asc" and paging.offset:
        raise ValidationError({"offset": ["Oldest first pages by cursor only."]})
    count = None
    if paging.order == "asc":
        items, more = events.oldest_first(after=position, limit=paging.limit, now=timezone.now())
        last = items[-1] if items else None
        resume = audit_log.Position.of(last) if last else position
        next_cursor = audit_log.encode_cursor(resume) if resume else None
    else:
        items, more = events.newest_first(before=position, limit=paging.limit, offset=paging.offset)
        next_cursor = audit_log.encode_cursor(audit_log.Position.of(items[-1])) if more else None
        if position is None:
            count = events.capped_count(MAX_AUDIT_COUNT)
    return {
        "items": [_event_out(event) for event in items],
        "count": min(count, MAX_AUDIT_COUNT) if count is not None else None,
        "count_is_capped": count is not None and count > MAX_AUDIT_COUNT,
        "limit": paging.limit,
        "offset": paging.offset,
        "next_cursor": next_cursor,
    }


def _audit_filter(filters: AuditFilters) -> EventFilter:
    since, until = _utc(filters.since, "since"), _utc(filters.until, "until")
    if since and until and since > until:
        raise ValidationError({"since": ["since must not be after until."]})
    if (filters.object_type is None) != (filters.object_id is None):
        raise ValidationError(
            {
                "objectId" if filters.object_id is None else "objectType": [
                    "Give objectType and objectId together: they name one object."
                ]
            }
        )
    return EventFilter(
        actors=None if filters.actor_id is None else audit_log.by_actor_ids([filters.actor_id]),
        tokens=None if filters.token_id is None else audit_log.by_token_ids([filters.token_id]),
        actions=None
        if not filters.action
        else audit_log.by_actions(audit_log.actions_matching(filters.action)),
        objects=None
        if filters.object_type is None or filters.object_id is None  # both or neither (above)
        else audit_log.by_objects([(filters.object_type, filters.object_id)]),
        groups=None if filters.group_id is None else audit_log.by_group_ids([filters.group_id]),
        since=since,
        until=until,
    )
