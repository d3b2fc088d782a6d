"""Expiry reminders: one digest per organization to its admins and per group to its admins,
and to each person about their own personal tokens.

A token is due for the smallest threshold its expiry falls within (30, 7 or 1 days for
organization and group tokens; 7 and 1 for personal ones), once per threshold and expiry:
``ExpiryReminder`` remembers what was sent, and a new expiry (after a regeneration) starts
over. Personal tokens are their owners' business: they go to the owner, never to admins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from mail import outbox
from orgs import audit
from orgs.models import GroupMembership, Organization, OrganizationMembership, Role
from orgs.principals import Principal
from tokens.models import ApiToken, ExpiryReminder, TokenScope

THRESHOLDS = (30, 7, 1)
PERSONAL_THRESHOLDS = (7, 1)


@dataclass(frozen=True)
class DueReminder:
    token: ApiToken
    threshold_days: int
    expires_at: datetime  # the token's expiry this reminder is for


@dataclass
class Digest:
    """One e-mail: the tokens of an organization (or of one of its groups) due a reminder."""

    organization: Organization
    recipients: list[str]
    reminders: list[DueReminder]
    group_name: str | None = None
    # For a person's own personal tokens: their name; the digest goes to them alone.
    owner_name: str | None = None

    @property
    def subject(self) -> str:
        count = len(self.reminders)
        if self.owner_name is not None:
            return (
                f"[Keyward] Your API token{'s' if count != 1 else ''} in "
                f"{self.organization.name} {'expire' if count != 1 else 'expires'} soon"
            )
        where = f"group {self.group_name} of {self.organization.name}"
        if self.group_name is None:
            where = self.organization.name
        return f"[Keyward] {count} API token{'s' if count != 1 else ''} expiring in {where}"

    def body(self, now: datetime) -> str:
        if self.owner_name is not None:
            intro = (
                f"Hello {self.owner_name}, these personal API tokens of yours in "
                f"{self.organization.name} expire soon. Create a new one (or regenerate, where "
                "the policy allows it) before they stop working."
            )
            footer = "Each token is listed once per reminder: 7 days and 1 day before it expires."
        else:
            intro = (
                f"These API tokens of {self.organization.name} expire soon. Regenerate or "
                "replace them before they stop working."
            )
            footer = "Each token is listed once per reminder: 30, 7 and 1 days before it expires."
        lines = [intro, ""]
        for reminder in sorted(self.reminders, key=lambda item: item.expires_at):
            token = reminder.token
            left = reminder.expires_at - now
            days = max(left.days, 0)
            when = f"in {days} day{'s' if days != 1 else ''}" if days else "within a day"
            group = f", group {token.group.name}" if token.group is not None else ""
            lines.append(
                f"- {token.name} ({token.partial_token}), {token.scope} token{group}: expires "
                f"{reminder.expires_at:%Y-%m-%d %H:%M} UTC ({when})"
            )
            lines.append(f"  {console_link(token)}")
        lines += ["", footer]
        return "\n".join(lines)


def console_link(token: ApiToken) -> str:
    """The address of the token's page in the console (no secret: its id only)."""
    path = reverse(
        "tokens:detail", kwargs={"org_slug": token.organization.slug, "token_id": token.pk}
    )
    return f"{settings.KEYWARD_CONSOLE_URL.rstrip('/')}{path}"


@dataclass
class NotifyReport:
    dry_run: bool
    digests: list[Digest] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def tokens_reminded(self) -> int:
        return len({r.token.pk for digest in self.digests for r in digest.reminders})

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "digests": [
                {
                    "organization": digest.organization.slug,
                    "group": digest.group_name,
                    "owner": digest.owner_name,
                    "subject": digest.subject,
                    "recipients": digest.recipients,
                    "tokens": [
                        {
                            "id": reminder.token.pk,
                            "name": reminder.token.name,
                            "partial_token": reminder.token.partial_token,
                            "expires_at": reminder.expires_at.isoformat(),
                            "threshold_days": reminder.threshold_days,
                        }
                        for reminder in digest.reminders
                    ],
                }
                for digest in self.digests
            ],
            "tokens_reminded": self.tokens_reminded,
            "failures": self.failures,
        }


def _threshold(
    expires_at: datetime, now: datetime, thresholds: tuple[int, ...] = THRESHOLDS
) -> int | None:
    """The smallest threshold the expiry falls within, or None."""
    applicable = [days for days in thresholds if expires_at <= now + timedelta(days=days)]
    return min(applicable) if applicable else None


def _thresholds_of(token: ApiToken) -> tuple[int, ...]:
    return PERSONAL_THRESHOLDS if token.scope == TokenScope.PERSONAL else THRESHOLDS


def due_reminders(*, now: datetime, organization: Organization | None = None) -> list[DueReminder]:
    """Active tokens whose current threshold has not been reminded for this expiry: org and
    group tokens expiring within 30 days, personal ones within 7."""
    tokens = (
        ApiToken.objects.active(now)
        .filter(
            Q(
                scope__in=[TokenScope.ORGANIZATION, TokenScope.GROUP],
                expires_at__lte=now + timedelta(days=max(THRESHOLDS)),
            )
            | Q(
                scope=TokenScope.PERSONAL,
                expires_at__lte=now + timedelta(days=max(PERSONAL_THRESHOLDS)),
            )
        )
        .select_related("organization", "group", "user")
        .order_by("organization_id", "expires_at", "pk")
    )
    if organization is not None:
        tokens = tokens.filter(organization=organization)
    expiring = list(tokens)
    sent = set(
        ExpiryReminder.objects.filter(token__in=expiring).values_list(
            "token_id", "threshold_days", "expires_at"
        )
    )
    due = []
    for token in tokens:
        if token.expires_at is None:  # expires_at__lte above leaves out tokens without one
            continue
        threshold = _threshold(token.expires_at, now, _thresholds_of(token))
        if threshold is not None and (token.pk, threshold, token.expires_at) not in sent:
            due.append(DueReminder(token, threshold, token.expires_at))
    return due


def _addresses(memberships: Iterable[OrganizationMembership | GroupMembership]) -> list[str]:
    return sorted({m.user.email for m in memberships if m.user.email and m.user.is_active})


def build_digests(due: list[DueReminder]) -> list[Digest]:
    """Group due reminders into one digest per organization and one per group, and one per
    person for their own personal tokens of an organization."""
    by_org: dict[int, list[DueReminder]] = defaultdict(list)
    by_group: dict[int, list[DueReminder]] = defaultdict(list)
    by_owner: dict[tuple[int, int], list[DueReminder]] = defaultdict(list)
    for reminder in due:
        if reminder.token.scope == TokenScope.PERSONAL:
            by_owner[(reminder.token.organization_id, reminder.token.user_id)].append(reminder)
            continue
        by_org[reminder.token.organization_id].append(reminder)
        if reminder.token.group_id:
            by_group[reminder.token.group_id].append(reminder)
    org_admins: dict[int, list[OrganizationMembership]] = defaultdict(list)
    for membership in OrganizationMembership.objects.filter(
        organization_id__in=list(by_org), role=Role.ADMIN
    ).select_related("user"):
        org_admins[membership.organization_id].append(membership)
    group_admins: dict[int, list[GroupMembership]] = defaultdict(list)
    for group_membership in GroupMembership.objects.filter(
        group_id__in=list(by_group), role=Role.ADMIN
    ).select_related("user"):
        group_admins[group_membership.group_id].append(group_membership)

    digests = []
    for reminders in by_org.values():
        organization = reminders[0].token.organization
        digests.append(Digest(organization, _addresses(org_admins[organization.pk]), reminders))
    for group_id, reminders in by_group.items():
        token = reminders[0].token
        assert token.group is not None  # by_group holds group tokens only
        digests.append(
            Digest(
                token.organization,
                _addresses(group_admins[group_id]),
                reminders,
                group_name=token.group.name,
            )
        )
    for reminders in by_owner.values():
        token = reminders[0].token
        owner = token.user
        recipients = [owner.email] if owner.email and owner.is_active else []
        digests.append(Digest(token.organization, recipients, reminders, owner_name=owner.name))
    return digests


def _claim(reminders: list[DueReminder], now: datetime) -> None:
    """Remember the reminders as sent; raise IntegrityError if another run sent one first."""
    ExpiryReminder.objects.bulk_create(
        [
            ExpiryReminder(
                token=reminder.token,
                threshold_days=reminder.threshold_days,
                expires_at=reminder.expires_at,
                sent_at=now,
            )
            for reminder in reminders
        ]
    )


ORGANIZATIONS = "orgs"
# Who the audit log says reminded, beside each token.expiring event.
REMINDER_ACTOR = "expiry reminders"


def _record_expiring(organization: Organization, reminders: Iterable[DueReminder]) -> None:
    """One ``token.expiring`` event per token reminded: the audit log shows the reminder, and
    the organization's webhook endpoints subscribed to it hear of it."""
    actor = audit.Actor.of(Principal.operator(organization=organization, label=REMINDER_ACTOR))
    audit.record_many(
        actor=actor,
        organization=organization,
        entries=[
            audit.Entry(
                action="token.expiring",
                object_type="api_token",
                object_id=reminder.token.pk,
                object_repr=f"{reminder.token.name} ({reminder.token.partial_token})",
                group_id=reminder.token.group_id,
                # The documented shape of changes; a reminder changes nothing, so only "after".
                changes={
                    "expires_at": {"before": None, "after": reminder.expires_at.isoformat()},
                    "days_left": {"before": None, "after": reminder.threshold_days},
                },
            )
            for reminder in reminders
        ],
    )


def send_reminders(
    *,
    now: datetime | None = None,
    organization: Organization | None = None,
    dry_run: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> NotifyReport:
    """Queue each organization's digests with the record that they are due no more, one short
    transaction per organization, then send what is queued outside any transaction.

    A mail server that is down or slow holds no database lock: the digests stay queued, the
    report lists the failures, and the next run (or ``send_email``) sends them.
    """
    now = now or timezone.now()
    report = NotifyReport(dry_run=dry_run)
    digests = build_digests(due_reminders(now=now, organization=organization))
    by_org: dict[int, list[Digest]] = defaultdict(list)
    for digest in digests:
        by_org[digest.organization.pk].append(digest)
    for done, org_digests in enumerate(by_org.values(), start=1):
        if progress is not None:
            progress(ORGANIZATIONS, done)
        to_send = [digest for digest in org_digests if digest.recipients]
        if dry_run:
            report.digests += to_send
            continue
        # Only what reaches someone counts; an admin who adds an address later still gets the
        # reminder.
        organization_reminders = {
            (r.token.pk, r.threshold_days): r for digest in to_send for r in digest.reminders
        }
        if not organization_reminders:
            continue
        try:
            with transaction.atomic():
                # Claimed first: a second run at once fails here instead of mailing twice.
                _claim(list(organization_reminders.values()), now)
                _record_expiring(to_send[0].organization, organization_reminders.values())
                for digest in to_send:
                    outbox.queue(
                        to=digest.recipients,
                        subject=digest.subject,
                        body=digest.body(now),
                        purpose="expiry_reminder",
                        send_after_commit=False,
                    )
        except IntegrityError:
            continue  # another run is queueing this organization's reminders
        report.digests += to_send
    if not dry_run:
        delivery = outbox.deliver_due()
        report.failures += delivery.failures
    return report
