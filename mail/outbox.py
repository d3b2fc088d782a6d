"""E-mail like any other outbound event: queued in the transaction of the change it reports,
sent after the commit outside any transaction, retried until it goes.

``queue`` writes the message (a change that rolls back sends nothing); ``deliver_due`` claims
due messages in a short transaction, sends them with no database lock held, and records the
outcome. A failure leaves the message pending with a later attempt; a sender that dies mid-send
leaves a claim that expires, and the next sender takes the message over.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from mail.models import EmailStatus, OutgoingEmail

logger = logging.getLogger("keyward.mail")

SUBJECT_MAX_LENGTH = 200
CLAIM = timedelta(minutes=5)
# After each failed attempt, the next one waits this long; after the last, the message fails.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(BACKOFF) + 1


def one_line(text: str, max_length: int = SUBJECT_MAX_LENGTH) -> str:
    """Text fit for a mail header: no line breaks or other control characters (a name that
    carries ``\\r\\nBcc:`` stays one harmless line), whitespace collapsed, length capped."""
    cleaned = "".join(
        " " if unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp") else character
        for character in text
    )
    return " ".join(cleaned.split())[:max_length]


def _valid_addresses(addresses: Iterable[str]) -> list[str]:
    valid = set()
    for address in addresses:
        address = (address or "").strip()
        if not address or any(character in address for character in "\r\n,;<>"):
            continue
        try:
            validate_email(address)
        except ValidationError:
            continue
        valid.add(address)
    return sorted(valid)


def queue(
    *, to: Iterable[str], subject: str, body: str, purpose: str, send_after_commit: bool = True
) -> OutgoingEmail | None:
    """Write a message to the outbox inside the caller's transaction; None when it has no valid
    recipient. With ``send_after_commit`` it goes out as soon as the transaction commits (in a
    background thread by default, see ``KEYWARD_EMAIL_SEND_AFTER_COMMIT``); otherwise the caller
    or the next ``send_email`` run delivers it."""
    recipients = _valid_addresses(to)
    if not recipients:
        return None
    email = OutgoingEmail.objects.create(
        purpose=purpose[:60],
        recipients=recipients,
        subject=one_line(subject),
        body=body,
    )
    if send_after_commit:
        transaction.on_commit(lambda: _after_commit([email.pk]))
    return email


def _after_commit(ids: list[int]) -> None:
    mode = settings.KEYWARD_EMAIL_SEND_AFTER_COMMIT
    if mode == "off":
        return
    if mode == "inline":
        deliver_due(ids=ids)
        return
    threading.Thread(target=_deliver_in_background, args=(ids,), daemon=True).start()


def _deliver_in_background(ids: list[int]) -> None:
    try:
        deliver_due(ids=ids)
    except Exception:  # the messages stay pending for the next sender
        logger.exception("Sending e-mail after commit failed; it stays queued.")
    finally:
        connections.close_all()


@dataclass
class Delivery:
    """What one sending round did."""

    sent: int = 0
    failures: list[str] = field(default_factory=list)
    given_up: int = 0


def _claim(now: datetime, limit: int, ids: list[int] | None) -> list[OutgoingEmail]:
    """Take due messages for this sender, in a short transaction of its own."""
    with transaction.atomic():
        due = OutgoingEmail.objects.filter(status=EmailStatus.PENDING, next_attempt_at__lte=now)
        due = due.filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        if ids is not None:
            due = due.filter(pk__in=ids)
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        claimed = list(due.order_by("next_attempt_at", "pk")[:limit])
        OutgoingEmail.objects.filter(pk__in=[email.pk for email in claimed]).update(
            claimed_until=now + CLAIM
        )
    return claimed


def deliver_due(
    *, now: datetime | None = None, limit: int = 200, ids: list[int] | None = None
) -> Delivery:
    """Send the messages that are due (only ``ids`` if given), outside any transaction."""
    now = now or timezone.now()
    report = Delivery()
    mail_connection = get_connection(fail_silently=False)
    # One message claimed at a time: a sender killed mid-batch holds back only the message in
    # its hands (until its claim runs out), not every message of its batch.
    for _ in range(limit):
        claimed = _claim(now, 1, ids)
        if not claimed:
            break
        email = claimed[0]
        try:
            EmailMessage(
                subject=email.subject,
                body=email.body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=email.recipients,
                connection=mail_connection,
            ).send()
        except Exception as error:  # any mail backend error: keep the message, try later
            attempts = email.attempts + 1
            detail = f"{type(error).__name__}: {error}"[:500]
            report.failures.append(f"{email.purpose} to {', '.join(email.recipients)}: {detail}")
            if attempts >= MAX_ATTEMPTS:
                report.given_up += 1
                status, next_attempt = EmailStatus.FAILED, now
            else:
                status, next_attempt = EmailStatus.PENDING, now + BACKOFF[attempts - 1]
            OutgoingEmail.objects.filter(pk=email.pk).update(
                status=status,
                attempts=attempts,
                next_attempt_at=next_attempt,
                claimed_until=None,
                last_error=detail,
            )
            logger.warning("E-mail %s not sent (attempt %s): %s", email.pk, attempts, detail)
        else:
            OutgoingEmail.objects.filter(pk=email.pk).update(
                status=EmailStatus.SENT,
                attempts=F("attempts") + 1,
                sent_at=timezone.now(),
                claimed_until=None,
                last_error="",
            )
            report.sent += 1
    return report
