"""Admin for operators: policies and IP filters are read here and changed in the console or
the API, whose services check rights, validate rules and write the audit event."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from policies.models import IpFilter, PolicyApplication, ScopePolicy, SecurityPolicy


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IpFilter)
class IpFilterAdmin(ReadOnlyAdmin):
    list_display = ("name", "organization", "description", "version", "modified_at")
    list_filter = ("organization",)
    search_fields = (
        "name",
        "description",
        "rules_text",
        "organization__name",
        "organization__slug",
    )
    list_select_related = ("organization",)
    date_hierarchy = "modified_at"


@admin.register(SecurityPolicy)
class SecurityPolicyAdmin(ReadOnlyAdmin):
    list_display = (
        "organization",
        "organization_tokens",
        "group_tokens",
        "personal_tokens",
        "version",
        "modified_at",
        "modified_by",
    )
    search_fields = ("organization__name", "organization__slug")
    list_select_related = (
        "organization",
        "organization_tokens",
        "group_tokens",
        "personal_tokens",
        "modified_by",
    )
    date_hierarchy = "modified_at"


@admin.register(ScopePolicy)
class ScopePolicyAdmin(ReadOnlyAdmin):
    list_display = (
        "scope",
        "allowed",
        "max_lifetime",
        "expiry_required",
        "enforced_ip_filter",
        "custom_ip_allowed",
        "permission_edits_allowed",
        "regeneration_allowed",
        "max_grace",
    )
    list_filter = ("scope", "allowed", "expiry_required", "custom_ip_allowed")
    list_select_related = ("enforced_ip_filter",)
    search_fields = ("enforced_ip_filter__name", "enforced_ip_filter__organization__slug")


@admin.register(PolicyApplication)
class PolicyApplicationAdmin(ReadOnlyAdmin):
    """Policy changes being brought to their tokens: an unfinished one that stays unfinished
    means no worker runs (``manage.py finish_policy_changes`` finishes it)."""

    list_display = (
        "policy",
        "version",
        "started_at",
        "finished_at",
        "superseded",
        "tokens_changed",
        "actor_name",
    )
    list_filter = ("superseded",)
    list_select_related = ("policy__organization",)
    search_fields = ("policy__organization__name", "policy__organization__slug", "actor_name")
    date_hierarchy = "started_at"
