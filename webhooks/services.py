"""Every change to a webhook endpoint: rights, validation, version, audit, one transaction.

Console views, the API, admin actions and the worker call these and nothing else. Each change
is itself an audit event (``webhook.created`` ...), delivered like any other; a delivery's own
result is never an audit event, so nothing loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone

from access import rules
from access.errors import NotFound, VersionConflict
from orgs import audit
from orgs.models import Organization
from orgs.principals import Principal
from tokens import services as token_services
from webhooks import addresses, notices, payloads, signing
from webhooks import events as event_types
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

READ = "api.webhooks.read"
WRITE = "api.webhooks.write"
DELETE = "api.webhooks.delete"
MAX_ENDPOINTS = 20  # per organization: every audit event fans out to at most this many
DESCRIPTION_MAX_LENGTH = 300
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)
FAILING_LIMIT = timedelta(hours=24)
WORKER_LABEL = "webhook worker"


@dataclass(frozen=True)
class IssuedEndpoint:
    """An endpoint and its signing secret, returned once by create and rotate, never kept."""

    endpoint: WebhookEndpoint
    secret: str = field(repr=False)


# Rules ----------------------------------------------------------------------------------------


def _require(actor: Principal, action: str) -> None:
    rules.require_manage_webhooks(actor, action)


def _require_organization(actor: Principal, organization: Organization) -> None:
    if actor.organization is not None and actor.organization.pk != organization.pk:
        raise NotFound("No such organization.")


def _require_visible(actor: Principal, endpoint: WebhookEndpoint) -> None:
    if not WebhookEndpoint.objects.visible_to(actor).filter(pk=endpoint.pk).exists():
        raise NotFound("No such webhook endpoint.")


def check_destination(url: str) -> addresses.Destination:
    """Check a URL against the operator's rules now (form, https, every resolved address)."""
    return addresses.check_url(
        url,
        https_only=settings.KEYWARD_WEBHOOK_HTTPS_ONLY,
        allowed_hosts=settings.KEYWARD_WEBHOOK_ALLOWED_HOSTS,
    )


def shown_url(url: str) -> str:
    """What audit events, deliveries and e-mails show of an endpoint's URL: its origin only,
    since paths and queries often carry the receiver's own secret (chat webhooks do)."""
    try:
        destination = addresses.parse_url(url, https_only=False, allowed_hosts=())
    except addresses.DestinationRefused:
        return "(invalid URL)"
    default = 443 if destination.scheme == "https" else 80
    host = f"[{destination.host}]" if ":" in destination.host else destination.host
    port = "" if destination.port == default else f":{destination.port}"
    return f"{destination.scheme}://{host}{port}/…"


def _clean(
    actor: Principal, *, url: str | None, patterns: Any, description: str | None
) -> tuple[str | None, list[str] | None, str | None]:
    """Validate the fields given (None: unchanged); raise ValidationError naming each bad one.
    A token's secret in the URL or the description is refused (and a live one treated as
    leaked): both are shown to everyone who may read the endpoint, and the URL to receivers'
    logs."""
    errors: dict[str, list[str]] = token_services.pasted_token_errors(
        actor, {"url": ("A URL", url or ""), "description": ("A description", description or "")}
    )
    if errors:
        raise ValidationError(errors)
    if url is not None:
        try:
            url = check_destination(url).url
        except addresses.DestinationRefused as refusal:
            errors["url"] = [refusal.message]
    if patterns is not None:
        if isinstance(patterns, str) or not isinstance(patterns, (list, tuple, set, frozenset)):
            errors["events"] = ["Give a list of event types."]
        else:
            patterns, problems = event_types.clean(patterns)
            if problems:
                errors["events"] = problems
    if description is not None:
        description = description.strip()
        if len(description) > DESCRIPTION_MAX_LENGTH:
            errors["description"] = [
                f"A description has at most {DESCRIPTION_MAX_LENGTH} characters."
            ]
        elif any(ord(character) < 32 for character in description):
            errors["description"] = ["A description cannot contain control characters."]
    if errors:
        raise ValidationError(errors)
    return url, patterns, description


def _snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": shown_url(endpoint.url),
        "events": list(endpoint.events),
        "description": endpoint.description,
        "active": endpoint.active,
    }


def _record(
    actor: Principal, action: str, endpoint: WebhookEndpoint, changes: dict[str, Any]
) -> None:
    audit.record(
        actor=actor,
        action=action,
        organization=endpoint.organization,
        object_type="webhook_endpoint",
        object_id=endpoint.pk,
        object_repr=endpoint.description or shown_url(endpoint.url),
        changes=changes,
    )


def _lock(endpoint: WebhookEndpoint, expected_version: int | None) -> WebhookEndpoint:
    try:
        locked = (
            WebhookEndpoint.objects.select_for_update(of=("self",))
            .select_related("organization")
            .get(pk=endpoint.pk)
        )
    except WebhookEndpoint.DoesNotExist:
        raise NotFound("No such webhook endpoint.") from None
    if expected_version is not None and locked.version != expected_version:
        raise VersionConflict(locked.version)
    return locked


def _touch(endpoint: WebhookEndpoint, actor: Principal, now: datetime) -> None:
    endpoint.version += 1
    endpoint.modified_at = now
    endpoint.modified_by = actor.user


def _cancel_open_deliveries(endpoint: WebhookEndpoint, now: datetime) -> int:
    """Queued deliveries of an endpoint turned off end as failed (they can be redelivered);
    one a worker holds right now finishes its attempt."""
    return endpoint.deliveries.filter(status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED,
        completed_at=now,
        last_error="Not sent: the endpoint was turned off.",
    )


# Endpoints ------------------------------------------------------------------------------------


def create_endpoint(
    *,
    actor: Principal,
    organization: Organization,
    url: str,
    events: list[str],
    description: str = "",
    active: bool = True,
    now: datetime | None = None,
) -> IssuedEndpoint:
    """Register an endpoint; the answer carries its signing secret, this once.

    A URL that is not https in production, or whose host is or resolves to a non-public
    address, is refused on ``url``. Needs ``api.webhooks.write``.
    """
    _require_organization(actor, organization)
    _require(actor, "write")
    if url is None:
        raise ValidationError({"url": ["Give the URL the events are sent to."]})
    if events is None:
        raise ValidationError({"events": ["Choose at least one event type."]})
    cleaned_url, patterns, cleaned_description = _clean(
        actor, url=url, patterns=events, description=description or ""
    )
    # _clean gives back each field it was given: all three here.
    assert cleaned_url is not None and patterns is not None and cleaned_description is not None
    now = now or timezone.now()
    secret = signing.generate_secret()
    with transaction.atomic():
        # The organization row serializes creations, so the limit holds under concurrency.
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        if WebhookEndpoint.objects.filter(organization=organization).count() >= MAX_ENDPOINTS:
            raise ValidationError(
                {
                    NON_FIELD_ERRORS: [
                        f"An organization has at most {MAX_ENDPOINTS} webhook endpoints; "
                        "delete one first."
                    ]
                }
            )
        endpoint = WebhookEndpoint.objects.create(
            organization=organization,
            url=cleaned_url,
            events=patterns,
            description=cleaned_description,
            active=bool(active),
            secret_ciphertext=signing.encrypt(secret),
            secret_partial=signing.partial(secret),
            created_at=now,
            created_by=actor.user,
            modified_at=now,
            modified_by=actor.user,
        )
        _record(actor, "webhook.created", endpoint, audit.diff({}, _snapshot(endpoint)))
    return IssuedEndpoint(endpoint, secret)


def update_endpoint(
    *,
    actor: Principal,
    endpoint: WebhookEndpoint,
    expected_version: int | None = None,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
    now: datetime | None = None,
) -> WebhookEndpoint:
    """Change an endpoint's URL, events, description or state (None keeps a field).

    Turning it off cancels its queued deliveries; turning it on again forgets its failures.
    Needs ``api.webhooks.write``.
    """
    _require_visible(actor, endpoint)
    _require(actor, "write")
    url, patterns, description = _clean(actor, url=url, patterns=events, description=description)
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(endpoint, expected_version)
        before = _snapshot(locked)
        url_changed = False
        if url is not None and url != locked.url:
            url_changed = True
            locked.url = url
            locked.failing_since = None  # a new receiver: the old one's failures are not its
        if patterns is not None:
            locked.events = patterns
        if description is not None:
            locked.description = description
        if active is not None and bool(active) != locked.active:
            locked.active = bool(active)
            if locked.active:
                locked.failing_since = None
                locked.deactivated_at = None
                locked.deactivated_reason = ""
            else:
                locked.deactivated_at = now
                locked.deactivated_reason = f"Turned off by {actor.name}"[:200]
                _cancel_open_deliveries(locked, now)
        changes = audit.diff(before, _snapshot(locked))
        if url_changed and "url" not in changes:
            # Only the origin is shown; say the URL changed even when its origin did not.
            changes["url"] = {"before": before["url"], "after": f"{before['url']} (changed)"}
        if changes:
            _touch(locked, actor, now)
            locked.save()
            _record(actor, "webhook.updated", locked, changes)
    return locked


def rotate_secret(
    *,
    actor: Principal,
    endpoint: WebhookEndpoint,
    expected_version: int | None = None,
    overlap: timedelta = DEFAULT_OVERLAP,
    now: datetime | None = None,
) -> IssuedEndpoint:
    """Give the endpoint a new signing secret, answered this once. During ``overlap`` (0 to 7
    days) the old secret signs too, so receivers can switch without missing an event.
    Needs ``api.webhooks.write``."""
    _require_visible(actor, endpoint)
    _require(actor, "write")
    if overlap < timedelta(0) or overlap > MAX_OVERLAP:
        raise ValidationError({"overlap": ["An overlap is between 0 and 7 days."]})
    now = now or timezone.now()
    secret = signing.generate_secret()
    with transaction.atomic():
        locked = _lock(endpoint, expected_version)
        old_partial = locked.secret_partial
        if overlap > timedelta(0):
            locked.previous_secret_ciphertext = locked.secret_ciphertext
            locked.previous_secret_expires_at = now + overlap
        else:
            locked.previous_secret_ciphertext = ""
            locked.previous_secret_expires_at = None
        locked.secret_ciphertext = signing.encrypt(secret)
        locked.secret_partial = signing.partial(secret)
        _touch(locked, actor, now)
        locked.save()
        _record(
            actor,
            "webhook.secret_rotated",
            locked,
            audit.diff(
                {"secret_hint": old_partial},
                {"secret_hint": locked.secret_partial, "old_secret_valid_until": now + overlap},
            ),
        )
    return IssuedEndpoint(locked, secret)


def delete_endpoint(
    *, actor: Principal, endpoint: WebhookEndpoint, expected_version: int | None = None
) -> None:
    """Delete an endpoint with its deliveries. Needs ``api.webhooks.delete``."""
    _require_visible(actor, endpoint)
    _require(actor, "delete")
    with transaction.atomic():
        locked = _lock(endpoint, expected_version)
        snapshot = _snapshot(locked)
        endpoint_id = locked.pk
        locked.delete()
        locked.pk = endpoint_id  # for the event: it names the endpoint that was deleted
        _record(actor, "webhook.deleted", locked, audit.diff(snapshot, {}))


def secrets_in_use(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one during a
    rotation's overlap."""
    in_use = [signing.decrypt(endpoint.secret_ciphertext)]
    if (
        endpoint.previous_secret_ciphertext
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        in_use.append(signing.decrypt(endpoint.previous_secret_ciphertext))
    return in_use


# Deliveries -----------------------------------------------------------------------------------


def _require_active(endpoint: WebhookEndpoint) -> None:
    if not endpoint.active:
        raise ValidationError({"active": ["Turn the endpoint on first: it sends nothing now."]})


def send_test_event(
    *, actor: Principal, endpoint: WebhookEndpoint, now: datetime | None = None
) -> WebhookDelivery:
    """Queue a ``webhook.test`` event for this endpoint alone (whatever its events), for the
    worker to send; the delivery names who asked (it changes nothing, so it is not an audit
    event). Needs ``api.webhooks.write``."""
    _require_visible(actor, endpoint)
    _require(actor, "write")
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(endpoint, None)
        _require_active(locked)
        delivery = WebhookDelivery.objects.create(
            endpoint=locked,
            message_id=payloads.new_message_id(),
            event_type=event_types.TEST_EVENT,
            body=payloads.ping_body(
                endpoint_id=locked.pk,
                organization=locked.organization,
                requested_by=actor.name,
                at=now,
            ),
            next_attempt_at=now,
            created_at=now,
            requested_by_name=actor.name[:150],
        )
    return delivery


def redeliver(
    *, actor: Principal, delivery: WebhookDelivery, now: datetime | None = None
) -> WebhookDelivery:
    """Queue a finished delivery again: same body and ``webhook-id`` (receivers that dedupe
    by id see it as the same message), freshly signed. Needs ``api.webhooks.write``."""
    _require_visible(actor, delivery.endpoint)
    _require(actor, "write")
    now = now or timezone.now()
    with transaction.atomic():
        endpoint = _lock(delivery.endpoint, None)
        _require_active(endpoint)
        try:
            original = WebhookDelivery.objects.select_for_update().get(
                pk=delivery.pk, endpoint=endpoint
            )
        except WebhookDelivery.DoesNotExist:
            raise NotFound("No such delivery.") from None
        if original.is_open:
            raise ValidationError(
                {"delivery": ["This delivery is still queued; it will be attempted again."]}
            )
        if original.redeliveries.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.DELIVERING]
        ).exists():
            raise ValidationError({"delivery": ["This delivery is already queued again."]})
        again = WebhookDelivery.objects.create(
            endpoint=endpoint,
            message_id=original.message_id,
            event_type=original.event_type,
            audit_event_id=original.audit_event_id,
            body=original.body,
            next_attempt_at=now,
            created_at=now,
            redelivery_of=original,
            requested_by_name=actor.name[:150],
        )
        _record(
            actor,
            "webhook.redelivered",
            endpoint,
            audit.diff({}, {"message_id": original.message_id, "event_type": original.event_type}),
        )
    return again


# The worker's own changes ---------------------------------------------------------------------


def worker_principal(organization: Organization) -> Principal:
    """The actor the audit log names for what the delivery worker does on its own."""
    return Principal.operator(organization=organization, label=WORKER_LABEL)


def deactivate_if_failing(*, endpoint_id: int, now: datetime) -> bool:
    """Turn off an endpoint whose every attempt has failed for 24 hours, audit it and e-mail
    the organization's admins (the e-mail leaves after the commit). True if it was."""
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update(of=("self",))
            .select_related("organization")
            .filter(pk=endpoint_id)
            .first()
        )
        if (
            endpoint is None
            or not endpoint.active
            or endpoint.failing_since is None
            or endpoint.failing_since > now - FAILING_LIMIT
        ):
            return False
        actor = worker_principal(endpoint.organization)
        before = _snapshot(endpoint)
        endpoint.active = False
        endpoint.deactivated_at = now
        endpoint.deactivated_reason = "Every delivery failed for 24 hours."
        _touch(endpoint, actor, now)
        endpoint.save()
        _cancel_open_deliveries(endpoint, now)
        changes = audit.diff(before, _snapshot(endpoint))
        changes["failing_since"] = {"before": None, "after": audit.describe(endpoint.failing_since)}
        _record(actor, "webhook.deactivated", endpoint, changes)
        notices.queue_deactivation_notice(endpoint, shown_url(endpoint.url), now)
    return True
