"""API: invitations. The organization's side (invite, list, read, withdraw) with its tokens; the
invited person's side (their invitations, accept, decline) with their personal token or console
session. Translation only: rights, audit and e-mail live in people.services."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Path, Query, Router
from pydantic import ConfigDict, model_validator

from access import rules
from access.errors import NotFound
from api.support import (
    MAX_ID,
    MAX_VERSION,
    CamelSchema,
    InputSchema,
    Page,
    Paging,
    organization_of,
    paginate,
    permission_note,
    person,
    person_of,
    principal_of,
    requires,
    responses,
)
from orgs.principals import Principal
from people import services
from people.models import Invitation

router = Router(tags=["invitations"])

Role = Literal["admin", "member"]
Status = Literal["pending", "accepted", "declined", "withdrawn", "expired"]
ObjectId = Path(..., ge=1, le=MAX_ID)
SAME_ANSWER = (
    "The answer is the same whether or not anyone has this address or username; the e-mail goes "
    "only to the typed address (a username invitation: to that person's own address, which you "
    "never see)."
)


# Schemas -------------------------------------------------------------------------------------


class InvitationIn(InputSchema):
    email: str | None = Field(None, max_length=254, description="The address to invite.")
    username: str | None = Field(None, max_length=150, description="Or a username to invite.")
    role: Role = "member"

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "erin@example.com", "role": "member"}]}
    )

    @model_validator(mode="after")
    def _one_addressee(self) -> InvitationIn:
        if bool(self.email) == bool(self.username):
            raise ValueError("Give an email or a username, not both.")
        return self


class InviterOut(CamelSchema):
    name: str


class InvitationOut(CamelSchema):
    id: int
    email: str | None = Field(description="As typed by the admin who invited.")
    username: str | None = Field(description="As typed by the admin who invited.")
    role: Role
    status: Status
    invited_by: InviterOut
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None = Field(
        description="When it was accepted, declined, withdrawn or marked expired."
    )
    member_user_id: int | None = Field(
        description="Who joined, once the invitation is accepted; null until then."
    )
    version: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "email": "erin@example.com",
                    "username": None,
                    "role": "member",
                    "status": "pending",
                    "invitedBy": {"name": "Alice Liddell"},
                    "createdAt": "2026-11-23T08:00:00Z",
                    "expiresAt": "2026-11-30T08:00:00Z",
                    "answeredAt": None,
                    "memberUserId": None,
                    "version": 1,
                }
            ]
        }
    )


class OrganizationRef(CamelSchema):
    id: int
    slug: str
    name: str


class ReceivedInvitationOut(CamelSchema):
    id: int
    organization: OrganizationRef
    role: Role
    status: Status
    invited_by: InviterOut
    created_at: datetime
    expires_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "organization": {"id": 1, "slug": "acme", "name": "Acme Corp"},
                    "role": "member",
                    "status": "pending",
                    "invitedBy": {"name": "Alice Liddell"},
                    "createdAt": "2026-11-23T08:00:00Z",
                    "expiresAt": "2026-11-30T08:00:00Z",
                }
            ]
        }
    )


class InvitationFilters(InputSchema):
    status: Status | None = Field(None, description="Only invitations in this state.")


class ReceivedFilters(InputSchema):
    status: Status | None = Field(
        "pending", description="Only invitations in this state (default: pending)."
    )


class VersionQuery(InputSchema):
    version: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="Refuse (409) if it changed since."
    )


# Translation ---------------------------------------------------------------------------------


def invitation_out(invitation: Invitation) -> dict[str, Any]:
    """The organization's view: what its admin typed, and the person only once they joined."""
    status = invitation.display_status()
    return {
        "id": invitation.pk,
        "email": invitation.email or None,
        "username": invitation.username or None,
        "role": invitation.role,
        "status": status,
        "invited_by": {"name": invitation.invited_by_name},
        "created_at": invitation.created_at,
        "expires_at": invitation.expires_at,
        "answered_at": invitation.answered_at,
        "member_user_id": invitation.answered_by_id if status == "accepted" else None,
        "version": invitation.version,
    }


def received_out(invitation: Invitation) -> dict[str, Any]:
    organization = invitation.organization
    return {
        "id": invitation.pk,
        "organization": {
            "id": organization.pk,
            "slug": organization.slug,
            "name": organization.name,
        },
        "role": invitation.role,
        "status": invitation.display_status(),
        "invited_by": {"name": invitation.invited_by_name},
        "created_at": invitation.created_at,
        "expires_at": invitation.expires_at,
    }


def _organizations_invitation(principal: Principal, invitation_id: int) -> Invitation:
    rules.require_read_invitations(principal)
    invitation = Invitation.objects.visible_to(principal).filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFound("No such invitation.")
    return invitation


def _received(principal: Principal, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.received(person_of(principal), invitation_id)
    if invitation is None:
        raise NotFound("No such invitation.")
    return invitation


def create_invitation(
    principal: Principal, email: str | None, username: str | None, role: str
) -> Any:
    invitation = services.invite(
        actor=principal,
        organization=organization_of(principal),
        email=email or "",
        username=username or "",
        role=role,
    )
    return 201, invitation_out(invitation)


# The organization's side ---------------------------------------------------------------------


@router.post(
    "/invitations",
    auth=requires("api.users.write"),
    response=responses({201: InvitationOut}),
    by_alias=True,
    summary="Invite a person to the organization",
    description="By e-mail address or username, with a role you could grant; they join when "
    f"they accept, within 7 days. {SAME_ANSWER} " + permission_note("api.users.write"),
)
def invite(request: HttpRequest, payload: InvitationIn) -> Any:
    return create_invitation(principal_of(request), payload.email, payload.username, payload.role)


@router.get(
    "/invitations",
    auth=requires("api.users.read"),
    response=responses({200: Page[InvitationOut]}),
    by_alias=True,
    summary="List the organization's invitations",
    description="Pending, accepted, declined, withdrawn and expired; newest first. "
    "Organization-wide callers only. " + permission_note("api.users.read"),
)
def list_invitations(
    request: HttpRequest, filters: Query[InvitationFilters], paging: Query[Paging]
) -> dict[str, Any]:
    principal = principal_of(request)
    rules.require_read_invitations(principal)
    invitations = Invitation.objects.visible_to(principal)
    if filters.status:
        invitations = invitations.with_status(filters.status, timezone.now())
    page = paginate(invitations.order_by("-created_at", "-pk"), paging)
    page["items"] = [invitation_out(invitation) for invitation in page["items"]]
    return page


@router.get(
    "/invitations/{id}",
    auth=requires("api.users.read"),
    response=responses({200: InvitationOut}),
    by_alias=True,
    summary="Read an invitation of the organization",
    description=permission_note("api.users.read"),
)
def read_invitation(request: HttpRequest, id: int = ObjectId) -> dict[str, Any]:
    return invitation_out(_organizations_invitation(principal_of(request), id))


@router.delete(
    "/invitations/{id}",
    auth=requires("api.users.write"),
    response=responses({204: None}),
    summary="Withdraw a pending invitation",
    description="It stays listed as withdrawn. " + permission_note("api.users.write"),
)
def withdraw_invitation(
    request: HttpRequest, query: Query[VersionQuery], id: int = ObjectId
) -> tuple[int, None]:
    principal = principal_of(request)
    services.withdraw_invitation(
        actor=principal,
        invitation=_organizations_invitation(principal, id),
        expected_version=query.version,
    )
    return 204, None


# The invited person's side -------------------------------------------------------------------

PERSON_NOTE = (
    "For the invited person: their personal token (any organization's), or their console "
    "session with its CSRF token. Invitations addressed to anyone else are 404."
)


@router.get(
    "/me/invitations",
    auth=person(),
    response=responses({200: Page[ReceivedInvitationOut]}),
    by_alias=True,
    summary="Your invitations",
    description=PERSON_NOTE,
)
def my_invitations(
    request: HttpRequest, filters: Query[ReceivedFilters], paging: Query[Paging]
) -> dict[str, Any]:
    principal = principal_of(request)
    invitations = Invitation.objects.addressed_to(person_of(principal)).select_related(
        "organization"
    )
    if filters.status:
        invitations = invitations.with_status(filters.status, timezone.now())
    page = paginate(invitations.order_by("-created_at", "-pk"), paging)
    page["items"] = [received_out(invitation) for invitation in page["items"]]
    return page


@router.post(
    "/invitations/{id}/accept",
    auth=person(),
    response=responses({200: ReceivedInvitationOut}),
    by_alias=True,
    summary="Accept an invitation and join the organization",
    description="With the invited role, while it is pending and not expired. " + PERSON_NOTE,
)
def accept_invitation(request: HttpRequest, id: int = ObjectId) -> dict[str, Any]:
    principal = principal_of(request)
    invitation = services.accept_invitation(actor=principal, invitation=_received(principal, id))
    return received_out(invitation)


@router.post(
    "/invitations/{id}/decline",
    auth=person(),
    response=responses({200: ReceivedInvitationOut}),
    by_alias=True,
    summary="Decline an invitation",
    description=PERSON_NOTE,
)
def decline_invitation(request: HttpRequest, id: int = ObjectId) -> dict[str, Any]:
    principal = principal_of(request)
    invitation = services.decline_invitation(actor=principal, invitation=_received(principal, id))
    return received_out(invitation)
