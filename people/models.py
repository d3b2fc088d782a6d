"""Invitations: how a person joins an organization.

An organization admin invites an e-mail address or a username with a role; the person sees the
invitation when they next sign in (and in an e-mail), and joins only by accepting it. Until then
the organization sees nothing but what its admin typed.

Invitations live here rather than in ``orgs``: only the people services create and answer them,
and ``orgs`` stays the small base that tokens and policies stand on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from access import visibility
from orgs.models import Organization, Role, User

if TYPE_CHECKING:
    from access.principal import Principal

LIFETIME = timedelta(days=7)


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def visible_to(self, principal: Principal) -> InvitationQuerySet:
        """The organization's invitations, for those who manage its people
        (``access.visibility.invitations``)."""
        return self.filter(visibility.invitations(principal))

    def addressed_to(self, user: User) -> InvitationQuerySet:
        """Invitations the person may answer (``access.visibility.invitations_addressed_to``)."""
        return self.filter(visibility.invitations_addressed_to(user))

    def received(self, user: User, invitation_id: int) -> Invitation | None:
        """One invitation the person may answer, with its organization; None otherwise."""
        return (
            self.addressed_to(user).select_related("organization").filter(pk=invitation_id).first()
        )

    def pending(self, now: datetime) -> InvitationQuerySet:
        return self.filter(status=InvitationStatus.PENDING, expires_at__gt=now)

    def with_status(self, status: str, now: datetime) -> InvitationQuerySet:
        """By the status a person sees: a pending invitation past its expiry is expired."""
        if status == InvitationStatus.PENDING:
            return self.pending(now)
        if status == InvitationStatus.EXPIRED:
            return self.filter(
                Q(status=InvitationStatus.EXPIRED)
                | Q(status=InvitationStatus.PENDING, expires_at__lte=now)
            )
        return self.filter(status=status)


class Invitation(models.Model):
    """An invitation to join one organization with a role, addressed to what its admin typed:
    an e-mail address or a username."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(max_length=254, blank=True)
    username = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    status = models.CharField(
        max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.PENDING
    )
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    invited_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    # Who accepted or declined it; shown to the organization only once they accepted.
    answered_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="invitation_org_time"),
            models.Index(Lower("email"), name="invitation_email"),
            models.Index(fields=["username"], name="invitation_username"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(email="") & ~Q(username="")) | (~Q(email="") & Q(username="")),
                name="invitation_one_addressee",
            ),
            models.CheckConstraint(
                condition=Q(status="pending", answered_at__isnull=True)
                | (~Q(status="pending") & Q(answered_at__isnull=False)),
                name="invitation_answered_has_time",
            ),
            # One pending invitation per address and organization: inviting again is refused.
            models.UniqueConstraint(
                "organization",
                Lower("email"),
                condition=Q(status="pending") & ~Q(email=""),
                name="invitation_pending_email_unique",
            ),
            models.UniqueConstraint(
                fields=["organization", "username"],
                condition=Q(status="pending") & ~Q(username=""),
                name="invitation_pending_username_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.addressee} to {self.organization} ({self.role})"

    @property
    def addressee(self) -> str:
        """What the inviting admin typed."""
        return self.email or self.username

    def display_status(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        if self.status == InvitationStatus.PENDING and self.expires_at <= now:
            return InvitationStatus.EXPIRED
        return self.status

    def is_expired(self, now: datetime) -> bool:
        return self.display_status(now) == InvitationStatus.EXPIRED
