"""Webhook endpoints, their deliveries (the outbox) with each attempt, and the e-mails about
them that wait to be sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q
from django.utils import timezone

from access import visibility
from orgs.models import Organization, User

if TYPE_CHECKING:
    from orgs.principals import Principal


class WebhookEndpointQuerySet(models.QuerySet["WebhookEndpoint"]):
    def visible_to(self, principal: Principal) -> WebhookEndpointQuerySet:
        """The endpoints the principal may see (``access.visibility.webhook_endpoints``)."""
        return self.filter(visibility.webhook_endpoints(principal))


class WebhookEndpoint(models.Model):
    """A URL an organization's audit events are sent to, signed with the endpoint's secret."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=300, blank=True)
    events = models.JSONField(default=list, help_text='Event types, "kind.*" or "*".')
    active = models.BooleanField(default=True)
    # The signing secret, encrypted (webhooks.signing); never stored in plain text.
    secret_ciphertext = models.TextField()
    secret_partial = models.CharField(max_length=20)
    # During a rotation's overlap the previous secret signs too, until it expires.
    previous_secret_ciphertext = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Since when every attempt has failed (None after any success); 24 hours deactivates.
    failing_since = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivated_reason = models.CharField(max_length=200, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    modified_at = models.DateTimeField(default=timezone.now)
    modified_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            # The one query every audit event costs: the organization's active endpoints.
            models.Index(fields=["organization", "active"], name="webhook_endpoint_org_active"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(previous_secret_ciphertext="", previous_secret_expires_at=None)
                | (~Q(previous_secret_ciphertext="") & Q(previous_secret_expires_at__isnull=False)),
                name="webhook_previous_secret_has_expiry",
            ),
        ]

    def __str__(self) -> str:
        return self.description or self.url[:80]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its first attempt or a retry
    DELIVERING = "delivering", "Delivering"  # claimed by a worker until next_attempt_at
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.DELIVERING)


class WebhookDelivery(models.Model):
    """One message for one endpoint: written in the transaction of the change it reports.

    ``body`` is exactly what is signed and sent, fixed when the change happened. While a worker
    holds it (``delivering``), ``next_attempt_at`` is the end of its lease: a worker that dies
    leaves it to be released and sent again then, so nothing is lost.
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    message_id = models.CharField(max_length=40, db_index=True)
    event_type = models.CharField(max_length=60)
    audit_event_id = models.BigIntegerField(null=True, blank=True)
    body = models.TextField()
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease = models.CharField(max_length=32, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="redeliveries"
    )
    requested_by_name = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The claim: the oldest due pending delivery is the first entry of its status's
            # range, however many deliveries are queued or finished around it. (A partial
            # index would be smaller, but neither SQLite nor a prepared PostgreSQL plan can
            # use one when the status comes as a bound parameter.)
            models.Index(fields=["status", "next_attempt_at", "id"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="webhook_delivery_status"
            ),
            models.CheckConstraint(
                condition=~Q(status="delivering") | ~Q(lease=""),
                name="webhook_delivery_claimed_has_lease",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class WebhookAttempt(models.Model):
    """One try at sending a delivery: when, the answer (or the error) and how long it took."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    succeeded = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
