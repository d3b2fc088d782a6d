"""Audit exports too large to stream within a request: asked for in the console, built by the
worker (``manage.py deliver_webhooks``, which runs every background job) into a file, offered
to the person who asked for ``EXPORT_KEPT`` and then removed.

A streamed export that outlives the server's request timeout is cut off with its 200 already
sent (issue 22 found exports stopping near 900,000 events); past
``KEYWARD_EXPORT_STREAM_LIMIT`` events the console offers this instead.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.http import QueryDict
from django.utils import timezone

from access import rules
from orgs.models import AuditExport, ExportStatus, Organization
from orgs.principals import Principal

logger = logging.getLogger("keyward.exports")

EXPORT_KEPT = timedelta(days=7)
CLAIM = timedelta(minutes=30)
MAX_WAITING_PER_PERSON = 3


def directory() -> Path:
    path = Path(settings.KEYWARD_EXPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def path_of(export: AuditExport) -> Path:
    return directory() / export.file_name


def request_export(*, actor: Principal, organization: Organization, query: str) -> AuditExport:
    """Queue an export of the audit log as the actor may read it, filtered by ``query`` (the
    audit page's query string)."""
    rules.require_same_organization(actor, organization.pk)
    rules.require_read_audit(actor)
    if actor.user is None:
        raise ValidationError({"query": ["Exports are kept for a person; sign in to ask."]})
    waiting = AuditExport.objects.filter(
        organization=organization,
        requested_by=actor.user,
        status__in=[ExportStatus.PENDING, ExportStatus.BUILDING],
    ).count()
    if waiting >= MAX_WAITING_PER_PERSON:
        raise ValidationError(
            {"query": [f"You have {waiting} exports being prepared; wait for one to finish."]}
        )
    return AuditExport.objects.create(
        organization=organization, requested_by=actor.user, query=query[:2000]
    )


def _claim(now: datetime) -> AuditExport | None:
    with transaction.atomic():
        due = AuditExport.objects.filter(
            Q(status=ExportStatus.PENDING) | Q(status=ExportStatus.BUILDING, claimed_until__lt=now)
        ).order_by("created_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        export = due.select_related("organization", "requested_by").first()
        if export is None:
            return None
        export.status = ExportStatus.BUILDING
        export.claimed_until = now + CLAIM
        export.save(update_fields=["status", "claimed_until"])
    return export


@dataclass
class Built:
    exports: int = 0
    failed: int = 0


def build_due(*, now: datetime | None = None, limit: int = 1) -> Built:
    """Build up to ``limit`` waiting exports, each read by keyset chunks outside any
    transaction into a temporary file that becomes the export only when it is whole."""
    from orgs.audit_views import csv_lines, filtered_log  # the page's own filters and lines

    report = Built()
    for _ in range(limit):
        export = _claim(now or timezone.now())
        if export is None:
            break
        principal = Principal.for_member(export.requested_by, export.organization)
        try:
            rules.require_read_audit(principal)  # they may have lost the right meanwhile
            _form, events = filtered_log(principal, export.organization, QueryDict(export.query))
            name = f"audit-{export.organization.slug}-{export.pk}.csv"
            handle, temporary = tempfile.mkstemp(dir=directory(), suffix=".part")
            last = ""
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
                for piece in csv_lines(events):
                    file.write(piece)
                    last = piece
            os.replace(temporary, directory() / name)
            rows = int(last.split(":")[1].split()[0])  # the end marker says how many
        except Exception as error:
            logger.exception("Audit export %s failed", export.pk)
            AuditExport.objects.filter(pk=export.pk).update(
                status=ExportStatus.FAILED,
                finished_at=timezone.now(),
                expires_at=timezone.now() + EXPORT_KEPT,
                claimed_until=None,
                error=f"{type(error).__name__}: {error}"[:300],
            )
            report.failed += 1
            continue
        finished = timezone.now()
        AuditExport.objects.filter(pk=export.pk).update(
            status=ExportStatus.READY,
            file_name=name,
            row_count=rows,
            finished_at=finished,
            expires_at=finished + EXPORT_KEPT,
            claimed_until=None,
        )
        report.exports += 1
    return report


def remove_expired(*, now: datetime | None = None) -> int:
    """Delete exports past their time, with their files."""
    now = now or timezone.now()
    expired = list(AuditExport.objects.filter(expires_at__lt=now))
    for export in expired:
        if export.file_name:
            path_of(export).unlink(missing_ok=True)
        export.delete()
    return len(expired)
