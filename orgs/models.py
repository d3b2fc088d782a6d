"""Users, organizations, groups, memberships and the append-only audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import Q
from django.utils import timezone

from access import visibility
from orgs import names

if TYPE_CHECKING:
    from access.principal import Principal


class UserKind(models.TextChoices):
    HUMAN = "human", "Human"
    TECHNICAL = "technical", "Technical"


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class KeywardUserManager(UserManager["User"]):
    """Django's user manager (named in migrations, so it stays even with nothing to add)."""


class User(AbstractUser):
    """A person who signs in, or a technical user that stands behind one org or group token."""

    kind = models.CharField(max_length=10, choices=UserKind.choices, default=UserKind.HUMAN)
    display_name = models.CharField(max_length=150, blank=True)

    objects: ClassVar[KeywardUserManager] = KeywardUserManager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=UserKind.HUMAN) | Q(is_staff=False, is_superuser=False),
                name="technical_user_never_staff",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def is_technical(self) -> bool:
        return self.kind == UserKind.TECHNICAL


class NameKeyField(models.CharField):
    """The look-alike key of the row's ``name`` (``orgs.names.name_key``), computed whenever the
    row is written, by ``save`` and ``bulk_create`` alike."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 400)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = names.name_key(model_instance.name)  # type: ignore[attr-defined]
        setattr(model_instance, self.attname, value)
        return value


class KeyedName(models.Model):
    """A model whose ``name`` is unique in its scope by ``name_key``: case and look-alike
    characters do not make a second name (``orgs.names``); the unique constraints that use it
    live in each model's Meta."""

    name_key = NameKeyField()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "name_key"}
        super().save(*args, **kwargs)


class OrganizationQuerySet(models.QuerySet["Organization"]):
    def for_user(self, user: User) -> OrganizationQuerySet:
        """Organizations the user is a member of."""
        return self.filter(memberships__user=user).distinct()


class Organization(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GroupQuerySet(models.QuerySet["Group"]):
    def visible_to(self, principal: Principal) -> GroupQuerySet:
        """The groups the principal may see (``access.visibility.groups``)."""
        return self.filter(visibility.groups(principal))


class Group(KeyedName):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="groups")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    objects = GroupQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="group_slug_unique"),
            models.UniqueConstraint(
                fields=["organization", "name_key"], name="group_name_unique_in_org"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class OrganizationMembershipQuerySet(models.QuerySet["OrganizationMembership"]):
    def visible_to(self, principal: Principal) -> OrganizationMembershipQuerySet:
        """The memberships the principal may see (``access.visibility.organization_members``)."""
        # Below organization-wide reach the filter goes through group memberships, where a
        # person in two such groups would come twice.
        return self.filter(visibility.organization_members(principal)).distinct()


class OrganizationMembership(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="organization_memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    objects = OrganizationMembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class GroupMembershipQuerySet(models.QuerySet["GroupMembership"]):
    def visible_to(self, principal: Principal) -> GroupMembershipQuerySet:
        """The group memberships the principal may see (``access.visibility.group_members``)."""
        return self.filter(visibility.group_members(principal))


class GroupMembership(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="group_memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    objects = GroupMembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "user"], name="one_membership_per_group"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.group} ({self.role})"


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events cannot be deleted.")

    def visible_to(self, principal: Principal) -> AuditEventQuerySet:
        """The events the principal may see (``access.visibility.audit_events``)."""
        return self.filter(visibility.audit_events(principal))

    def seen_beside_token_by(self, principal: Principal) -> AuditEventQuerySet:
        """The events a token's page shows this principal (``access.visibility.token_activity``)."""
        return self.filter(visibility.token_activity(principal))

    def for_token(self, token_id: int) -> AuditEventQuerySet:
        """Events about a token or done through it."""
        return self.filter(
            Q(object_type="api_token", object_id=str(token_id)) | Q(via_token_id=token_id)
        )


class AuditEvent(models.Model):
    """Who did what to which object, from where, with what changed. Never updated or deleted.

    Names are copied, not only referenced, so events outlive the tokens and users they name.
    """

    # No index on occurred_at alone: a prepared statement's generic plan would walk it through
    # every organization's events; each index below starts with the organization instead.
    occurred_at = models.DateTimeField(default=timezone.now)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organization_name = models.CharField(max_length=100, blank=True)
    group_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    actor_kind = models.CharField(max_length=10)  # human, technical, operator, system
    via_token_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    via_token_name = models.CharField(max_length=100, blank=True)
    via_token_partial = models.CharField(max_length=16, blank=True)
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=40, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        # Every filter of the audit page and API walks one of the indexes that start with the
        # organization and end with (occurred_at, id), the keyset the pages follow, so a page
        # reads about one page of rows however long the log is (orgs/audit_log.py).
        # tests/orgs/test_audit_plans.py checks the plans on PostgreSQL.
        indexes = [
            models.Index(fields=["organization", "occurred_at", "id"], name="audit_org_time_id"),
            models.Index(
                fields=["organization", "action", "occurred_at", "id"], name="audit_org_action"
            ),
            models.Index(
                fields=["organization", "actor", "occurred_at", "id"], name="audit_org_actor"
            ),
            models.Index(
                fields=["organization", "actor_kind", "occurred_at", "id"], name="audit_org_kind"
            ),
            models.Index(
                fields=["organization", "via_token_id", "occurred_at", "id"],
                name="audit_org_token",
            ),
            models.Index(
                fields=["organization", "object_type", "object_id", "occurred_at", "id"],
                name="audit_org_object",
            ),
            models.Index(
                fields=["organization", "group_id", "occurred_at", "id"], name="audit_org_group"
            ),
            # The token detail page reads a token's events without the organization.
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events cannot be deleted.")


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    BUILDING = "building", "Being prepared"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class AuditExportQuerySet(models.QuerySet["AuditExport"]):
    def visible_to(self, principal: Principal) -> AuditExportQuerySet:
        """The principal's own exports (``access.visibility.audit_exports``)."""
        return self.filter(visibility.audit_exports(principal))


class AuditExport(models.Model):
    """An export of the audit log too large to stream within a request: built by the worker
    into a file, offered to the person who asked until it expires."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="audit_exports"
    )
    requested_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    # The audit page's filters as they were asked for (no page position).
    query = models.CharField(max_length=2000, blank=True)
    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    # A worker that took the export; another takes it over once this has passed (the first
    # one died while building).
    claimed_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)

    objects = AuditExportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="audit_export_due")]

    def __str__(self) -> str:
        return f"audit export {self.pk} of {self.organization_id} ({self.status})"
