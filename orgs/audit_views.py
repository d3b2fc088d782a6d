"""The audit log page of an organization and its CSV export.

Organization admins see every event of the organization; group admins see the events of the
groups they administer; anyone else gets a 403. Filters apply alike to the page and the export.
Pages go by position (``?before=`` / ``?after=`` cursors, orgs/audit_log.py), never by counting,
so a page costs the same in a log of a thousand events or of ten million.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from access import rules, visibility
from orgs import audit_log
from orgs import exports as audit_exports
from orgs.audit_log import AuditLog, EventFilter, InvalidCursor, Position
from orgs.console import OrganizationRequest, is_partial, organization_view, render_page_or_partial
from orgs.disclosed import disclose, refuse_secrets_in_query, secrets_in_query
from orgs.models import AuditEvent, AuditExport, Group, Organization, OrganizationMembership
from orgs.principals import Principal

PAGE_SIZE = 50
# Counting stops here, as on the token list: an exact total over millions of rows would cost
# more than every page a person reads.
COUNT_CAP = 10_000
# A name typed in a filter box matches at most this many tokens, actors or objects; beyond it
# the page says so and shows the events of the first ones.
RESOLVE_CAP = 20
# Events that record an object's name when it begins, changes name or ends: a handful per
# object, however long the log. Names typed in the token and object boxes are looked up in
# these (and in the objects that exist now), never in every event.
NAMING_SUFFIXES = (".created", ".renamed", ".added", ".deleted", ".removed")
TOKEN_NAMING_ACTIONS = ("token.created", "token.renamed", "token.deleted")
# Query parameters that say where a page starts, not what it shows.
POSITION_PARAMETERS = ("before", "after", "count")
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
# The last line of every export, so that a reader can tell a whole file from a cut one.
END_MARKER = "# end of export: {count} events"
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ACTOR_KINDS = [
    ("", "Anyone"),
    ("human", "Person"),
    ("technical", "Technical user (token)"),
    ("operator", "Operator"),
]


def action_choices(actions: list[str]) -> list[Any]:
    """Any action, then each family (``token.``: every token action) with its actions."""
    families: dict[str, list[str]] = {}
    for action in actions:
        family, dot, _rest = action.partition(".")
        families.setdefault(family + dot if dot else action, []).append(action)
    choices: list[Any] = [("", "Any action")]
    for family, members in families.items():
        if family.endswith("."):
            options = [(family, f"every {family.rstrip('.')} action")]
            choices.append((family.rstrip("."), options + [(name, name) for name in members]))
        else:
            choices.append((family, family))
    return choices


class AuditFilterForm(forms.Form):
    actor = forms.CharField(
        required=False,
        max_length=150,
        label="Actor",
        help_text="Name or username of a person, a token's name, or an operator.",
    )
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
        help_text="Part of its name, or type:id (api_token:42, group:3).",
    )
    group = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Group")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="Until", widget=forms.DateInput({"type": "date"}))

    def __init__(
        self, *args: Any, actions: list[str], groups: list[tuple[int, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        action, group = self.fields["action"], self.fields["group"]
        assert isinstance(action, forms.ChoiceField) and isinstance(group, forms.ChoiceField)
        action.choices = action_choices(actions)
        group.choices = [("", "Any group"), *groups]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
            cleaned.pop("until", None)
        return cleaned

    def event_filter(
        self, visible: QuerySet[AuditEvent], organization: Organization
    ) -> EventFilter:
        """The filter the valid fields describe (an invalid one is ignored, and its error
        shown), names typed in the boxes resolved to ids first."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        event_filter = EventFilter()
        if data.get("actor"):
            event_filter = _actors_named(data["actor"], organization, visible, event_filter)
        if data.get("actor_kind"):
            event_filter = _with(
                event_filter, actor_kinds=audit_log.by_actor_kind(data["actor_kind"])
            )
        if data.get("token"):
            event_filter = _tokens_named(data["token"], organization, visible, event_filter)
        if data.get("action"):
            actions = audit_log.actions_matching(data["action"])
            event_filter = _with(event_filter, actions=audit_log.by_actions(actions))
        if data.get("object"):
            event_filter = _objects_named(
                data["object"].strip(), organization, visible, event_filter
            )
        if data.get("group") is not None:
            event_filter = _with(event_filter, groups=audit_log.by_group_ids([data["group"]]))
        if data.get("since"):
            since = datetime.combine(data["since"], time.min, UTC)
            event_filter = _with(event_filter, since=since)
        # Until the day after, exclusive; the calendar's last day has no day after.
        if data.get("until") and data["until"] < date.max:
            until = datetime.combine(data["until"] + timedelta(days=1), time.min, UTC)
            event_filter = _with(event_filter, until=until)
        return event_filter


def _with(event_filter: EventFilter, **changes: Any) -> EventFilter:
    return replace(event_filter, **changes)


def _capped(values: list[Any], what: str, text: str) -> tuple[list[Any], tuple[str, ...]]:
    """The first RESOLVE_CAP values, and a note for the reader if there were more."""
    if len(values) <= RESOLVE_CAP:
        return values, ()
    return values[:RESOLVE_CAP], (
        f"“{text}” matches more than {RESOLVE_CAP} {what}; the events of the first "
        f"{RESOLVE_CAP} are shown. Type more of the name to narrow it.",
    )


def _first_distinct(values: QuerySet) -> list[Any]:
    """The first RESOLVE_CAP + 1 distinct values, read from the naming events.

    Neither ORDER BY nor DISTINCT in SQL: either would invite the planner to walk an index
    that sorts by object (every event about tokens) instead of the one by action (only the
    naming events).
    """
    found: dict[Any, None] = {}
    for value in values.iterator(chunk_size=500):
        found[value] = None
        if len(found) > RESOLVE_CAP:
            break
    return list(found)


def _actors_named(
    text: str, organization: Organization, visible: QuerySet[AuditEvent], event_filter: EventFilter
) -> EventFilter:
    """People of the organization and technical users of its tokens whose name contains the
    text, and operators who acted here under such a name."""
    people = OrganizationMembership.objects.filter(organization=organization).filter(
        Q(user__username__icontains=text)
        | Q(user__display_name__icontains=text)
        | Q(user__first_name__icontains=text)
        | Q(user__last_name__icontains=text)
        | Q(user__email__icontains=text)
    )
    # Tokens live above this app (tokens/): reached through their relation, not imported.
    token_users = organization.api_tokens.filter(user__isnull=False).filter(
        Q(name__icontains=text) | Q(user__display_name__icontains=text)
    )
    user_ids = list(
        dict.fromkeys(
            [*people.order_by("user_id").values_list("user_id", flat=True)[: RESOLVE_CAP + 1]]
            + [*token_users.order_by("name").values_list("user_id", flat=True)[: RESOLVE_CAP + 1]]
        )
    )
    # Operators have no account in the organization; their events are few, so their names
    # are read from the events themselves.
    operators = list(
        visible.filter(actor_kind="operator", actor_name__icontains=text)
        .order_by("actor_name")
        .values_list("actor_name", flat=True)
        .distinct()[: RESOLVE_CAP + 1]
    )
    found, notes = _capped(
        [("user", pk) for pk in user_ids] + [("operator", name) for name in operators],
        "actors",
        text,
    )
    alternatives = audit_log.by_actor_ids([pk for kind, pk in found if kind == "user"]) + tuple(
        Q(actor_kind="operator", actor_name=name) for kind, name in found if kind == "operator"
    )
    if not alternatives:
        notes = (f"No actor of this organization is named like “{text}”.",)
    return _with(event_filter, actors=alternatives).with_notes(*notes)


def _tokens_named(
    text: str, organization: Organization, visible: QuerySet[AuditEvent], event_filter: EventFilter
) -> EventFilter:
    """Tokens whose name or partial token contains the text: live ones, and deleted ones by the
    name their creation or last renaming recorded."""
    live = (
        organization.api_tokens.filter(Q(name__icontains=text) | Q(partial_token__icontains=text))
        .order_by("name", "pk")
        .values_list("pk", flat=True)[: RESOLVE_CAP + 1]
    )
    recorded = _first_distinct(
        visible.filter(action__in=TOKEN_NAMING_ACTIONS, object_repr__icontains=text)
        .order_by()
        .values_list("object_id", flat=True)
    )
    token_ids = list(dict.fromkeys([*live, *(int(pk) for pk in recorded if pk.isdigit())]))
    token_ids, notes = _capped(token_ids, "tokens", text)
    if not token_ids:
        notes = (f"No token of this organization is named like “{text}”.",)
    return _with(event_filter, tokens=audit_log.by_token_ids(token_ids)).with_notes(*notes)


def _objects_named(
    text: str, organization: Organization, visible: QuerySet[AuditEvent], event_filter: EventFilter
) -> EventFilter:
    """``type:id`` names one object; other text matches objects by their name now (groups,
    IP filters, members) or the name their creation, renaming or removal recorded."""
    from policies.models import IpFilter

    object_type, separator, object_id = text.partition(":")
    if separator and object_type and object_id:
        return _with(event_filter, objects=audit_log.by_objects([(object_type, object_id)]))
    live = [
        *(
            ("group", str(pk))
            for pk in Group.objects.filter(organization=organization, name__icontains=text)
            .order_by("name")
            .values_list("pk", flat=True)[: RESOLVE_CAP + 1]
        ),
        *(
            ("ip_filter", str(pk))
            for pk in IpFilter.objects.filter(organization=organization, name__icontains=text)
            .order_by("name")
            .values_list("pk", flat=True)[: RESOLVE_CAP + 1]
        ),
    ]
    naming = [name for name in audit_log.action_vocabulary() if name.endswith(NAMING_SUFFIXES)]
    recorded = _first_distinct(
        visible.filter(action__in=naming, object_repr__icontains=text)
        .order_by()
        .values_list("object_type", "object_id")
    )
    objects, notes = _capped(list(dict.fromkeys([*live, *recorded])), "objects", text)
    if not objects:
        notes = (f"No object is named like “{text}”.",)
    return _with(event_filter, objects=audit_log.by_objects(objects)).with_notes(*notes)


def visible_events(principal: Principal) -> QuerySet[AuditEvent]:
    """The events the principal may read; PermissionDenied if it administers nothing."""
    if not rules.may_read_audit(principal):
        raise PermissionDenied("Only organization and group admins read the audit log.")
    return AuditEvent.objects.visible_to(principal)


def _group_choices(principal: Principal) -> list[tuple[int, str]]:
    groups = Group.objects.filter(visibility.groups_with_readable_events(principal))
    return list(groups.order_by("name").values_list("pk", "name"))


def filtered_log(
    principal: Principal, organization: Organization, query: QueryDict
) -> tuple[AuditFilterForm, AuditLog]:
    """The events a principal may read, narrowed by the filters of a query string (page
    positions ignored): for the page, its export, and an export built in the background."""
    events = visible_events(principal)
    filters = query.copy()
    for name in POSITION_PARAMETERS:
        filters.pop(name, None)
    form = AuditFilterForm(
        filters or None,
        actions=audit_log.action_vocabulary(),
        groups=_group_choices(principal),
    )
    event_filter = EventFilter()
    if form.is_bound:
        form.is_valid()
        event_filter = form.event_filter(events, organization)
    return form, AuditLog(events, event_filter)


def _filtered(request: OrganizationRequest) -> tuple[AuditFilterForm, AuditLog]:
    return filtered_log(request.principal, request.organization, request.GET)


def _refuse_secrets(request: OrganizationRequest) -> HttpResponse | None:
    """A token's secret typed into a filter box ("Token" asks for a partial token, and a whole
    one is what people have at hand) is not searched for, shown back in the page and its links,
    or kept in an export's query: it is treated as leaked, and the browser sent to the log
    without it."""
    url = reverse("audit:log", kwargs={"org_slug": request.organization.slug})
    return refuse_secrets_in_query(request, request.principal, url)


def _query(base: QueryDict, **extra: str) -> str:
    query = base.copy()
    for name in POSITION_PARAMETERS:
        query.pop(name, None)
    for name, value in extra.items():
        query[name] = value
    return "?" + query.urlencode() if query else "?"


def _position(request: HttpRequest, name: str) -> Position | None:
    value = request.GET.get(name)
    return None if value is None else audit_log.decode_cursor(value)


@require_GET
@organization_view
def log(request: OrganizationRequest) -> HttpResponse:
    """The organization's audit log, newest first, filtered, one page at a time by cursor."""
    refused = _refuse_secrets(request)
    if refused is not None:
        return refused
    form, events = _filtered(request)
    partial = is_partial(request)
    context: dict[str, Any] = {
        "form": form,
        "section": "audit",
        "now": timezone.now(),
        "notes": events.filter.notes,
        "newest_url": _query(request.GET),
        "count_url": _query(request.GET, count="1"),
        "export_query": _query(request.GET),
        "count_cap": f"{COUNT_CAP:,}",
    }
    if request.GET.get("count"):
        count = events.capped_count(COUNT_CAP)
        context.update(count=count, count_is_capped=count > COUNT_CAP)
        if partial:
            return render(request, "audit/log.html#count", context)
    status = 200
    try:
        before, after = _position(request, "before"), _position(request, "after")
        if before is not None and after is not None:
            raise InvalidCursor("A page starts either before or after an event, not both.")
    except InvalidCursor as error:
        context["cursor_error"] = str(error)
        page = None
        status = 400
    else:
        page = events.page(before=before, after=after, size=PAGE_SIZE)
        if page.newer_cursor:
            context["newer_url"] = _query(request.GET, after=page.newer_cursor)
        if page.older_cursor:
            context["older_url"] = _query(request.GET, before=page.older_cursor)
        context["first_page"] = before is None and after is None
    context["page"] = page
    return render_page_or_partial(request, "audit/log.html", "results", context, status=status)


def neutralise(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


# What the export reads of each event: occurred_at and id first (the position of the next
# chunk), then the CSV's columns.
EXPORT_FIELDS = (
    "occurred_at",
    "id",
    "actor_name",
    "actor_kind",
    "via_token_name",
    "via_token_partial",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "group_id",
    "address",
    "changes",
)


def csv_lines(events: AuditLog) -> Iterator[str]:
    """The CSV, a chunk of events at a time (constant memory at any size), ending with the
    END_MARKER line that a reader checks to know the file is whole."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    written = 0
    for chunk in events.chunks(fields=EXPORT_FIELDS):
        lines = []
        for occurred_at, _id, *cells, changes in chunk:
            row = [occurred_at.astimezone(UTC).isoformat(), *cells]
            row.append(json.dumps(changes, sort_keys=True) if changes else "")
            lines.append(writer.writerow([neutralise(cell) for cell in row]))
        # One piece of the response per chunk, not per row: the server writes fewer, larger
        # blocks.
        yield "".join(lines)
        written += len(chunk)
    yield END_MARKER.format(count=written) + "\r\n"


@require_GET
@organization_view
def export(request: OrganizationRequest) -> HttpResponseBase:
    """The filtered events as CSV (all pages, newest first), streamed; the last line is
    ``# end of export: N events``."""
    refused = _refuse_secrets(request)
    if refused is not None:
        return refused
    form, events = _filtered(request)
    if form.is_bound and form.errors:
        message = "; ".join(
            f"{name}: {' '.join(map(str, errors))}" for name, errors in form.errors.items()
        )
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    limit = settings.KEYWARD_EXPORT_STREAM_LIMIT
    if events.capped_count(limit) > limit:
        # Too long to stream before a server's request timeout cuts it: offer to prepare it.
        return _exports_page(request, offer_query=_query(request.GET)[1:])
    organization = request.organization
    response = StreamingHttpResponse(csv_lines(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().astimezone(UTC).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{organization.slug}-{stamp}.csv"'
    )
    return response


def _exports_page(request: OrganizationRequest, offer_query: str | None = None) -> HttpResponse:
    principal: Principal = request.principal
    mine = AuditExport.objects.visible_to(principal).order_by("-created_at", "-id")[:20]
    context = {
        "section": "audit",
        "exports": mine,
        "offer_query": offer_query,
        "stream_limit": f"{settings.KEYWARD_EXPORT_STREAM_LIMIT:,}",
        "waiting": any(export.status in ("pending", "building") for export in mine),
    }
    return render_page_or_partial(request, "audit/exports.html", "export-list", context)


@require_http_methods(["GET", "POST"])
@organization_view
def exports(request: OrganizationRequest) -> HttpResponse:
    """The person's audit exports prepared in the background; POST asks for one."""
    visible_events(request.principal)
    if request.method == "POST":
        pasted = secrets_in_query(QueryDict(request.POST.get("query", "")))
        if pasted:
            # Never kept in the export's query (nor shown in the list of exports).
            disclose(request.principal, pasted)
            messages.error(
                request,
                "An export's filter cannot contain an API token. If it was a real token, it "
                "has been treated as leaked.",
            )
            return redirect("audit:exports", org_slug=request.organization.slug)
        try:
            audit_exports.request_export(
                actor=request.principal,
                organization=request.organization,
                query=request.POST.get("query", ""),
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, "The export is being prepared; it appears here when it is ready."
            )
        return redirect("audit:exports", org_slug=request.organization.slug)
    return _exports_page(request)


@require_GET
@organization_view
def export_download(request: OrganizationRequest, export_id: int) -> HttpResponseBase:
    """A prepared export's file, for the person who asked for it, until it expires."""
    visible_events(request.principal)
    export = get_object_or_404(
        AuditExport.objects.visible_to(request.principal),
        pk=export_id,
        status="ready",
        expires_at__gt=timezone.now(),
    )
    path = audit_exports.path_of(export)
    if not path.exists():
        raise Http404("The file of this export is gone.")
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=path.name, content_type="text/csv"
    )
