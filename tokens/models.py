"""API tokens, the digests of their secrets, and their daily use."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from access import catalog, visibility
from orgs.models import Group, KeyedName, Organization, User
from policies.models import IpFilter

if TYPE_CHECKING:
    from access.principal import Principal

# Expired tokens stay in lists, marked expired, this long after they expire.
LISTED_AFTER_EXPIRY = timedelta(minutes=5)
# What lists sort by: the key in the URL and the column behind it.
SORT_FIELDS = {
    "name": "name",
    "created": "created_at",
    "expires": "expires_at",
    "last_used": "last_used_at",
}


class TokenScope(models.TextChoices):
    ORGANIZATION = "organization", "Organization"
    GROUP = "group", "Group"
    PERSONAL = "personal", "Personal"


class TokenRole(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    CUSTOM = "custom", "Custom"


class TokenStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REVOKED = "revoked", "Revoked"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def visible_to(self, principal: Principal) -> ApiTokenQuerySet:
        """Tokens the principal may see (``access.visibility.tokens``); others are a 404."""
        return self.filter(visibility.tokens(principal))

    def active(self, now: datetime | None = None) -> ApiTokenQuerySet:
        now = now or timezone.now()
        return self.filter(status=TokenStatus.ACTIVE).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )

    def with_status(self, status: str | None, now: datetime | None = None) -> ApiTokenQuerySet:
        """Tokens in one displayed status: ``active`` (usable now), ``expired`` (active but past
        their expiry), ``revoked``; any other value leaves the queryset as it is. The one
        definition the console's filter, the API's ``status`` and the admin share."""
        now = now or timezone.now()
        if status == "active":
            return self.active(now)
        if status == "expired":
            return self.filter(status=TokenStatus.ACTIVE, expires_at__lte=now)
        if status == "revoked":
            return self.filter(status=TokenStatus.REVOKED)
        return self

    def listed(self, now: datetime | None = None) -> ApiTokenQuerySet:
        """Active and revoked tokens, and those expired in the last five minutes."""
        now = now or timezone.now()
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now - LISTED_AFTER_EXPIRY))

    def current(self, now: datetime | None = None) -> ApiTokenQuerySet:
        """What the console's main list shows: active tokens and those expired in the last
        five minutes (revoked ones are under Inactive)."""
        now = now or timezone.now()
        return self.listed(now).filter(status=TokenStatus.ACTIVE)

    def inactive(self, now: datetime | None = None) -> ApiTokenQuerySet:
        """Revoked (leaked ones included) and expired tokens, until cleanup removes them."""
        now = now or timezone.now()
        return self.filter(Q(status=TokenStatus.REVOKED) | Q(expires_at__lte=now))

    def expiring_within(self, span: timedelta, now: datetime | None = None) -> ApiTokenQuerySet:
        """Active tokens whose expiry falls in the next ``span``."""
        now = now or timezone.now()
        # A plain range on the expiry (no "or no expiry"), so an index on it answers.
        return self.filter(
            status=TokenStatus.ACTIVE, expires_at__gt=now, expires_at__lte=now + span
        )

    def matching(self, text: str) -> ApiTokenQuerySet:
        """Tokens whose name or description contains ``text``, in any case."""
        text = text.strip()
        return self.filter(Q(name__icontains=text) | Q(description__icontains=text))

    def sorted_by(self, key: str) -> ApiTokenQuerySet:
        """Order by one of SORT_KEYS (``-`` first for descending); never-used tokens and
        tokens without expiry come last either way, and the id breaks ties."""
        field = key.removeprefix("-")
        descending = key.startswith("-")
        if field == "name":
            expression = Lower("name")
            order = expression.desc() if descending else expression.asc()
        else:
            column = F(SORT_FIELDS[field])
            order = column.desc(nulls_last=True) if descending else column.asc(nulls_last=True)
        return self.order_by(order, "-id" if descending else "id")


class ApiToken(KeyedName):
    """An API token. Its secret is never here: only digests, in TokenSecret."""

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        db_index=False,  # every index below that starts with it serves it (tokens 0011)
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    scope = models.CharField(max_length=12, choices=TokenScope.choices)
    name = models.CharField(max_length=100)
    # What the token is for, in the words of whoever made it (optional, lines kept).
    description = models.TextField(max_length=1000, blank=True, default="")
    # The technical user behind an organization or group token; the owner of a personal one.
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    role = models.CharField(max_length=10, choices=TokenRole.choices, default=TokenRole.CUSTOM)
    permissions = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    allowed_addresses = models.JSONField(default=list, blank=True)
    ip_filter = models.ForeignKey(
        IpFilter, null=True, blank=True, on_delete=models.PROTECT, related_name="api_tokens"
    )
    # The filter was put there by the security policy's enforcement, so it follows the policy:
    # released when the policy stops enforcing it, replaced when it enforces another.
    ip_filter_from_policy = models.BooleanField(default=False)
    status = models.CharField(
        max_length=10, choices=TokenStatus.choices, default=TokenStatus.ACTIVE
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=500, blank=True)
    # Who revoked it: a personal token revoked by anyone but its owner (an admin's kill switch,
    # the owner's removal, a policy) is not the owner's to restore.
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as written at the time, like the audit log: the revoker may be an operator, leak
    # detection or a policy, with no user, or a person deleted since.
    revoked_by_name = models.CharField(max_length=150, blank=True, default="")
    partial_token = models.CharField(max_length=16)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150, blank=True)
    modified_at = models.DateTimeField(default=timezone.now)
    modified_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    modified_by_name = models.CharField(max_length=150, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_address = models.GenericIPAddressField(null=True, blank=True)
    # When its current secret was reported leaked (tokens/leaks.py), and where (the reported
    # URL, or the source). A leaked token is never restored: its secret is public.
    leaked_at = models.DateTimeField(null=True, blank=True)
    leaked_where = models.CharField(max_length=500, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["organization", "scope", "name"], name="token_org_scope_name"),
            # A policy change walks an organization's tokens by id, in ranges (tokens.services.
            # rewrite_for_policy); without it a prepared statement's generic plan on PostgreSQL
            # read the whole organization for every range.
            models.Index(fields=["organization", "id"], name="token_org_id"),
            # The banner of tokens expiring soon in an organization of 100,000 tokens.
            models.Index(fields=["organization", "expires_at"], name="token_org_expires_at"),
            # The lists' default order, names case folded: without it a list of 100,000 tokens
            # sorts them all for every page.
            models.Index(
                F("organization"),
                F("scope"),
                Lower("name"),
                F("id"),
                name="token_org_scope_lower_name",
            ),
            models.Index(fields=["expires_at"], name="token_expires_at"),
            models.Index(fields=["status", "revoked_at"], name="token_status_revoked"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name_key"],
                condition=Q(scope="organization"),
                name="token_name_unique_in_org",
            ),
            models.UniqueConstraint(
                fields=["group", "name_key"],
                condition=Q(scope="group"),
                name="token_name_unique_in_group",
            ),
            models.UniqueConstraint(
                fields=["organization", "user", "name_key"],
                condition=Q(scope="personal"),
                name="token_name_unique_per_owner",
            ),
            models.CheckConstraint(
                condition=Q(scope="group", group__isnull=False)
                | (~Q(scope="group") & Q(group__isnull=True)),
                name="token_group_iff_group_scope",
            ),
            models.CheckConstraint(
                condition=Q(status="active", revoked_at__isnull=True)
                | Q(status="revoked", revoked_at__isnull=False),
                name="token_revoked_has_time",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["admin", "member", "custom"]), name="token_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(scope__in=["organization", "group", "personal"]),
                name="token_scope_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.partial_token})"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def display_status(self, now: datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired`` (expiry is derived, never stored)."""
        if self.status == TokenStatus.REVOKED:
            return TokenStatus.REVOKED
        return "expired" if self.is_expired(now) else TokenStatus.ACTIVE

    def granted_permissions(self) -> frozenset[str]:
        """The token's own permissions, its role resolved now (not yet capped by an owner)."""
        return catalog.for_role(self.role, self.scope, self.permissions)


class TokenSecret(models.Model):
    """The digest of one secret of a token. The current one has no end; an old one kept for a
    grace period after regeneration ends at ``ends_at``."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="secrets")
    digest = models.CharField(max_length=64, unique=True)
    pepper_id = models.CharField(max_length=16)
    partial_token = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_address = models.GenericIPAddressField(null=True, blank=True)
    # This secret was reported leaked: the first report acts, later ones change nothing.
    leaked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["ends_at"], name="secret_ends_at")]

    def __str__(self) -> str:
        return self.partial_token

    def is_valid(self, now: datetime) -> bool:
        return self.ends_at is None or self.ends_at > now


class TokenUsage(models.Model):
    """Requests made with a token on one UTC day."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="usage")
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["token", "day"], name="one_usage_row_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.token_id} {self.day}: {self.count}"


class ExpiryReminder(models.Model):
    """That the reminder for one threshold (30, 7, 1 days) of one expiry was sent, so that
    ``notify_expiring_tokens`` sends each once; a new expiry gets its own reminders."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="expiry_reminders")
    threshold_days = models.PositiveSmallIntegerField()
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["token", "threshold_days", "expires_at"], name="one_reminder_per_threshold"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.token_id}: {self.threshold_days} days before {self.expires_at:%Y-%m-%d}"
