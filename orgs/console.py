"""Console plumbing shared by every page under ``/o/<org_slug>/``."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse

from access import catalog, rules
from orgs.models import Organization
from orgs.principals import Principal
from policies.addresses import client_address


def organization_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve ``org_slug`` to an organization the signed-in person belongs to (else 404) and
    set ``request.organization`` and ``request.principal`` for the view."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, org_slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
        organization = Organization.objects.filter(
            slug=org_slug, memberships__user=request.user
        ).first()
        if organization is None:
            raise Http404("No such organization.")
        request.organization = organization  # type: ignore[attr-defined]
        request.principal = Principal.for_member(  # type: ignore[attr-defined]
            request.user, organization, address=client_address(request)
        )
        return view(request, *args, **kwargs)

    return wrapper


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
