"""Console pages for people: the person's own invitations (and the landing page that shows
them), and the organization's People page where its admins invite, withdraw and, where the
operator allows it, create people. Views read a form, call a service, render or redirect."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from access import rules
from access.errors import NotFound, VersionConflict
from orgs.console import OrganizationRequest, SignedInRequest, organization_view
from orgs.models import OrganizationMembership
from orgs.principals import Principal
from people import services
from people.forms import CreatePersonForm, InviteForm, VersionForm
from people.models import Invitation, InvitationStatus
from policies.addresses import client_address
from tokens.console import withhold_pasted_tokens
from tokens.forms import service_errors_to_form

LISTED_INVITATIONS = 200


def _person(request: SignedInRequest) -> Principal:
    """The signed-in person, outside any organization."""
    return Principal(user=request.user, organization=None, address=client_address(request))


def _first_error(error: ValidationError) -> str:
    return " ".join(message for messages_ in error.message_dict.values() for message in messages_)


# The person's own invitations --------------------------------------------------------------------


@login_required
@require_GET
def home(request: SignedInRequest) -> HttpResponse:
    """Go straight into the only organization, unless invitations wait for an answer; otherwise
    let the person choose an organization and answer them."""
    memberships = list(
        OrganizationMembership.objects.filter(user=request.user)
        .select_related("organization")
        .order_by("organization__name")
    )
    pending = list(
        Invitation.objects.addressed_to(request.user)
        .pending(timezone.now())
        .select_related("organization")
        .order_by("-created_at")
    )
    if len(memberships) == 1 and not pending:
        return redirect("tokens:organization-home", org_slug=memberships[0].organization.slug)
    return render(request, "orgs/home.html", {"memberships": memberships, "pending": pending})


@login_required
@require_GET
def my_invitations(request: SignedInRequest) -> HttpResponse:
    now = timezone.now()
    invitations = list(
        Invitation.objects.addressed_to(request.user)
        .select_related("organization")
        .order_by("-created_at")[:LISTED_INVITATIONS]
    )
    pending = [invitation for invitation in invitations if not invitation.is_expired(now)]
    pending = [i for i in pending if i.status == InvitationStatus.PENDING]
    answered = [invitation for invitation in invitations if invitation not in pending]
    return render(
        request,
        "people/invitations.html",
        {"pending": pending, "answered": answered, "now": now},
    )


def _received(request: SignedInRequest, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.received(request.user, invitation_id)
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


@login_required
@require_POST
def accept_invitation(request: SignedInRequest, invitation_id: int) -> HttpResponse:
    invitation = _received(request, invitation_id)
    try:
        services.accept_invitation(actor=_person(request), invitation=invitation)
    except ValidationError as error:
        messages.error(request, _first_error(error))
        return redirect("my-invitations")
    except NotFound:
        raise Http404("No such invitation.") from None
    organization = invitation.organization
    messages.success(
        request, f"You joined {organization.name} as {invitation.get_role_display().lower()}."
    )
    return redirect("tokens:organization-home", org_slug=organization.slug)


@login_required
@require_POST
def decline_invitation(request: SignedInRequest, invitation_id: int) -> HttpResponse:
    invitation = _received(request, invitation_id)
    try:
        services.decline_invitation(actor=_person(request), invitation=invitation)
    except ValidationError as error:
        messages.error(request, _first_error(error))
    except NotFound:
        raise Http404("No such invitation.") from None
    else:
        messages.success(request, f"You declined the invitation to {invitation.organization.name}.")
    return redirect("my-invitations")


# The organization's People page ----------------------------------------------------------------


def _require_people_page(request: OrganizationRequest) -> None:
    if not rules.may_read_invitations(request.principal):
        raise PermissionDenied("The People page is for the organization's admins.")


def _people_page(request: OrganizationRequest, **extra: Any) -> HttpResponse:
    principal = request.principal
    can_create = rules.may_create_people(
        principal, allowed_by_settings=settings.KEYWARD_ALLOW_ORG_USER_CREATION
    )
    context = {
        "section": "people",
        "members": OrganizationMembership.objects.visible_to(principal)
        .select_related("user")
        .order_by("user__username"),
        "invitations": Invitation.objects.visible_to(principal).order_by("-created_at")[
            :LISTED_INVITATIONS
        ],
        "can_invite": rules.may_invite(principal),
        "can_create": can_create,
        "invite_form": extra.pop("invite_form", None) or InviteForm(),
        "create_form": extra.pop("create_form", None) or CreatePersonForm(),
        "now": timezone.now(),
        **extra,
    }
    status = (
        400
        if any(
            form.is_bound and form.errors
            for form in (context["invite_form"], context["create_form"])
        )
        else 200
    )
    return render(request, "people/people.html", context, status=status)


@organization_view
@require_GET
def people(request: OrganizationRequest) -> HttpResponse:
    _require_people_page(request)
    return _people_page(request)


@organization_view
@require_POST
def invite(request: OrganizationRequest) -> HttpResponse:
    _require_people_page(request)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invite(
                actor=request.principal,
                organization=request.organization,
                role=form.cleaned_data["role"],
                **form.addressee_fields(),
            )
        except ValidationError as error:
            service_errors_to_form(form, error)
            if "email" in error.message_dict or "username" in error.message_dict:
                form.add_error("addressee", _first_error(error))
        else:
            messages.success(
                request,
                f"Invited {invitation.addressee} as {invitation.get_role_display().lower()}. "
                f"They join when they accept, by {invitation.expires_at:%Y-%m-%d %H:%M} UTC.",
            )
            return redirect("members:people", org_slug=request.organization.slug)
    withhold_pasted_tokens(request.principal, form, ("addressee",))
    return _people_page(request, invite_form=form)


@organization_view
@require_POST
def withdraw(request: OrganizationRequest, invitation_id: int) -> HttpResponse:
    _require_people_page(request)
    invitation = Invitation.objects.visible_to(request.principal).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    form = VersionForm(request.POST)
    version = form.cleaned_data["version"] if form.is_valid() else None
    try:
        services.withdraw_invitation(
            actor=request.principal, invitation=invitation, expected_version=version
        )
    except VersionConflict:
        messages.error(request, "That invitation changed meanwhile; here it is as it is now.")
    except ValidationError as error:
        messages.error(request, _first_error(error))
    else:
        messages.success(request, f"Withdrew the invitation of {invitation.addressee}.")
    return redirect("members:people", org_slug=request.organization.slug)


@sensitive_variables("created")
@organization_view
@require_POST
def create_person(request: OrganizationRequest) -> HttpResponse:
    _require_people_page(request)
    form = CreatePersonForm(request.POST)
    if form.is_valid():
        try:
            created = services.create_person(
                actor=request.principal,
                organization=request.organization,
                username=form.cleaned_data["username"],
                display_name=form.cleaned_data["display_name"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as error:
            service_errors_to_form(form, error)
        else:
            # The password is in this one response, never in a message or the session.
            response = _people_page(request, created=created)
            add_never_cache_headers(response)
            return response
    withhold_pasted_tokens(request.principal, form, ("username", "display_name"))
    return _people_page(request, create_form=form)
