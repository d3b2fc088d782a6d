"""The delivery worker: claim a due delivery, send it outside any transaction, record the result.

Claiming is a short transaction that takes the oldest due row with ``SELECT ... FOR UPDATE SKIP
LOCKED`` on PostgreSQL (so workers never take the same one) and leases it: while a worker holds
it, ``next_attempt_at`` is the lease's end, and the delivery of a worker that dies is released
then and sent again. A result is recorded only by the worker whose lease it is. SQLite has no
row locks; its writing transactions take the database lock up front, so one worker is the
documented setup.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from mail import outbox
from orgs import exports
from policies.services import apply as policy_changes
from webhooks import addresses, services, signing, transport
from webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

logger = logging.getLogger("keyward.webhooks")

# After the first attempt fails: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h (~17.6 h in all),
# each with up to 10% jitter so that many failed deliveries do not come back at once.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.1
_random = secrets.SystemRandom()


def lease_duration() -> timedelta:
    """How long a claimed delivery is a worker's: well over one attempt's timeout."""
    return timedelta(seconds=max(60.0, 6 * settings.KEYWARD_WEBHOOK_TIMEOUT_SECONDS))


def retry_delay(failed_attempts: int) -> timedelta | None:
    """The wait after this many failed attempts, with jitter; None when none is left."""
    if failed_attempts < 1 or failed_attempts > len(RETRY_DELAYS):
        return None
    base = RETRY_DELAYS[failed_attempts - 1]
    return base * _random.uniform(1 - JITTER, 1 + JITTER)


@dataclass
class Claim:
    delivery: WebhookDelivery
    lease: str


def release_expired_leases(now: datetime | None = None) -> int:
    """Make deliveries whose worker died (its lease ran out) pending again, due at once."""
    now = now or timezone.now()
    return WebhookDelivery.objects.filter(
        status=DeliveryStatus.DELIVERING, next_attempt_at__lte=now
    ).update(status=DeliveryStatus.PENDING, lease="")


def claim_next(now: datetime | None = None) -> Claim | None:
    """Take the oldest due pending delivery for this worker, or None when nothing is due."""
    now = now or timezone.now()
    lease = secrets.token_hex(16)
    with transaction.atomic():
        due = WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        ).order_by("next_attempt_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        delivery = due.first()
        if delivery is None:
            return None
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.DELIVERING,
            lease=lease,
            attempts=F("attempts") + 1,
            next_attempt_at=now + lease_duration(),
        )
    delivery.status = DeliveryStatus.DELIVERING
    delivery.lease = lease
    delivery.attempts += 1
    return Claim(delivery, lease)


def _headers(endpoint: WebhookEndpoint, delivery: WebhookDelivery, at: datetime) -> dict[str, str]:
    at = at.replace(microsecond=0)
    return {
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signing.signature_header(
            services.secrets_in_use(endpoint, at), delivery.message_id, at, delivery.body
        ),
    }


def attempt(claim: Claim, now: datetime | None = None) -> transport.Outcome | None:
    """Send a claimed delivery once and record what happened. None if its endpoint is gone."""
    delivery = claim.delivery
    endpoint = (
        WebhookEndpoint.objects.select_related("organization")
        .filter(pk=delivery.endpoint_id)
        .first()
    )
    if endpoint is None:
        return None  # deleted meanwhile, its deliveries with it
    at = now or timezone.now()
    if not endpoint.active:
        outcome = transport.Outcome(None, "Not sent: the endpoint was turned off.", 0)
        record(claim, outcome, at, retry=False)
        return outcome
    try:
        # Checked again now: DNS may answer differently than at registration.
        destination = services.check_destination(endpoint.url)
    except addresses.DestinationRefused as refusal:
        outcome = transport.Outcome(None, f"Refused: {refusal.message}"[:300], 0)
    except Exception as error:
        outcome = transport.Outcome(None, f"Not sent: {type(error).__name__}"[:300], 0)
    else:
        try:
            headers = _headers(endpoint, delivery, at)
        except signing.UnreadableSecret as error:
            outcome = transport.Outcome(None, str(error)[:300], 0)
        else:
            outcome = transport.post(
                destination,
                delivery.body.encode(),
                headers,
                settings.KEYWARD_WEBHOOK_TIMEOUT_SECONDS,
            )
    record(claim, outcome, at + timedelta(milliseconds=outcome.duration_ms))
    return outcome


def record(claim: Claim, outcome: transport.Outcome, now: datetime, *, retry: bool = True) -> bool:
    """Write an attempt's result if the lease is still this worker's: done, retried later with
    backoff, or failed for good; an endpoint failing for 24 hours is turned off."""
    delivery = claim.delivery
    succeeded = outcome.succeeded
    with transaction.atomic():
        fields = {
            "lease": "",
            "last_attempt_at": now,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error[:300],
            "last_duration_ms": outcome.duration_ms,
        }
        delay = None if succeeded or not retry else retry_delay(delivery.attempts)
        if succeeded:
            fields.update(status=DeliveryStatus.SUCCEEDED, completed_at=now)
        elif delay is not None:
            fields.update(status=DeliveryStatus.PENDING, next_attempt_at=now + delay)
        else:
            fields.update(status=DeliveryStatus.FAILED, completed_at=now)
        updated = WebhookDelivery.objects.filter(
            pk=delivery.pk, lease=claim.lease, status=DeliveryStatus.DELIVERING
        ).update(**fields)
        if not updated:
            return False  # the lease ran out and another worker has it now
        WebhookAttempt.objects.create(
            delivery_id=delivery.pk,
            number=delivery.attempts,
            attempted_at=now - timedelta(milliseconds=outcome.duration_ms),
            succeeded=succeeded,
            status_code=outcome.status_code,
            error=outcome.error[:300],
            duration_ms=outcome.duration_ms,
        )
        endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
        if succeeded:
            endpoints.filter(failing_since__isnull=False).update(failing_since=None)
        elif retry:
            endpoints.filter(failing_since__isnull=True).update(failing_since=now)
            if endpoints.filter(
                active=True, failing_since__lte=now - services.FAILING_LIMIT
            ).exists():
                services.deactivate_if_failing(endpoint_id=delivery.endpoint_id, now=now)
    if not succeeded:
        logger.info(
            "Webhook delivery %s (%s) attempt %s failed: %s",
            delivery.message_id,
            delivery.event_type,
            delivery.attempts,
            outcome.error,
        )
    return True


def deliver_due(*, stop: threading.Event | None = None, limit: int | None = None) -> int:
    """Deliver what is due now, one at a time, until nothing is (or ``stop`` is set); the
    number of attempts made."""
    release_expired_leases()
    made = 0
    while not (stop is not None and stop.is_set()) and (limit is None or made < limit):
        claim = claim_next()
        if claim is None:
            break
        attempt(claim)
        made += 1
    return made


def run(*, stop: threading.Event, poll_seconds: float = 1.0) -> int:
    """Deliver until ``stop`` is set, then return the number of attempts made. The delivery in
    hand when it is set is finished first."""
    made = 0
    while not stop.is_set():
        if not connection.in_atomic_block:
            close_old_connections()  # a connection the database dropped is replaced
        try:
            outbox.deliver_due()
            exports.build_due()
            exports.remove_expired()
            policy_changes.finish_unfinished()
            made += deliver_due(stop=stop)
        except Exception:
            logger.exception("Webhook worker cycle failed; retrying")
        stop.wait(poll_seconds)
    return made
