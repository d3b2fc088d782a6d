"""Pages outside any organization: sign-in and the password change (the landing page, which
also shows pending invitations, is ``people.views.home``)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy

from orgs import audit, lockout
from orgs.middleware import next_without_tokens
from orgs.models import User
from orgs.principals import Principal
from policies.addresses import client_address


class SignInView(auth_views.LoginView):
    redirect_authenticated_user = True

    def get_redirect_url(self) -> str:
        # Never a token's secret in the form's hidden "next" or the redirect after sign-in.
        return next_without_tokens(super().get_redirect_url())


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

    def form_invalid(self, form):
        if form.has_error("old_password", "password_incorrect"):
            credentials = lockout.credentials_of(self.request)
            if lockout.record_password_failure(self.request, credentials):
                return lockout.lockout_response(self.request, None, credentials)
        return super().form_invalid(form)

    def form_valid(self, form):
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
