"""Console plumbing shared by every page under ``/o/<org_slug>/``."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.middleware import HtmxDetails

from access import catalog, rules
from access.errors import Forbidden, NotFound
from orgs.models import Organization, User
from orgs.principals import Principal
from policies.addresses import client_address


class SignedInRequest(HttpRequest):
    """A request that ``login_required`` let through: its user is a person, not anonymous.
    (For type checking: at run time it is Django's HttpRequest.)"""

    user: User
    htmx: HtmxDetails  # django-htmx's middleware sets it on every request


class OrganizationRequest(SignedInRequest):
    """A request as ``organization_view`` hands it to a view: a signed-in person, the
    organization of the URL, and the principal acting in it."""

    organization: Organization
    principal: Principal


def organization_view(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """Resolve ``org_slug`` to an organization the signed-in person belongs to (else 404), set
    ``request.organization`` and ``request.principal`` for the view, and answer the domain
    errors a view lets through: NotFound is a 404 page, Forbidden a 403 page with its reason.
    (Errors that belong beside a form's fields, a version conflict or a policy refusal, the
    view shows on its form.)"""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, org_slug: str, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # login_required let only a signed-in person through; the attributes are set here.
        request = cast(OrganizationRequest, request)
        organization = Organization.objects.filter(
            slug=org_slug, memberships__user=request.user
        ).first()
        if organization is None:
            raise Http404("No such organization.")
        request.organization = organization
        request.principal = Principal.for_member(
            request.user, organization, address=client_address(request)
        )
        try:
            return view(request, *args, **kwargs)
        except NotFound as error:
            raise Http404(error.message) from None
        except Forbidden as error:
            raise PermissionDenied(error.message) from None

    return wrapper


def is_partial(request: HttpRequest) -> bool:
    """An HTMX request that wants a fragment (a history restore wants the whole page)."""
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


def render_page_or_partial(
    request: HttpRequest,
    template: str,
    partial: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> HttpResponse:
    """The page, or for an HTMX request its named partial; the answer varies on HX-Request, so
    a cache never gives one for the other."""
    name = f"{template}#{partial}" if is_partial(request) else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def console_permissions(request: HttpRequest) -> dict[str, Any]:
    """What the signed-in person may open, for the navigation and the pages' links (asked of
    the access layer; a page checks again when it is opened)."""
    principal = getattr(request, "principal", None)
    if principal is None:
        return {}
    return {
        "can": {
            "list_organization_tokens": rules.may_list_tokens(principal, catalog.ORGANIZATION),
            "read_ip_filters": rules.may_read_ip_filters(principal),
            "write_ip_filters": rules.may_write_ip_filters(principal),
            "read_policy": rules.may_read_policy(principal),
            "change_policy": rules.may_change_policy(principal),
            "read_audit": rules.may_read_audit(principal),
            "read_webhooks": rules.may_read_webhooks(principal),
            "reach_organization": rules.reaches_organization(principal),
            "read_invitations": rules.may_read_invitations(principal),
        }
    }
