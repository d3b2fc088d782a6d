"""The audit log page of an organization and its CSV export.

Organization admins see every event of the organization; group admins see the events of the
groups they administer; anyone else gets a 403. Filters apply alike to the page and the export.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from access import rules
from orgs.console import organization_view
from orgs.models import AuditEvent
from orgs.principals import Principal

PAGE_SIZE = 50
CSV_COLUMNS = (
    "occurred_at",
    "actor",
    "actor_kind",
    "via_token",
    "via_token_partial",
    "action",
    "object_type",
    "object_id",
    "object",
    "group_id",
    "address",
    "changes",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ACTOR_KINDS = [
    ("", "Anyone"),
    ("human", "Person"),
    ("technical", "Technical user (token)"),
    ("operator", "Operator"),
]


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150, label="Actor")
    actor_kind = forms.ChoiceField(required=False, choices=ACTOR_KINDS, label="Kind of actor")
    token = forms.CharField(
        required=False,
        max_length=100,
        label="Token",
        help_text="Name or partial token, as actor or as object.",
    )
    action = forms.ChoiceField(required=False, label="Action")
    object = forms.CharField(
        required=False,
        max_length=200,
        label="Object",
        help_text="Part of its name, a type (api_token, user, group…) or type:id.",
    )
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="Until", widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args: Any, actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "Any action")] + [(name, name) for name in actions]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
            cleaned.pop("until", None)
        return cleaned

    def apply(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        """Narrow the events by the fields that are valid (an invalid one is ignored, and its
        error shown)."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        if data.get("actor"):
            events = events.filter(actor_name__icontains=data["actor"])
        if data.get("actor_kind"):
            events = events.filter(actor_kind=data["actor_kind"])
        if data.get("token"):
            text = data["token"]
            events = events.filter(
                Q(via_token_name__icontains=text)
                | Q(via_token_partial__icontains=text)
                | Q(object_type="api_token", object_repr__icontains=text)
            )
        if data.get("action"):
            events = events.filter(action=data["action"])
        if data.get("object"):
            text = data["object"].strip()
            object_type, separator, object_id = text.partition(":")
            if separator and object_type and object_id:
                events = events.filter(object_type=object_type, object_id=object_id)
            else:
                events = events.filter(Q(object_repr__icontains=text) | Q(object_type=text))
        if data.get("since"):
            events = events.filter(occurred_at__gte=datetime.combine(data["since"], time.min, UTC))
        # Until the day after, exclusive; the calendar's last day has no day after.
        if data.get("until") and data["until"] < date.max:
            end = datetime.combine(data["until"] + timedelta(days=1), time.min, UTC)
            events = events.filter(occurred_at__lt=end)
        return events


def visible_events(principal: Principal) -> QuerySet[AuditEvent]:
    """The events the principal may read; PermissionDenied if it administers nothing."""
    if not rules.may_read_audit(principal):
        raise PermissionDenied("Only organization and group admins read the audit log.")
    return AuditEvent.objects.visible_to(principal)


def _filtered(request: HttpRequest) -> tuple[AuditFilterForm, QuerySet[AuditEvent]]:
    events = visible_events(request.principal)  # type: ignore[attr-defined]
    actions = sorted(set(events.order_by().values_list("action", flat=True).distinct()))
    form = AuditFilterForm(request.GET or None, actions=actions)
    if form.is_bound:
        form.is_valid()
        events = form.apply(events)
    return form, events


@require_GET
@organization_view
def log(request: HttpRequest) -> HttpResponse:
    """The organization's audit log, newest first, filtered and paginated."""
    form, events = _filtered(request)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "section": "audit", "now": timezone.now()}
    template = "audit/log.html#results" if getattr(request, "htmx", False) else "audit/log.html"
    return render(request, template, context)


def neutralise(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _rows(events: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events.iterator(chunk_size=1000):
        yield writer.writerow(
            [
                neutralise(cell)
                for cell in (
                    event.occurred_at.astimezone(UTC).isoformat(),
                    event.actor_name,
                    event.actor_kind,
                    event.via_token_name,
                    event.via_token_partial,
                    event.action,
                    event.object_type,
                    event.object_id,
                    event.object_repr,
                    event.group_id,
                    event.address,
                    json.dumps(event.changes, sort_keys=True) if event.changes else "",
                )
            ]
        )


@require_GET
@organization_view
def export(request: HttpRequest) -> HttpResponse:
    """The filtered events as CSV (all pages), streamed."""
    form, events = _filtered(request)
    if form.is_bound and form.errors:
        message = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    organization = request.organization  # type: ignore[attr-defined]
    response = StreamingHttpResponse(_rows(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().astimezone(UTC).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{organization.slug}-{stamp}.csv"'
    )
    return response
