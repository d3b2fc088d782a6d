"""The outbox: a delivery row per matching endpoint, written in the audit event's transaction.

A change that rolls back takes its deliveries with it; a change that commits has them on disk
before anything is sent, so a crash afterwards loses nothing.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection, models

from orgs.columns import concrete_field
from orgs.models import AuditEvent, Organization
from webhooks import events as event_types
from webhooks import payloads
from webhooks.models import WebhookDelivery, WebhookEndpoint


@cache
def endpoints_sql() -> str:
    """The active endpoints of an organization, with their patterns. Written once from the
    model's metadata: it runs with every audit event, and building it through the ORM cost
    several times what running it does."""
    quote = connection.ops.quote_name
    meta = WebhookEndpoint._meta

    def column(name: str) -> str:
        return quote(concrete_field(WebhookEndpoint, name).column)

    return (
        f"SELECT {column('id')}, {column('events')} FROM {quote(meta.db_table)} "  # noqa: S608
        f"WHERE {column('organization')} = %s AND {column('active')} = %s"
    )


def has_endpoints(organization: Organization) -> bool:
    """Whether any active endpoint of the organization may want its events (one indexed
    query), so that writers of many events know whether the events' ids are needed."""
    return WebhookEndpoint.objects.filter(organization_id=organization.pk, active=True).exists()


def enqueue_event(event: AuditEvent, organization: Organization) -> list[WebhookDelivery]:
    return enqueue_events([event], organization)


def read_endpoints(organization: Organization) -> list[tuple[Any, Any]]:
    """The organization's active endpoints as rows of ``endpoints_sql``: (id, patterns as the
    database gives them)."""
    with connection.cursor() as cursor:
        cursor.execute(endpoints_sql(), [organization.pk, True])
        return cursor.fetchall()


def enqueue_events(
    events: list[AuditEvent],
    organization: Organization,
    *,
    endpoints: list[tuple[Any, Any]] | None = None,
) -> list[WebhookDelivery]:
    """Queue each event (all of one organization) for every active endpoint of the
    organization that subscribes to it.

    One indexed query when the organization has no endpoint (the usual case), none when the
    caller read ``endpoints`` in the same transaction (``read_endpoints``, or with the
    event's insert: ``audit.record``), and one insert for all the deliveries otherwise,
    however many events.
    """
    rows = read_endpoints(organization) if endpoints is None else endpoints
    # The patterns as the ORM reads them: the field's conversion, given the field's column.
    events_field = WebhookEndpoint._meta.get_field("events")
    assert isinstance(events_field, models.JSONField)
    events_column = events_field.get_col(WebhookEndpoint._meta.db_table)
    endpoints = [
        (endpoint_id, events_field.from_db_value(patterns, events_column, connection))
        for endpoint_id, patterns in rows
    ]
    if not endpoints:
        return []
    deliveries: list[WebhookDelivery] = []
    for event in events:
        subscribed = [
            endpoint_id
            for endpoint_id, patterns in endpoints
            if event_types.matches(patterns, event.action)
        ]
        if not subscribed:
            continue
        body = payloads.event_body(event, organization.slug)
        deliveries.extend(
            WebhookDelivery(
                endpoint_id=endpoint_id,
                message_id=payloads.new_message_id(),
                event_type=event.action,
                audit_event_id=event.pk,
                body=body,
                next_attempt_at=event.occurred_at,
                created_at=event.occurred_at,
            )
            for endpoint_id in subscribed
        )
    return WebhookDelivery.objects.bulk_create(deliveries, batch_size=1000)
