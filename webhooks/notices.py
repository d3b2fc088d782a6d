"""E-mails about endpoints: written in the transaction of the change, sent after it commits.

A notice that cannot be sent stays queued; the worker tries it again with a growing delay, so
an unreachable mail server delays the e-mail but never loses it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.utils import timezone

from orgs.models import OrganizationMembership, Role
from webhooks.models import WebhookEndpoint, WebhookNotice

logger = logging.getLogger("keyward.webhooks")
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=1),
)


def _admin_addresses(organization_id: int) -> list[str]:
    return sorted(
        {
            email
            for email in OrganizationMembership.objects.filter(
                organization_id=organization_id,
                role=Role.ADMIN,
                user__is_active=True,
            )
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        }
    )


def queue_deactivation_notice(
    endpoint: WebhookEndpoint, shown_url: str, now: datetime
) -> WebhookNotice | None:
    """Queue the e-mail telling the organization's admins an endpoint was turned off; it is
    sent once the surrounding transaction commits."""
    recipients = _admin_addresses(endpoint.organization_id)
    if not recipients:
        return None
    organization = endpoint.organization
    name = endpoint.description or shown_url
    failing_since = endpoint.failing_since or now
    notice = WebhookNotice.objects.create(
        organization=organization,
        endpoint=endpoint,
        recipients=recipients,
        subject=f"[Keyward] Webhook endpoint {name} turned off in {organization.name}"[:200],
        body="\n".join(
            [
                f"Keyward turned off the webhook endpoint {name} ({shown_url}) of "
                f"{organization.name}: every delivery to it has failed since "
                f"{failing_since:%Y-%m-%d %H:%M} UTC.",
                "",
                "Its queued events were not sent. Once the receiver works again, turn the "
                "endpoint back on from the Webhooks page of the console and redeliver the "
                "events it missed.",
            ]
        ),
        created_at=now,
        next_attempt_at=now,
    )
    transaction.on_commit(lambda: send_notice(notice.pk))
    return notice


def send_notice(notice_id: int, now: datetime | None = None) -> bool:
    """Send one queued notice unless it was sent or another worker holds it; True if sent."""
    now = now or timezone.now()
    with transaction.atomic():
        queryset = WebhookNotice.objects.filter(pk=notice_id, sent_at__isnull=True)
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True)
        notice = queryset.first()
        if notice is None:
            return False
        try:
            EmailMessage(
                subject=notice.subject,
                body=notice.body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=notice.recipients,
            ).send()
        except Exception as error:  # noqa: BLE001 (any mail backend error: retry later)
            delay = RETRY_DELAYS[min(notice.attempts, len(RETRY_DELAYS) - 1)]
            notice.attempts += 1
            notice.next_attempt_at = now + delay
            notice.last_error = f"{type(error).__name__}: {error}"[:300]
            notice.save(update_fields=["attempts", "next_attempt_at", "last_error"])
            logger.warning("Webhook notice %s not sent, retrying later: %s", notice.pk, error)
            return False
        notice.attempts += 1
        notice.sent_at = now
        notice.last_error = ""
        notice.save(update_fields=["attempts", "sent_at", "last_error"])
    return True


def send_due_notices(now: datetime | None = None) -> int:
    """Send every queued notice whose time has come; the number sent."""
    now = now or timezone.now()
    due = list(
        WebhookNotice.objects.filter(sent_at__isnull=True, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:100]
    )
    return sum(send_notice(notice_id, now) for notice_id in due)
