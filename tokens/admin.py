"""Admin for operators: find tokens by name, organization or technical user; revoke, restore
or delete them in bulk through the services, each with its audit event naming the operator.

No token is created here (secrets are issued by the console, the API or ``issue_token``), no
field is edited here, and no digest is shown or can be searched or filtered on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from access.errors import DomainError
from orgs.admin_site import operator
from tokens import usage
from tokens.models import ApiToken, ApiTokenQuerySet, ExpiryReminder, TokenSecret, TokenUsage
from tokens.services import delete_token, restore_token, revoke_token


def _refuses_digest(lookup: str) -> bool:
    return "digest" in lookup or "pepper" in lookup


class DisplayStatusFilter(admin.SimpleListFilter):
    """Active, expired (derived from the expiry) or revoked, as the console shows them."""

    title = "status"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> QuerySet[ApiToken]:
        assert isinstance(queryset, ApiTokenQuerySet)  # the model's own manager's
        return queryset.with_status(self.value())


class TokenSecretInline(admin.TabularInline):
    model = TokenSecret
    fields = (
        "partial_token",
        "created_at",
        "ends_at",
        "last_used_at",
        "last_used_address",
        "leaked_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "secret"
    verbose_name_plural = "Secrets (their digests are never shown)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _bulk(
    model_admin: ApiTokenAdmin,
    request: HttpRequest,
    queryset: QuerySet[ApiToken],
    change: Callable[..., Any],
    done: str,
) -> int:
    """Apply one service to every selected token, each in its own transaction; report."""
    actor = operator(request)
    succeeded, failures = 0, []
    for token in queryset.select_related(None).only(
        "pk", "name", "partial_token", "scope", "group_id", "organization_id"
    ):
        try:
            change(actor=actor, token=token)
        except ValidationError as error:
            failures.append(f"{token}: {' '.join(error.messages)}")
        except DomainError as error:
            failures.append(f"{token}: {error.message}")
        else:
            succeeded += 1
    if succeeded:
        model_admin.message_user(request, f"{done} {succeeded} token(s).", messages.SUCCESS)
    if failures:
        model_admin.message_user(
            request, f"{len(failures)} not changed: {'; '.join(failures[:20])}", messages.WARNING
        )
    return succeeded


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "partial_token",
        "scope",
        "organization",
        "group",
        "owner",
        "state",
        "expires_at",
        "last_used_at",
        "created_at",
    )
    list_filter = (DisplayStatusFilter, "scope", "role", "organization")
    search_fields = (
        "name",
        "partial_token",
        "organization__name",
        "organization__slug",
        "group__name",
        "user__username",
        "user__display_name",
    )
    search_help_text = "Name, partial token (kwo_…x7Qa), organization, group or technical user."
    list_select_related = ("organization", "group", "user")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    list_per_page = 100
    inlines = [TokenSecretInline]
    actions = ["revoke_selected", "restore_selected", "delete_selected_tokens"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "description",
                    "partial_token",
                    "scope",
                    "organization",
                    "group",
                    "user",
                )
            },
        ),
        ("Access", {"fields": ("role", "permissions", "ip_filter", "allowed_addresses")}),
        (
            "Lifetime",
            {
                "fields": (
                    "state",
                    "expires_at",
                    "revoked_at",
                    "revoked_by_name",
                    "revoked_reason",
                    "leaked_at",
                    "leaked_where",
                )
            },
        ),
        ("Use", {"fields": ("last_used_at", "last_used_address", "requests_last_30_days")}),
        (
            "History",
            {
                "fields": (
                    "version",
                    "created_at",
                    "created_by_name",
                    "modified_at",
                    "modified_by_name",
                )
            },
        ),
    )
    # Every field shown is read-only: a token changes only through the actions (the services).
    readonly_fields = tuple(
        str(name) for _title, options in fieldsets for name in options["fields"]
    )

    # What may be done here -------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        if obj is not None:
            return False  # a token's page is for reading; changes go through the actions
        return super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False  # Django's delete would skip the service and its audit event

    def has_service_delete_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tokens.delete_apitoken")

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if _refuses_digest(lookup):
            return False
        return super().lookup_allowed(lookup, value, request)

    # Columns ---------------------------------------------------------------------------------

    @admin.display(description="status", ordering="status")
    def state(self, token: ApiToken) -> str:
        return token.display_status()

    @admin.display(description="technical user / owner", ordering="user__username")
    def owner(self, token: ApiToken) -> str:
        """The technical user of an org or group token (by username), or a personal token's
        owner."""
        kind = "technical" if token.user.is_technical else "person"
        return f"{token.user.username} ({kind})"

    @admin.display(description="requests in the last 30 days")
    def requests_last_30_days(self, token: ApiToken) -> int:
        return usage.total_requests(token, 30)

    # Actions ---------------------------------------------------------------------------------

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_selected(
        self, request: HttpRequest, queryset: QuerySet[ApiToken]
    ) -> HttpResponse | None:
        """Ask first, with the reason every revocation records (the service checks it)."""
        reason = request.POST.get("reason", "").strip()
        error = ""
        if request.POST.get("confirmed") == "yes":
            if not reason:
                error = "Say why these tokens are revoked: the reason is recorded with each."
            else:
                _bulk(
                    self,
                    request,
                    queryset,
                    lambda **kwargs: revoke_token(**kwargs, reason=reason),
                    "Revoked",
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Revoke these tokens?",
            "opts": self.model._meta,
            "tokens": queryset.select_related("organization", "group"),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "action": "revoke_selected",
            "reason": reason,
            "error": error,
        }
        return TemplateResponse(
            request, "admin/tokens/apitoken/revoke_selected_confirmation.html", context
        )

    @admin.action(description="Restore selected tokens", permissions=["change"])
    def restore_selected(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        _bulk(self, request, queryset, restore_token, "Restored")

    @admin.action(description="Delete selected tokens", permissions=["service_delete"])
    def delete_selected_tokens(
        self, request: HttpRequest, queryset: QuerySet[ApiToken]
    ) -> HttpResponse | None:
        if request.POST.get("confirmed") == "yes":
            _bulk(self, request, queryset, delete_token, "Deleted")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete these tokens?",
            "opts": self.model._meta,
            "tokens": queryset.select_related("organization", "group"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "delete_selected_tokens",
        }
        return TemplateResponse(
            request, "admin/tokens/apitoken/delete_selected_confirmation.html", context
        )


@admin.register(TokenSecret)
class TokenSecretAdmin(admin.ModelAdmin):
    """Which secrets a token has and when each was last used; never their digests."""

    list_display = (
        "partial_token",
        "token",
        "organization",
        "created_at",
        "ends_at",
        "last_used_at",
        "last_used_address",
    )
    list_select_related = ("token__organization",)
    search_fields = ("partial_token", "token__name", "token__organization__slug")
    list_filter = ("token__scope",)
    date_hierarchy = "created_at"
    exclude = ("digest", "pepper_id")
    readonly_fields = (
        "token",
        "partial_token",
        "created_at",
        "ends_at",
        "last_used_at",
        "last_used_address",
        "leaked_at",
    )
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if _refuses_digest(lookup):
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(ordering="token__organization__name")
    def organization(self, secret: TokenSecret) -> str:
        return secret.token.organization.name


@admin.register(TokenUsage)
class TokenUsageAdmin(admin.ModelAdmin):
    """Requests per token and UTC day (kept 90 days)."""

    list_display = ("day", "token", "organization", "count")
    list_select_related = ("token__organization",)
    search_fields = ("token__name", "token__partial_token", "token__organization__slug")
    list_filter = ("token__scope",)
    date_hierarchy = "day"
    readonly_fields = ("token", "day", "count")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(ordering="token__organization__name")
    def organization(self, row: TokenUsage) -> str:
        return row.token.organization.name


@admin.register(ExpiryReminder)
class ExpiryReminderAdmin(admin.ModelAdmin):
    """Which expiry reminders were sent (``notify_expiring_tokens``)."""

    list_display = ("token", "threshold_days", "expires_at", "sent_at")
    list_select_related = ("token",)
    list_filter = ("threshold_days",)
    search_fields = ("token__name", "token__partial_token")
    date_hierarchy = "sent_at"
    readonly_fields = ("token", "threshold_days", "expires_at", "sent_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
