"""API: the organization, its members, groups and group members. Translation only: rights,
audit and versions live in people.services, visibility in the querysets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.db.models import Q
from django.http import HttpRequest
from ninja import Field, Path, Query, Router
from pydantic import ConfigDict

from access.errors import NotFound
from api.support import (
    MAX_ID,
    MAX_VERSION,
    CamelSchema,
    InputSchema,
    Page,
    Paging,
    api_fields,
    organization_of,
    paginate,
    permission_note,
    principal_of,
    requires,
    responses,
)
from orgs.models import Group, GroupMembership, OrganizationMembership
from orgs.principals import Principal
from people import services
from people.invitations_api import InvitationOut, create_invitation

router = Router(tags=["organization"])

Role = Literal["admin", "member"]


# Schemas -------------------------------------------------------------------------------------


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


MEMBER_EXAMPLE: dict[str, Any] = {
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
    username: str = Field(max_length=150, description="The username to invite.")
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
    organization = organization_of(principal)
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
        organization=organization_of(principal),
        name=organization_of(principal).name if payload.name is None else payload.name,
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
    response=responses({201: InvitationOut}),
    by_alias=True,
    tags=["members"],
    summary="Invite a person by username (use POST /invitations)",
    description="Kept for existing clients: nobody is added directly any more. This invites the "
    "username with the role, exactly as `POST /invitations`, and answers with the invitation; "
    "the person joins when they accept. " + permission_note("api.users.write"),
    deprecated=True,
)
def add_member(request: HttpRequest, payload: MemberCreateIn) -> Any:
    return create_invitation(principal_of(request), None, payload.username, payload.role)


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
        actor=principal,
        organization=organization_of(principal),
        slug=payload.slug,
        name=payload.name,
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
