"""The e-mail outbox: every message Keyward sends, written in the transaction of the change it
reports and sent afterwards, outside any transaction."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class EmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutgoingEmail(models.Model):
    """One message to one or more recipients. Never carries a secret."""

    created_at = models.DateTimeField(default=timezone.now)
    purpose = models.CharField(max_length=60, help_text="What it reports, e.g. expiry_reminder.")
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=250)
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender that claimed the message; another sender leaves it alone until then, and takes
    # it over after (the first one died mid-send).
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="email_due",
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="email_sent_has_time"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} -> {', '.join(self.recipients)} ({self.status})"
