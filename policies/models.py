"""Named IP filters and the per-organization security policy."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from django.db import models
from django.utils import timezone

from access import visibility
from orgs.durations import format_duration
from orgs.models import KeyedName, Organization, User
from policies import rules as ip_rules

if TYPE_CHECKING:
    from access.principal import Principal

SCOPES = ("organization", "group", "personal")
DEFAULT_MAX_GRACE = timedelta(days=7)
DEFAULT_PERSONAL_LIFETIME = timedelta(days=30)
REVOKE_UNUSED_MIN_DAYS = 7
REVOKE_UNUSED_MAX_DAYS = 365


class IpFilterQuerySet(models.QuerySet["IpFilter"]):
    def visible_to(self, principal: Principal) -> IpFilterQuerySet:
        """The organization's filters (``access.visibility.ip_filters``)."""
        return self.filter(visibility.ip_filters(principal))


class IpFilter(KeyedName):
    """A named list of ``allow|deny`` rules; first match wins, no match is denied."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="ip_filters"
    )
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    rules_text = models.TextField(help_text="One rule per line: allow|deny <address|cidr|all>.")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    modified_at = models.DateTimeField(default=timezone.now)
    modified_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = IpFilterQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name_key"], name="ip_filter_name_unique_in_org"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def rules(self) -> list[ip_rules.Rule]:
        # Rules were validated when saved; a parse here only rebuilds the objects.
        return ip_rules.parse_rules(self.rules_text)

    def decide(self, address: str) -> ip_rules.Decision:
        return ip_rules.decide(self.rules, address)


class ScopePolicy(models.Model):
    """The rules for one kind of token (organization, group or personal) in one organization."""

    scope = models.CharField(max_length=12, choices=[(scope, scope) for scope in SCOPES])
    allowed = models.BooleanField(default=True, help_text="Tokens of this kind may exist.")
    max_lifetime = models.DurationField(null=True, blank=True)
    expiry_required = models.BooleanField(default=False)
    enforced_ip_filter = models.ForeignKey(
        IpFilter, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    custom_ip_allowed = models.BooleanField(
        default=True, help_text="Tokens may carry their own IP filter and allowed addresses."
    )
    # Off until an admin turns it on: product document 000 lets tokens' permissions be edited
    # "if enabled", so a new organization's tokens keep the grant they were issued with.
    permission_edits_allowed = models.BooleanField(default=False)
    regeneration_allowed = models.BooleanField(default=True)
    max_grace = models.DurationField(default=DEFAULT_MAX_GRACE)
    # Active tokens of this kind unused (or, never used, created) this many days ago are
    # revoked by the daily ``cleanup_tokens``; None: off.
    revoke_unused_days = models.PositiveSmallIntegerField(null=True, blank=True)
    # When the policy was last changed with a maximum lifetime: tokens that existed then expire
    # at this moment plus the maximum at the latest, from that moment on, before (and whether
    # or not) the change has rewritten their expiry (``expiry_capped``).
    lifetime_from = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(revoke_unused_days__isnull=True)
                | models.Q(
                    revoke_unused_days__gte=REVOKE_UNUSED_MIN_DAYS,
                    revoke_unused_days__lte=REVOKE_UNUSED_MAX_DAYS,
                ),
                name="scope_policy_revoke_unused_range",
            ),
        ]
        verbose_name_plural = "scope policies"

    def __str__(self) -> str:
        return f"{self.scope} tokens"

    def expiry_capped(self, created_at: datetime, now: datetime) -> bool:
        """Whether a token created at ``created_at`` is past the latest expiry the maximum
        lifetime gives it: authentication refuses it even if its own expiry was not yet
        shortened by the change that set the maximum."""
        if self.max_lifetime is None or self.lifetime_from is None:
            return False
        return created_at <= self.lifetime_from and now >= self.lifetime_from + self.max_lifetime

    @property
    def requires_expiry(self) -> bool:
        return self.expiry_required or self.max_lifetime is not None

    def latest_expiry(self, now: datetime) -> datetime | None:
        """The furthest expiry a token created now may have (None: unlimited)."""
        return now + self.max_lifetime if self.max_lifetime is not None else None

    def expiry_error(self, expires_at: datetime | None, now: datetime) -> str | None:
        """Why this expiry is not acceptable for a new token, or None."""
        if expires_at is None:
            if self.requires_expiry:
                return "The security policy requires these tokens to expire."
            return None
        if expires_at <= now:
            return "The expiry must be in the future."
        latest = self.latest_expiry(now)
        # A minute of slack: a date picked in a form a few seconds ago is still "30 days".
        if (
            latest is not None
            and self.max_lifetime is not None  # as latest_expiry says
            and expires_at > latest + timedelta(minutes=1)
        ):
            return (
                f"The security policy allows at most {format_duration(self.max_lifetime)} "
                f"(until {latest:%Y-%m-%d %H:%M} UTC)."
            )
        return None


class SecurityPolicyQuerySet(models.QuerySet["SecurityPolicy"]):
    def with_scopes(self) -> SecurityPolicyQuerySet:
        """With the three scope policies and their enforced filters, in the same query."""
        return self.select_related(
            "organization",
            "organization_tokens__enforced_ip_filter",
            "group_tokens__enforced_ip_filter",
            "personal_tokens__enforced_ip_filter",
        )

    def for_organization(self, organization: Organization) -> SecurityPolicy:
        """The organization's policy, with its scopes: the one way the policy is loaded."""
        return self.with_scopes().get(organization=organization)


class SecurityPolicy(models.Model):
    """One per organization, created with it; holds the rules for each kind of token."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="security_policy"
    )
    organization_tokens = models.OneToOneField(
        ScopePolicy, on_delete=models.PROTECT, related_name="+"
    )
    group_tokens = models.OneToOneField(ScopePolicy, on_delete=models.PROTECT, related_name="+")
    personal_tokens = models.OneToOneField(ScopePolicy, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1)
    modified_at = models.DateTimeField(default=timezone.now)
    modified_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = SecurityPolicyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "security policies"

    def __str__(self) -> str:
        return f"Security policy of {self.organization_id}"

    def for_scope(self, scope: str) -> ScopePolicy:
        return {
            "organization": self.organization_tokens,
            "group": self.group_tokens,
            "personal": self.personal_tokens,
        }[scope]

    @classmethod
    def create_default(cls, organization: Organization) -> SecurityPolicy:
        """Create the default policy: everything allowed but permission edits, personal tokens at
        most 30 days."""
        return cls.objects.create(
            organization=organization,
            organization_tokens=ScopePolicy.objects.create(scope="organization"),
            group_tokens=ScopePolicy.objects.create(scope="group"),
            personal_tokens=ScopePolicy.objects.create(
                scope="personal", max_lifetime=DEFAULT_PERSONAL_LIFETIME, expiry_required=True
            ),
        )


class PolicyApplication(models.Model):
    """A policy change being brought to the organization's tokens, batch by batch, after the
    policy itself has committed (and is enforced at authentication).

    Unfinished while batches remain: whoever runs next (the same request, the worker or
    ``manage.py finish_policy_changes``) finishes it; a later change of the policy supersedes
    it, since the later one rewrites every token the current policy still touches. The actor
    is copied so that the events written by the worker name who made the change.
    """

    policy = models.ForeignKey(SecurityPolicy, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    superseded = models.BooleanField(default=False)
    tokens_changed = models.PositiveIntegerField(default=0)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    actor_kind = models.CharField(max_length=10)
    via_token_id = models.BigIntegerField(null=True, blank=True)
    via_token_name = models.CharField(max_length=100, blank=True)
    via_token_partial = models.CharField(max_length=16, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["finished_at"],
                condition=models.Q(finished_at__isnull=True),
                name="policy_application_unfinished",
            )
        ]

    def __str__(self) -> str:
        state = "finished" if self.finished_at else "unfinished"
        return f"Policy version {self.version} of {self.policy_id} ({state})"
