"""Admin for operators: endpoints and their deliveries are read here; an endpoint can be turned
off through the service (audited, naming the operator). Secrets are never shown, not even
encrypted, and endpoints are created and edited in the console or the API."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from access.errors import DomainError
from orgs.admin_site import operator
from policies.admin import ReadOnlyAdmin as PolicyReadOnlyAdmin
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class ReadOnlyAdmin(PolicyReadOnlyAdmin):
    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        if "secret" in lookup:
            return False
        return super().lookup_allowed(lookup, value, request)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "organization", "url", "active", "failing_since", "version")
    list_filter = ("active", "organization")
    search_fields = ("url", "description", "organization__name", "organization__slug")
    list_select_related = ("organization",)
    exclude = ("secret_ciphertext", "previous_secret_ciphertext")
    actions = ["turn_off_selected"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None:
            return False  # an endpoint's page is for reading; changes go through the action
        return request.user.has_perm("webhooks.change_webhookendpoint")

    @admin.action(description="Turn off selected endpoints", permissions=["change"])
    def turn_off_selected(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        actor = operator(request)
        done, failures = 0, []
        for endpoint in queryset:
            try:
                services.update_endpoint(actor=actor, endpoint=endpoint, active=False)
            except ValidationError as error:
                failures.append(f"{endpoint}: {' '.join(error.messages)}")
            except DomainError as error:
                failures.append(f"{endpoint}: {error.message}")
            else:
                done += 1
        self.message_user(request, f"Turned off {done} endpoints.", messages.SUCCESS)
        if failures:
            self.message_user(request, "Not changed: " + "; ".join(failures), messages.ERROR)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "attempted_at", "succeeded", "status_code", "error", "duration_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event_type")
    search_fields = ("message_id", "endpoint__url", "endpoint__organization__slug")
    list_select_related = ("endpoint",)
    date_hierarchy = "created_at"
    inlines = [WebhookAttemptInline]
