"""Admin for operators: find anything, change people's accounts; everything else goes through
services (console, API, commands), so organizations, groups and memberships are read-only here
and the audit log cannot be changed by anyone.

Only superusers hand out rights: a staff user who may change users cannot touch ``is_staff``,
``is_superuser``, permissions, Django groups or e-mail addresses (invitations are matched by
e-mail), cannot change a superuser's account, and cannot set another person's password; their
own password goes through Django's own page, which asks for the old one. Every change here is
audited (``orgs.admin_site``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group as PermissionGroup
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

from orgs.models import (
    AuditEvent,
    AuditExport,
    Group,
    GroupMembership,
    Organization,
    OrganizationMembership,
    User,
)

# What only a superuser changes on a person's account.
SUPERUSER_ONLY_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions", "email")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable and searchable; added, changed and deleted only through services."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """People and technical users. A technical user stands behind one token: it never gets a
    password, staff rights, permissions or a changed kind here."""

    list_display = (
        "username",
        "display_name",
        "email",
        "kind",
        "is_active",
        "is_staff",
        "date_joined",
    )
    list_filter = ("kind", "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "display_name", "first_name", "last_name", "email")
    date_hierarchy = "date_joined"
    ordering = ("username",)
    fieldsets = (
        (None, {"fields": ("username", "password", "kind")}),
        ("Personal info", {"fields": ("display_name", "first_name", "last_name", "email")}),
        (
            "Permissions",
            {
                "fields": (
                    "is_active",
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                )
            },
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    technical_fieldsets = (
        (None, {"fields": ("username", "kind", "display_name")}),
        ("Status", {"fields": ("is_active", "last_login", "date_joined")}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: User | None = None) -> Any:
        if obj is not None and obj.is_technical:
            return self.technical_fieldsets
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> Any:
        readonly = ["last_login", "date_joined"]
        if not request.user.is_superuser:
            readonly += list(SUPERUSER_ONLY_FIELDS)
        if obj is not None:
            readonly.append("kind")  # a person never becomes a token, nor a token a person
        if obj is not None and obj.is_technical:
            # Deactivated with its token, renamed with its token: services do both.
            readonly += ["username", "display_name", "is_active"]
        return readonly

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False  # a superuser's account is changed by superusers only
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        # Deleting a user deletes its tokens without an audit event: delete the tokens first
        # (through the token actions), and purge technical users with purge_technical_users.
        if obj is not None and (obj.is_technical or obj.api_tokens.exists()):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        # The form has no such fields for them; refuse anyway if one ever slips in.
        if not request.user.is_superuser and set(form.changed_data) & set(SUPERUSER_ONLY_FIELDS):
            raise PermissionDenied("Only superusers change rights and e-mail addresses.")
        super().save_model(request, obj, form, change)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # bypasses the per-user check above
        return actions

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        user = self.get_object(request, id)
        if user is not None and not request.user.is_superuser:
            if user.pk == request.user.pk:
                # Their own password: Django's page, which asks for the old one.
                return HttpResponseRedirect(reverse("admin:password_change"))
            raise PermissionDenied("Only superusers set another person's password.")
        if user is not None and user.is_technical:
            self.message_user(
                request,
                "Technical users never have a password: they act only through their token.",
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:orgs_user_change", args=[user.pk]))
        # Django's view saves and logs without a transaction; the audit event joins the save.
        with transaction.atomic(using=router.db_for_write(User)):
            return super().user_change_password(request, id, form_url)


admin.site.unregister(PermissionGroup)


@admin.register(PermissionGroup)
class PermissionGroupAdmin(DjangoGroupAdmin):
    """Django's permission groups: a staff user in a group could otherwise grant that group
    every permission, so only superusers change them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


class OrganizationMembershipInline(ReadOnlyInline):
    model = OrganizationMembership
    fields = ("user", "role", "created_at")
    readonly_fields = fields


class GroupInline(ReadOnlyInline):
    model = Group
    fields = ("name", "slug", "created_at")
    readonly_fields = fields


class _Counts(TypedDict):
    """What the organization changelist's queryset annotates."""

    member_count: int
    token_count: int


@admin.register(Organization)
class OrganizationAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug", "member_count", "token_count", "created_at")
    search_fields = ("name", "slug")
    date_hierarchy = "created_at"
    inlines = [GroupInline, OrganizationMembershipInline]

    def get_queryset(self, request: HttpRequest) -> Any:
        # Subqueries, not joins: two joined counts would multiply members by tokens.
        def count_of(model: Any) -> Subquery:
            rows = (
                model.objects.filter(organization=OuterRef("pk")).order_by().values("organization")
            )
            return Subquery(rows.annotate(total=Count("pk")).values("total"))

        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Coalesce(count_of(OrganizationMembership), 0),
                # Tokens refer to organizations from above (tokens/): reached through the
                # relation, not imported.
                token_count=Coalesce(
                    count_of(Organization._meta.get_field("api_tokens").related_model), 0
                ),
            )
        )

    @admin.display(description="members", ordering="member_count")
    def member_count(self, organization: WithAnnotations[Organization, _Counts]) -> int:
        return organization.member_count

    @admin.display(description="tokens", ordering="token_count")
    def token_count(self, organization: WithAnnotations[Organization, _Counts]) -> int:
        return organization.token_count


class GroupMembershipInline(ReadOnlyInline):
    model = GroupMembership
    fields = ("user", "role", "created_at")
    readonly_fields = fields


@admin.register(Group)
class GroupAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug", "organization", "created_at")
    list_filter = ("organization",)
    search_fields = ("name", "slug", "organization__name", "organization__slug")
    list_select_related = ("organization",)
    date_hierarchy = "created_at"
    inlines = [GroupMembershipInline]


@admin.register(OrganizationMembership)
class OrganizationMembershipAdmin(ReadOnlyAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role", "organization")
    search_fields = ("user__username", "user__email", "organization__name", "organization__slug")
    list_select_related = ("user", "organization")
    date_hierarchy = "created_at"


@admin.register(GroupMembership)
class GroupMembershipAdmin(ReadOnlyAdmin):
    list_display = ("user", "group", "organization", "role", "created_at")
    list_filter = ("role", "group__organization")
    search_fields = ("user__username", "user__email", "group__name", "group__organization__name")
    list_select_related = ("user", "group__organization")
    date_hierarchy = "created_at"

    @admin.display(ordering="group__organization__name")
    def organization(self, membership: GroupMembership) -> Organization:
        return membership.group.organization


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit log: append-only, so nobody adds, changes or deletes an event here."""

    list_display = (
        "occurred_at",
        "organization_name",
        "actor_name",
        "actor_kind",
        "via_token",
        "action",
        "object_type",
        "object_repr",
        "address",
    )
    list_filter = ("actor_kind", "action", "object_type")
    search_fields = (
        "actor_name",
        "via_token_name",
        "via_token_partial",
        "action",
        "object_repr",
        "object_id",
        "organization_name",
    )
    date_hierarchy = "occurred_at"
    # Names are copied into each event, so the list needs no join at all.
    list_select_related = ()
    show_full_result_count = False
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    def get_actions(self, request: HttpRequest) -> dict:
        return {}

    @admin.display(description="via token")
    def via_token(self, event: AuditEvent) -> str:
        if not event.via_token_id:
            return ""
        return f"{event.via_token_name} ({event.via_token_partial})"


@admin.register(AuditExport)
class AuditExportAdmin(ReadOnlyAdmin):
    """Exports the worker builds: who asked, how far it got, when its file goes. Operators see
    a stuck or failed export here; the file itself is offered only to the person who asked."""

    list_display = (
        "created_at",
        "organization",
        "requested_by",
        "status",
        "row_count",
        "expires_at",
    )
    list_filter = ("status",)
    search_fields = ("organization__name", "requested_by__username", "error")
    list_select_related = ("organization", "requested_by")
    readonly_fields = [field.name for field in AuditExport._meta.fields]
