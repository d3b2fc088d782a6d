"""Console pages for webhooks: endpoints, the secret shown once, deliveries and their attempts.

Views read a form, call a service from ``webhooks.services`` and render a page (or, for an HTMX
request, the named partial of that page). Endpoints are looked up through
``WebhookEndpoint.objects.visible_to``, so another organization's endpoint is a 404.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access import rules
from access.errors import NotFound, VersionConflict
from orgs.console import OrganizationRequest, organization_view
from tokens.console import withhold_pasted_tokens
from webhooks import services
from webhooks.forms import DeliveryFilterForm, EndpointForm, RotateForm, VersionForm, event_groups
from webhooks.models import OPEN_STATUSES, DeliveryStatus, WebhookDelivery, WebhookEndpoint

DELIVERIES_PER_PAGE = 25


def _require(request: OrganizationRequest, action: str) -> None:
    if not rules.may_manage_webhooks(request.principal, action):
        raise PermissionDenied(f"This page needs the permission api.webhooks.{action}.")


def _visible_endpoint(request: OrganizationRequest, endpoint_id: int) -> WebhookEndpoint:
    return get_object_or_404(
        WebhookEndpoint.objects.visible_to(request.principal).select_related(
            "organization", "created_by", "modified_by"
        ),
        pk=endpoint_id,
    )


def _detail_redirect(request: OrganizationRequest, endpoint: WebhookEndpoint) -> HttpResponse:
    return redirect("webhooks:detail", request.organization.slug, endpoint.pk)


def _rights(request: OrganizationRequest) -> dict[str, bool]:
    principal = request.principal
    return {
        "can_write": rules.may_manage_webhooks(principal, "write"),
        "can_delete": rules.may_manage_webhooks(principal, "delete"),
    }


@sensitive_variables()  # every frame below, template rendering included, masked in reports
def _reveal(
    request: OrganizationRequest, issued: services.IssuedEndpoint, *, rotated: bool
) -> HttpResponse:
    """The one response that carries a signing secret: never cached, never stored."""
    response = render(
        request,
        "webhooks/secret.html",
        {"section": "webhooks", "issued": issued, "rotated": rotated},
    )
    add_never_cache_headers(response)
    return response


# Endpoints ------------------------------------------------------------------------------------


@require_GET
@organization_view
def endpoint_list(request: OrganizationRequest) -> HttpResponse:
    _require(request, "read")
    endpoints = (
        WebhookEndpoint.objects.visible_to(request.principal)
        .annotate(
            open_count=Count("deliveries", filter=Q(deliveries__status__in=OPEN_STATUSES)),
            failed_count=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
        )
        .order_by("created_at", "pk")
    )
    return render(
        request,
        "webhooks/endpoint_list.html",
        {"section": "webhooks", "endpoints": endpoints, **_rights(request)},
    )


def _form_page(
    request: OrganizationRequest, form: EndpointForm, endpoint: WebhookEndpoint | None
) -> HttpResponse:
    withhold_pasted_tokens(request.principal, form, ("url", "description"))
    return render(
        request,
        "webhooks/endpoint_form.html",
        {
            "section": "webhooks",
            "form": form,
            "endpoint": endpoint,
            "event_groups": event_groups(),
            "chosen": form.chosen(),
        },
    )


@require_http_methods(["GET", "POST"])
@organization_view
@sensitive_variables("issued")
def endpoint_create(request: OrganizationRequest) -> HttpResponse:
    _require(request, "write")
    form = EndpointForm(
        request.POST if request.method == "POST" else None,
        initial={"active": True, "events": ["*"]},
    )
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.create_endpoint(
                actor=request.principal,
                organization=request.organization,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
                active=form.cleaned_data["active"],
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            return _reveal(request, issued, rotated=False)
    return _form_page(request, form, None)


@require_GET
@organization_view
def endpoint_detail(request: OrganizationRequest, endpoint_id: int) -> HttpResponse:
    _require(request, "read")
    endpoint = _visible_endpoint(request, endpoint_id)
    filters = DeliveryFilterForm(request.GET or None)
    status = ""
    page_number = 1
    if filters.is_valid():
        status = filters.cleaned_data["status"] or ""
        page_number = filters.cleaned_data["page"] or 1
    deliveries = endpoint.deliveries.defer("body").order_by("-created_at", "-pk")
    if status:
        deliveries = deliveries.filter(status=status)
    page = Paginator(deliveries, DELIVERIES_PER_PAGE).get_page(page_number)
    context: dict[str, Any] = {
        "section": "webhooks",
        "endpoint": endpoint,
        "page": page,
        "status": status,
        "filters": filters,
        "has_open": endpoint.deliveries.filter(status__in=OPEN_STATUSES).exists(),
        "now": timezone.now(),
        **_rights(request),
    }
    htmx = getattr(request, "htmx", None)
    template = "webhooks/endpoint_detail.html"
    if htmx and not htmx.history_restore_request:
        template += "#deliveries"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_http_methods(["GET", "POST"])
@organization_view
def endpoint_edit(request: OrganizationRequest, endpoint_id: int) -> HttpResponse:
    _require(request, "write")
    endpoint = _visible_endpoint(request, endpoint_id)
    form = EndpointForm(
        request.POST if request.method == "POST" else None,
        initial={
            "url": endpoint.url,
            "description": endpoint.description,
            "events": endpoint.events,
            "active": endpoint.active,
            "expected_version": endpoint.version,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.update_endpoint(
                actor=request.principal,
                endpoint=endpoint,
                expected_version=form.cleaned_data["expected_version"],
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
                active=form.cleaned_data["active"],
            )
        except ValidationError as error:
            form.add_service_errors(error)
        except VersionConflict as error:
            form.add_error(None, error.message)
        except NotFound:
            return redirect("webhooks:list", request.organization.slug)
        else:
            messages.success(request, "Webhook endpoint saved.")
            return _detail_redirect(request, endpoint)
    return _form_page(request, form, endpoint)


@require_http_methods(["GET", "POST"])
@organization_view
def endpoint_delete(request: OrganizationRequest, endpoint_id: int) -> HttpResponse:
    _require(request, "delete")
    endpoint = _visible_endpoint(request, endpoint_id)
    form = VersionForm(request.POST or None, initial={"expected_version": endpoint.version})
    if request.method == "POST" and form.is_valid():
        try:
            services.delete_endpoint(
                actor=request.principal,
                endpoint=endpoint,
                expected_version=form.cleaned_data["expected_version"],
            )
        except VersionConflict as error:
            form.add_error(None, error.message)
        except NotFound:
            pass  # deleted meanwhile: the list no longer shows it either way
        else:
            messages.success(request, "Webhook endpoint deleted.")
            return redirect("webhooks:list", request.organization.slug)
        if not form.errors:
            return redirect("webhooks:list", request.organization.slug)
    return render(
        request,
        "webhooks/endpoint_delete.html",
        {
            "section": "webhooks",
            "endpoint": endpoint,
            "form": form,
            "delivery_count": endpoint.deliveries.count(),
        },
    )


@require_http_methods(["GET", "POST"])
@organization_view
@sensitive_variables("issued")
def endpoint_rotate(request: OrganizationRequest, endpoint_id: int) -> HttpResponse:
    _require(request, "write")
    endpoint = _visible_endpoint(request, endpoint_id)
    form = RotateForm(request.POST or None, initial={"expected_version": endpoint.version})
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.rotate_secret(
                actor=request.principal,
                endpoint=endpoint,
                expected_version=form.cleaned_data["expected_version"],
                overlap=form.overlap_duration(),
            )
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        except VersionConflict as error:
            form.add_error(None, error.message)
        except NotFound:
            return redirect("webhooks:list", request.organization.slug)
        else:
            return _reveal(request, issued, rotated=True)
    return render(
        request,
        "webhooks/endpoint_rotate.html",
        {"section": "webhooks", "endpoint": endpoint, "form": form},
    )


@require_POST
@organization_view
def endpoint_test(request: OrganizationRequest, endpoint_id: int) -> HttpResponse:
    """Queue a test event; the worker sends it and the deliveries list shows how it went."""
    _require(request, "write")
    endpoint = _visible_endpoint(request, endpoint_id)
    try:
        services.send_test_event(actor=request.principal, endpoint=endpoint)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, "Test event queued: it appears below as soon as the worker sends it."
        )
    return _detail_redirect(request, endpoint)


# Deliveries -----------------------------------------------------------------------------------


def _visible_delivery(
    request: OrganizationRequest, endpoint: WebhookEndpoint, delivery_id: int
) -> WebhookDelivery:
    delivery = get_object_or_404(endpoint.deliveries.all(), pk=delivery_id)
    delivery.endpoint = endpoint
    return delivery


@require_GET
@organization_view
def delivery_detail(
    request: OrganizationRequest, endpoint_id: int, delivery_id: int
) -> HttpResponse:
    _require(request, "read")
    endpoint = _visible_endpoint(request, endpoint_id)
    delivery = _visible_delivery(request, endpoint, delivery_id)
    try:
        pretty = json.dumps(json.loads(delivery.body), indent=2, ensure_ascii=False)
    except ValueError:
        pretty = delivery.body
    return render(
        request,
        "webhooks/delivery_detail.html",
        {
            "section": "webhooks",
            "endpoint": endpoint,
            "delivery": delivery,
            "payload": pretty,
            "attempts": delivery.attempt_log.all(),
            "redeliveries": delivery.redeliveries.order_by("-created_at"),
            **_rights(request),
        },
    )


@require_POST
@organization_view
def delivery_redeliver(
    request: OrganizationRequest, endpoint_id: int, delivery_id: int
) -> HttpResponse:
    _require(request, "write")
    endpoint = _visible_endpoint(request, endpoint_id)
    delivery = _visible_delivery(request, endpoint, delivery_id)
    try:
        services.redeliver(actor=request.principal, delivery=delivery)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except NotFound:
        messages.error(request, "This delivery no longer exists.")
    else:
        messages.success(request, "Queued again: it is sent with the same webhook-id.")
    return _detail_redirect(request, endpoint)
