"""Pages outside any organization: the organization chooser and the password change."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET

from orgs import audit, lockout
from orgs.models import OrganizationMembership, User
from orgs.principals import Principal
from policies.addresses import client_address


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Go straight into the only organization, or let the person choose one."""
    memberships = list(
        OrganizationMembership.objects.filter(user=request.user)
        .select_related("organization")
        .order_by("organization__name")
    )
    if len(memberships) == 1:
        return redirect("tokens:organization-home", org_slug=memberships[0].organization.slug)
    return render(request, "orgs/home.html", {"memberships": memberships})


class SignInView(auth_views.LoginView):
    redirect_authenticated_user = True


def password_change_form(user: User) -> PasswordChangeForm:
    return PasswordChangeForm(user)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change; a wrong old password counts as a failed sign-in, so guessing
    it here meets the same lockout as guessing at the sign-in page."""

    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("home")
    # Django admin's own-password page uses this view too; there the actor is an operator.
    audit_as_operator = False

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        credentials = lockout.credentials_of(request)
        if lockout.is_locked(request, credentials):
            return lockout.lockout_response(request, None, credentials)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):  # noqa: ANN001, ANN201 (Django's signature)
        if form.has_error("old_password", "password_incorrect"):
            credentials = lockout.credentials_of(self.request)
            if lockout.record_password_failure(self.request, credentials):
                return lockout.lockout_response(self.request, None, credentials)
        return super().form_invalid(form)

    def form_valid(self, form):  # noqa: ANN001, ANN201 (Django's signature)
        request = self.request
        address = client_address(request)
        actor = (
            Principal.operator(user=request.user, address=address)
            if self.audit_as_operator
            else Principal(user=request.user, organization=None, address=address)
        )
        with transaction.atomic():
            response = super().form_valid(form)
            audit.record(
                actor=actor,
                action="user.password_changed",
                organization=None,
                object_type="user",
                object_id=request.user.pk,
                object_repr=request.user.get_username(),
                changes={"password": {"before": "set", "after": "changed"}},
            )
        if not self.audit_as_operator:
            messages.success(request, "Your password is changed.")
        return response
