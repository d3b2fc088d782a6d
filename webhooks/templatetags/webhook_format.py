"""Formatting for webhook pages: an endpoint's state, a delivery's status, a subscription."""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

register = template.Library()

_DELIVERY_BADGES: dict[str, tuple[str, str]] = {
    DeliveryStatus.PENDING: ("badge-expired", "Pending"),
    DeliveryStatus.DELIVERING: ("badge-neutral", "Delivering"),
    DeliveryStatus.SUCCEEDED: ("badge-active", "Succeeded"),
    DeliveryStatus.FAILED: ("badge-revoked", "Failed"),
}


@register.simple_tag
def endpoint_state(endpoint: WebhookEndpoint) -> str:
    """``Active``, ``Failing`` (every attempt failing) or ``Off``, as a badge."""
    if not endpoint.active:
        css, label = "badge-neutral", "Off"
    elif endpoint.failing_since is not None:
        css, label = "badge-expired", "Failing"
    else:
        css, label = "badge-active", "Active"
    return format_html('<span class="badge {}">{}</span>', css, label)


@register.simple_tag
def delivery_status(delivery: WebhookDelivery) -> str:
    css, label = _DELIVERY_BADGES.get(delivery.status, ("badge-neutral", delivery.status))
    if delivery.status == DeliveryStatus.PENDING and delivery.attempts:
        label = "Retrying"
    return format_html('<span class="badge {}">{}</span>', css, label)


@register.simple_tag
def event_list(patterns: list[str]) -> str:
    """A subscription as code items: ``*`` reads "every event"."""
    if "*" in patterns:
        return mark_safe("every event <code>*</code>")
    return format_html_join(" ", "<code>{}</code>", ((pattern,) for pattern in patterns))
