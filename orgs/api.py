"""API: the caller, the organization, its members, groups, group members and audit log.

Translation only: rights, audit and versions live in orgs.services, visibility in querysets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Path, Query, Router
from pydantic import ConfigDict

from config.api_support import (
    MAX_ID,
    MAX_VERSION,
    CamelSchema,
    InputSchema,
    Page,
    Paging,
    api_fields,
    paginate,
    permission_note,
    principal_of,
    requires,
    responses,
)
from orgs import audit_log, services
from orgs.audit_log import AuditLog, EventFilter, InvalidCursor
from orgs.errors import NotFound
from orgs.models import AuditEvent, Group, GroupMembership, OrganizationMembership
from orgs.principals import Principal

router = Router(tags=["organization"])

Role = Literal["admin", "member"]
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


class OrganizationOut(CamelSchema):
    id: int
    slug: str
    name: str
    created_at: datetime
    version: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "slug": "acme",
                    "name": "Acme Corp",
                    "createdAt": "2026-01-05T10:00:00Z",
                    "version": 2,
                }
            ]
        }
    )


class OrganizationPatchIn(InputSchema):
    version: int = Field(ge=1, le=MAX_VERSION)
    name: str | None = Field(None, max_length=1000)

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 2, "name": "Acme"}]})


MEMBER_EXAMPLE = {
    "userId": 7,
    "username": "alice",
    "name": "Alice Liddell",
    "email": "alice@example.com",
    "role": "admin",
    "version": 1,
    "joinedAt": "2026-01-05T10:00:00Z",
}


class MemberOut(CamelSchema):
    user_id: int
    username: str
    name: str
    email: str
    role: Role
    version: int
    joined_at: datetime

    model_config = ConfigDict(json_schema_extra={"examples": [MEMBER_EXAMPLE]})


class MemberFilters(InputSchema):
    name: str | None = Field(
        None,
        max_length=200,
        description="Part of the username or name.",
        json_schema_extra={"example": "ali"},
    )
    role: Role | None = None


class MemberCreateIn(InputSchema):
    username: str = Field(max_length=150, description="An existing person's username.")
    role: Role = "member"

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "erin", "role": "member"}]}
    )


class RolePatchIn(InputSchema):
    version: int = Field(ge=1, le=MAX_VERSION)
    role: Role

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 1, "role": "admin"}]})


class VersionQuery(InputSchema):
    version: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="Refuse (409) if it changed since."
    )


class GroupOut(CamelSchema):
    id: int
    slug: str
    name: str
    created_at: datetime
    version: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "slug": "platform",
                    "name": "Platform",
                    "createdAt": "2026-01-05T10:00:00Z",
                    "version": 1,
                }
            ]
        }
    )


class GroupFilters(InputSchema):
    name: str | None = Field(
        None,
        max_length=200,
        description="Part of the name or slug.",
        json_schema_extra={"example": "plat"},
    )


class GroupCreateIn(InputSchema):
    slug: str = Field(max_length=1000)
    name: str = Field(max_length=1000)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"slug": "platform", "name": "Platform"}]}
    )


class GroupPatchIn(InputSchema):
    version: int = Field(ge=1, le=MAX_VERSION)
    slug: str | None = Field(None, max_length=1000)
    name: str | None = Field(None, max_length=1000)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"version": 1, "name": "Platform team"}]}
    )


class GroupMemberOut(CamelSchema):
    user_id: int
    username: str
    name: str
    group_id: int
    role: Role
    version: int
    joined_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "userId": 8,
                    "username": "bob",
                    "name": "Bob",
                    "groupId": 3,
                    "role": "admin",
                    "version": 1,
                    "joinedAt": "2026-01-05T10:00:00Z",
                }
            ]
        }
    )


class GroupMemberFilters(InputSchema):
    role: Role | None = None


class GroupMemberCreateIn(InputSchema):
    user_id: int = Field(ge=1, le=MAX_ID, description="A member of the organization.")
    role: Role = "member"

    model_config = ConfigDict(json_schema_extra={"examples": [{"userId": 9, "role": "member"}]})


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


def _member_out(membership: OrganizationMembership) -> dict[str, Any]:
    user = membership.user
    return {
        "user_id": user.pk,
        "username": user.username,
        "name": user.name,
        "email": user.email,
        "role": membership.role,
        "version": membership.version,
        "joined_at": membership.created_at,
    }


def _group_member_out(membership: GroupMembership) -> dict[str, Any]:
    user = membership.user
    return {
        "user_id": user.pk,
        "username": user.username,
        "name": user.name,
        "group_id": membership.group_id,
        "role": membership.role,
        "version": membership.version,
        "joined_at": membership.created_at,
    }


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


def _get_member(principal: Principal, user_id: int) -> OrganizationMembership:
    membership = (
        OrganizationMembership.objects.visible_to(principal)
        .select_related("user", "organization")
        .filter(user_id=user_id)
        .first()
    )
    if membership is None:
        raise NotFound("No such member.")
    return membership


def _get_group(principal: Principal, group_id: int) -> Group:
    group = Group.objects.visible_to(principal).filter(pk=group_id).first()
    if group is None:
        raise NotFound("No such group.")
    return group


def _get_group_member(principal: Principal, group_id: int, user_id: int) -> GroupMembership:
    membership = (
        GroupMembership.objects.visible_to(principal)
        .select_related("user", "group__organization")
        .filter(group_id=group_id, user_id=user_id)
        .first()
    )
    if membership is None:
        raise NotFound("No such group member.")
    return membership


def _organization_out(principal: Principal) -> dict[str, Any]:
    organization = principal.organization
    organization.refresh_from_db()
    return {
        "id": organization.pk,
        "slug": organization.slug,
        "name": organization.name,
        "created_at": organization.created_at,
        "version": organization.version,
    }


USER_FIELDS = {"user": "userId"}
ObjectId = Path(..., ge=1, le=MAX_ID)


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
        permissions=sorted(principal.permissions),
    )


# The organization ----------------------------------------------------------------------------


@router.get(
    "/organization",
    auth=requires("api.organizations.read"),
    response=responses({200: OrganizationOut}),
    by_alias=True,
    summary="The caller's organization",
    description=permission_note("api.organizations.read"),
)
def read_organization(request: HttpRequest) -> dict[str, Any]:
    return _organization_out(principal_of(request))


@router.patch(
    "/organization",
    auth=requires("api.organizations.write"),
    response=responses({200: OrganizationOut}),
    by_alias=True,
    summary="Rename the organization",
    description="Needs the `version` you read. " + permission_note("api.organizations.write"),
)
def update_organization(request: HttpRequest, payload: OrganizationPatchIn) -> dict[str, Any]:
    principal = principal_of(request)
    services.rename_organization(
        actor=principal,
        organization=principal.organization,
        name=principal.organization.name if payload.name is None else payload.name,
        expected_version=payload.version,
    )
    return _organization_out(principal)


# Organization members ------------------------------------------------------------------------


@router.get(
    "/members",
    auth=requires("api.users.read"),
    response=responses({200: Page[MemberOut]}),
    by_alias=True,
    tags=["members"],
    summary="List the organization's members",
    description="A group token sees the members of its group. " + permission_note("api.users.read"),
)
def list_members(
    request: HttpRequest, filters: Query[MemberFilters], paging: Query[Paging]
) -> dict[str, Any]:
    members = OrganizationMembership.objects.visible_to(principal_of(request)).select_related(
        "user"
    )
    if filters.role:
        members = members.filter(role=filters.role)
    if filters.name:
        members = members.filter(
            Q(user__username__icontains=filters.name)
            | Q(user__display_name__icontains=filters.name)
            | Q(user__first_name__icontains=filters.name)
            | Q(user__last_name__icontains=filters.name)
        )
    page = paginate(members.order_by("user__username", "pk"), paging)
    page["items"] = [_member_out(membership) for membership in page["items"]]
    return page


@router.post(
    "/members",
    auth=requires("api.users.write"),
    response=responses({201: MemberOut}),
    by_alias=True,
    tags=["members"],
    summary="Add a person to the organization",
    description=permission_note("api.users.write"),
)
def add_member(request: HttpRequest, payload: MemberCreateIn) -> Any:
    principal = principal_of(request)
    membership = services.add_member(
        actor=principal,
        organization=principal.organization,
        username=payload.username,
        role=payload.role,
    )
    return 201, _member_out(_get_member(principal, membership.user_id))


@router.get(
    "/members/{user_id}",
    auth=requires("api.users.read"),
    response=responses({200: MemberOut}),
    by_alias=True,
    tags=["members"],
    summary="Read a member",
    description=permission_note("api.users.read"),
)
def read_member(request: HttpRequest, user_id: int = ObjectId) -> dict[str, Any]:
    return _member_out(_get_member(principal_of(request), user_id))


@router.patch(
    "/members/{user_id}",
    auth=requires("api.users.write"),
    response=responses({200: MemberOut}),
    by_alias=True,
    tags=["members"],
    summary="Change a member's role",
    description="Needs the `version` you read; the last admin stays an admin. "
    + permission_note("api.users.write"),
)
def update_member(
    request: HttpRequest, payload: RolePatchIn, user_id: int = ObjectId
) -> dict[str, Any]:
    principal = principal_of(request)
    services.change_member_role(
        actor=principal,
        membership=_get_member(principal, user_id),
        role=payload.role,
        expected_version=payload.version,
    )
    return _member_out(_get_member(principal, user_id))


@router.delete(
    "/members/{user_id}",
    auth=requires("api.users.delete"),
    response=responses({204: None}),
    tags=["members"],
    summary="Remove a person from the organization and its groups",
    description=permission_note("api.users.delete"),
)
def remove_member(
    request: HttpRequest, query: Query[VersionQuery], user_id: int = ObjectId
) -> tuple[int, None]:
    principal = principal_of(request)
    with api_fields(**USER_FIELDS):
        services.remove_member(
            actor=principal,
            membership=_get_member(principal, user_id),
            expected_version=query.version,
        )
    return 204, None


# Groups --------------------------------------------------------------------------------------


@router.get(
    "/groups",
    auth=requires("api.groups.read"),
    response=responses({200: Page[GroupOut]}),
    by_alias=True,
    tags=["groups"],
    summary="List groups",
    description="A group token sees its own group only. " + permission_note("api.groups.read"),
)
def list_groups(
    request: HttpRequest, filters: Query[GroupFilters], paging: Query[Paging]
) -> dict[str, Any]:
    groups = Group.objects.visible_to(principal_of(request))
    if filters.name:
        groups = groups.filter(Q(name__icontains=filters.name) | Q(slug__icontains=filters.name))
    return paginate(groups.order_by("name", "pk"), paging)


@router.post(
    "/groups",
    auth=requires("api.groups.write"),
    response=responses({201: GroupOut}),
    by_alias=True,
    tags=["groups"],
    summary="Create a group",
    description="Organization admins only. " + permission_note("api.groups.write"),
)
def create_group(request: HttpRequest, payload: GroupCreateIn) -> Any:
    principal = principal_of(request)
    group = services.create_group(
        actor=principal, organization=principal.organization, slug=payload.slug, name=payload.name
    )
    return 201, group


@router.get(
    "/groups/{id}",
    auth=requires("api.groups.read"),
    response=responses({200: GroupOut}),
    by_alias=True,
    tags=["groups"],
    summary="Read a group",
    description=permission_note("api.groups.read"),
)
def read_group(request: HttpRequest, id: int = ObjectId) -> Group:
    return _get_group(principal_of(request), id)


@router.patch(
    "/groups/{id}",
    auth=requires("api.groups.write"),
    response=responses({200: GroupOut}),
    by_alias=True,
    tags=["groups"],
    summary="Rename a group or change its slug",
    description="Its admins or organization admins; needs the `version` you read. "
    + permission_note("api.groups.write"),
)
def update_group(request: HttpRequest, payload: GroupPatchIn, id: int = ObjectId) -> Group:
    principal = principal_of(request)
    return services.update_group(
        actor=principal,
        group=_get_group(principal, id),
        name=payload.name,
        slug=payload.slug,
        expected_version=payload.version,
    )


@router.delete(
    "/groups/{id}",
    auth=requires("api.groups.delete"),
    response=responses({204: None}),
    tags=["groups"],
    summary="Delete a group with its memberships and tokens",
    description="Organization admins only; its tokens are deleted too, which also needs "
    "`api.api-tokens.delete`. " + permission_note("api.groups.delete"),
)
def delete_group(
    request: HttpRequest, query: Query[VersionQuery], id: int = ObjectId
) -> tuple[int, None]:
    principal = principal_of(request)
    services.delete_group(
        actor=principal, group=_get_group(principal, id), expected_version=query.version
    )
    return 204, None


# Group members -------------------------------------------------------------------------------


@router.get(
    "/groups/{id}/members",
    auth=requires("api.users.read"),
    response=responses({200: Page[GroupMemberOut]}),
    by_alias=True,
    tags=["groups"],
    summary="List a group's members",
    description=permission_note("api.users.read"),
)
def list_group_members(
    request: HttpRequest,
    filters: Query[GroupMemberFilters],
    paging: Query[Paging],
    id: int = ObjectId,
) -> dict[str, Any]:
    principal = principal_of(request)
    group = _get_group(principal, id)
    members = GroupMembership.objects.visible_to(principal).filter(group=group)
    if filters.role:
        members = members.filter(role=filters.role)
    page = paginate(members.select_related("user").order_by("user__username", "pk"), paging)
    page["items"] = [_group_member_out(membership) for membership in page["items"]]
    return page


@router.post(
    "/groups/{id}/members",
    auth=requires("api.users.write"),
    response=responses({201: GroupMemberOut}),
    by_alias=True,
    tags=["groups"],
    summary="Add a member of the organization to a group",
    description="The group's admins or organization admins. " + permission_note("api.users.write"),
)
def add_group_member(request: HttpRequest, payload: GroupMemberCreateIn, id: int = ObjectId) -> Any:
    principal = principal_of(request)
    with api_fields(**USER_FIELDS):
        membership = services.add_group_member(
            actor=principal,
            group=_get_group(principal, id),
            user_id=payload.user_id,
            role=payload.role,
        )
    return 201, _group_member_out(_get_group_member(principal, id, membership.user_id))


@router.get(
    "/groups/{id}/members/{user_id}",
    auth=requires("api.users.read"),
    response=responses({200: GroupMemberOut}),
    by_alias=True,
    tags=["groups"],
    summary="Read a group member",
    description=permission_note("api.users.read"),
)
def read_group_member(
    request: HttpRequest, id: int = ObjectId, user_id: int = ObjectId
) -> dict[str, Any]:
    return _group_member_out(_get_group_member(principal_of(request), id, user_id))


@router.patch(
    "/groups/{id}/members/{user_id}",
    auth=requires("api.users.write"),
    response=responses({200: GroupMemberOut}),
    by_alias=True,
    tags=["groups"],
    summary="Change a group member's role",
    description="Needs the `version` you read. " + permission_note("api.users.write"),
)
def update_group_member(
    request: HttpRequest, payload: RolePatchIn, id: int = ObjectId, user_id: int = ObjectId
) -> dict[str, Any]:
    principal = principal_of(request)
    services.change_group_member_role(
        actor=principal,
        membership=_get_group_member(principal, id, user_id),
        role=payload.role,
        expected_version=payload.version,
    )
    return _group_member_out(_get_group_member(principal, id, user_id))


@router.delete(
    "/groups/{id}/members/{user_id}",
    auth=requires("api.users.delete"),
    response=responses({204: None}),
    tags=["groups"],
    summary="Take a person out of a group",
    description=permission_note("api.users.delete"),
)
def remove_group_member(
    request: HttpRequest,
    query: Query[VersionQuery],
    id: int = ObjectId,
    user_id: int = ObjectId,
) -> tuple[int, None]:
    principal = principal_of(request)
    services.remove_group_member(
        actor=principal,
        membership=_get_group_member(principal, id, user_id),
        expected_version=query.version,
    )
    return 204, None


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
        if filters.object_type is None
        else audit_log.by_objects([(filters.object_type, filters.object_id)]),
        groups=None if filters.group_id is None else audit_log.by_group_ids([filters.group_id]),
        since=since,
        until=until,
    )
