"""Formatting for token pages: expiry, last use, relative times, access, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html

from orgs.durations import format_duration
from tokens.models import ApiToken, TokenRole, TokenStatus

register = template.Library()

_UNITS = (
    (timedelta(days=365), "year"),
    (timedelta(days=1), "day"),
    (timedelta(hours=1), "hour"),
    (timedelta(minutes=1), "min"),
)


def _amount(delta: timedelta) -> str:
    # Rounded to the nearest unit, not down: a 3-day token just created expires "in 3 days"
    # (2 days 23 h 59 min from the moment the page is drawn), as a person counts; a unit is
    # used from 95% of it on, so 23 h 59 min reads "1 day".
    for size, unit in _UNITS:
        if delta >= size * 0.95:
            count = max(1, int(delta / size + 0.5))
            plural = "s" if count != 1 and unit != "min" else ""
            return f"{count} {unit}{plural}"
    return ""


def relative_text(moment: datetime, now: datetime | None = None) -> str:
    """``in 29 days``, ``3 min ago``, ``just now``."""
    now = now or timezone.now()
    delta = moment - now
    amount = _amount(abs(delta))
    if not amount:
        return "just now" if delta <= timedelta(0) else "in less than a minute"
    return f"in {amount}" if delta > timedelta(0) else f"{amount} ago"


def utc_text(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


@register.simple_tag
def timestamp(moment: datetime | None, empty: str = "never") -> str:
    """A ``<time>`` in UTC that keyward.js shows in the viewer's zone (UTC stays on hover)."""
    if moment is None:
        return empty
    utc = moment.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        utc.isoformat().replace("+00:00", "Z"),
        utc_text(moment),
        utc_text(moment),
    )


@register.simple_tag
def relative(moment: datetime | None, empty: str = "never") -> str:
    if moment is None:
        return empty
    return relative_text(moment)


@register.simple_tag
def when(moment: datetime | None, empty: str = "never") -> str:
    """``3 min ago · <time>2026-12-22 14:00 UTC</time>``."""
    if moment is None:
        return empty
    return format_html("{} · {}", relative_text(moment), timestamp(moment))


@register.simple_tag
def expiry(token: ApiToken) -> str:
    """``in 29 days · 2026-12-22 14:00 UTC``, ``expired 2 min ago · …`` or ``never``."""
    if token.expires_at is None:
        return "never"
    if token.is_expired():
        return format_html(
            "expired {} · {}", relative_text(token.expires_at), timestamp(token.expires_at)
        )
    return format_html("{} · {}", relative_text(token.expires_at), timestamp(token.expires_at))


@register.simple_tag
def last_use(token: ApiToken) -> str:
    """``3 min ago from 203.0.113.7`` or ``never``."""
    if token.last_used_at is None:
        return "never"
    if token.last_used_address:
        return format_html(
            '<span title="{}">{}</span> from <span class="mono">{}</span>',
            utc_text(token.last_used_at),
            relative_text(token.last_used_at),
            token.last_used_address,
        )
    return format_html(
        '<span title="{}">{}</span>',
        utc_text(token.last_used_at),
        relative_text(token.last_used_at),
    )


@register.simple_tag
def inactive_reason(token: ApiToken) -> str:
    """Why a token no longer works: ``Revoked 2 days ago by alice: “reason”`` or
    ``Expired 3 days ago``."""
    if token.status == TokenStatus.REVOKED and token.revoked_at is not None:
        by = token.revoked_by_name or "someone"
        if token.revoked_reason:
            return format_html(
                "Revoked {} by {}: “{}”", when(token.revoked_at), by, token.revoked_reason
            )
        return format_html("Revoked {} by {}, no reason given", when(token.revoked_at), by)
    if token.expires_at is not None:
        return format_html("Expired {}", when(token.expires_at))
    return ""


@register.filter
def access(token: ApiToken) -> str:
    """``Admin``, ``Member`` or ``5 permissions``."""
    if token.role == TokenRole.CUSTOM:
        count = len(token.permissions)
        return f"{count} permission{'s' if count != 1 else ''}"
    return TokenRole(token.role).label


@register.simple_tag
def status_badge(token: ApiToken) -> str:
    status = token.display_status()
    badge = format_html('<span class="badge badge-{}">{}</span>', status, status.capitalize())
    if token.leaked_at is not None:
        badge = format_html('{} <span class="badge badge-leaked">Leaked</span>', badge)
    return badge


@register.simple_tag
def leak_where(token: ApiToken) -> str:
    """Where a leaked token was seen: a link for a web address, text for anything else (a
    reporter's ``javascript:`` never becomes a link)."""
    where = token.leaked_where
    if not where:
        return ""
    if where.startswith(("https://", "http://")):
        return format_html('<a href="{}" rel="noopener noreferrer nofollow">{}</a>', where, where)
    return format_html("{}", where)


@register.filter
def duration(value: timedelta | None) -> str:
    return format_duration(value) if value is not None else ""


@register.filter
def lifetime(token: ApiToken) -> str:
    """How long the token was created to live: ``90 days``."""
    if token.expires_at is None:
        return ""
    span = token.expires_at - token.created_at
    if span < timedelta(minutes=1):
        return ""
    return format_duration(timedelta(minutes=round(span.total_seconds() / 60)))


@register.filter
def resource_label(resource: str) -> str:
    """``api-tokens`` → ``API tokens``."""
    words = resource.replace("-", " ").replace("ip ", "IP ").replace("api ", "API ")
    return words[:1].upper() + words[1:]


EVENT_LABELS = {
    "token.created": "Created",
    "token.regenerated": "Regenerated",
    "token.revoked": "Revoked",
    "token.restored": "Restored",
    "token.deleted": "Deleted",
    "token.renamed": "Renamed",
    "token.described": "Description changed",
    "token.permissions_changed": "Permissions changed",
    "token.leaked": "Leaked",
    "token.expiring": "Expiry reminder sent",
}


@register.filter
def event_label(action: str) -> str:
    """``token.permissions_changed`` → ``Permissions changed``; other actions as they are."""
    return EVENT_LABELS.get(action, action)


@register.filter
def changed_fields(changes: dict[str, Any]) -> str:
    """The names of what an audit event changed: ``role, permissions``."""
    hidden = {"grace_seconds"}
    return ", ".join(key.replace("_", " ") for key in changes if key not in hidden)
