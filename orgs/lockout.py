"""Sign-in lockouts with django-axes: the pair of account and address, and a ceiling per address.

django-axes counts failed sign-ins in its database tables (so a Redis outage changes nothing)
and locks the pair ``username + address`` after ``AXES_FAILURE_LIMIT`` failures: someone
guessing alice's password from one address locks only that pair, and alice signs in from her
own. ``LockoutHandler`` adds a ceiling per address (``KEYWARD_SIGNIN_ADDRESS_FAILURE_LIMIT``
failures over any accounts) against password spraying. Both last ``AXES_COOLOFF_TIME`` from the
last counted failure.

A locked pair or address sees the sign-in page with one message naming when to retry, the same
whether the account exists or not. Old-password guesses on the password change page count
towards the same lockout (``record_password_failure``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from axes.attempts import get_cool_off_threshold
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from orgs.middleware import next_without_tokens

USERNAME_MAX_LENGTH = 150


def lockout_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The username a failure counts against: as typed, trimmed and case-folded (Alice and
    alice share one count), cut to what the attempts table holds."""
    username = (credentials or {}).get("username")
    if username is None:
        username = request.POST.get("username") if request is not None else None
    if username is None:
        return None
    return str(username).strip().casefold()[:USERNAME_MAX_LENGTH]


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a locked pair or address before any password is checked.

    Sign-ins without a request (the shell, ``Client.login``) have no address to count against;
    they are not throttled, as nobody can reach them over the network.
    """

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


class AxesRequest(HttpRequest):
    """A request after axes' ``update_request`` (its middleware, or ``lockout_response``):
    the attributes axes sets, for type checking."""

    axes_ip_address: str
    axes_locked_out: bool
    axes_credentials: dict[str, Any] | None


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler with a ceiling of failures per address, over all accounts."""

    def _recent(self, request: AxesRequest) -> Any:
        return AccessAttempt.objects.filter(
            ip_address=request.axes_ip_address,
            attempt_time__gte=get_cool_off_threshold(request),
        )

    def address_failures(self, request: AxesRequest) -> int:
        total = self._recent(request).aggregate(total=Sum("failures_since_start"))["total"]
        return total or 0

    def address_locked(self, request: AxesRequest) -> bool:
        return self.address_failures(request) >= settings.KEYWARD_SIGNIN_ADDRESS_FAILURE_LIMIT

    def pair_locked(self, request: HttpRequest, credentials: dict[str, Any] | None) -> bool:
        return super().is_locked(request, credentials)

    def is_locked(self, request: AxesRequest, credentials: dict[str, Any] | None = None) -> bool:
        return self.pair_locked(request, credentials) or self.address_locked(request)

    def user_login_failed(
        self,
        sender: Any,
        credentials: dict[str, Any],
        request: AxesRequest | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return  # nothing to count against (see LockoutBackend)
        super().user_login_failed(sender, credentials, request, **kwargs)
        if not request.axes_locked_out and self.address_locked(request):
            request.axes_locked_out = True
            request.axes_credentials = credentials

    def locked_until(self, request: AxesRequest, credentials: dict[str, Any] | None) -> datetime:
        """When the lock ends: the cool-off after the last failure that keeps it."""
        recent = self._recent(request)
        if self.pair_locked(request, credentials):
            recent = recent.filter(username=get_client_username(request, credentials))
        last = recent.aggregate(last=Max("attempt_time"))["last"] or timezone.now()
        return last + (get_cool_off(request) or timedelta(0))


def _handler() -> LockoutHandler:
    handler = AxesProxyHandler.get_implementation()
    assert isinstance(handler, LockoutHandler), "AXES_HANDLER must be orgs.lockout.LockoutHandler"
    return handler


def credentials_of(request: HttpRequest) -> dict[str, Any]:
    return {"username": request.user.get_username()}


def is_locked(request: HttpRequest, credentials: dict[str, Any]) -> bool:
    return AxesProxyHandler.is_locked(request, credentials)


def record_password_failure(request: HttpRequest, credentials: dict[str, Any]) -> bool:
    """Count a wrong password typed outside the sign-in form (the old password on the password
    change page) like a failed sign-in; True when that locks the pair or address."""
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    return bool(getattr(request, "axes_locked_out", False))


def retry_message(until: datetime, now: datetime) -> str:
    minutes = max(1, -(-int((until - now).total_seconds()) // 60))
    return (
        "Too many failed sign-ins for this account from your address, or from your address "
        f"altogether. Try again after {until:%H:%M} UTC (in {minutes} minute"
        f"{'s' if minutes != 1 else ''})."
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The sign-in page (or, signed in, the password change page) saying when to retry, with
    429 and Retry-After. The same for every username, existing or not."""
    now = timezone.now()
    AxesProxyHandler.update_request(request)
    until = _handler().locked_until(cast(AxesRequest, request), credentials)
    message = retry_message(until, now)
    if request.user.is_authenticated:
        from orgs.views import password_change_form  # the page's form, without a cycle

        template = "registration/password_change_form.html"
        context: dict[str, Any] = {"form": password_change_form(request.user), "lockout": message}
    else:
        template = "registration/login.html"
        username = lockout_username(request, credentials) or ""
        context = {
            "form": AuthenticationForm(request, initial={"username": username}),
            "lockout": message,
            "next": next_without_tokens(request.POST.get("next", request.GET.get("next", ""))),
        }
    response = TemplateResponse(request, template, context, status=429)
    response["Retry-After"] = str(max(1, int((until - now).total_seconds())))
    response.render()
    return response
