"""API: webhook endpoints, their deliveries, test events, redelivery and secret rotation.

Translation only: rights, validation, versions and audit live in webhooks.services; sending is
the worker's (these operations only queue deliveries).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Path, Query, Router
from pydantic import ConfigDict

from access.errors import NotFound
from api.support import (
    MAX_ID,
    MAX_VERSION,
    CamelSchema,
    InputSchema,
    Page,
    Paging,
    api_fields,
    organization_of,
    paginate,
    permission_note,
    principal_of,
    requires,
    responses,
)
from orgs.principals import Principal
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

router = Router(tags=["webhooks"])

READ, WRITE, DELETE = services.READ, services.WRITE, services.DELETE
ObjectId = Path(..., ge=1, le=MAX_ID)
ROTATE_FIELDS = {"overlap": "overlapSeconds"}
SECRET_NOTE = (
    "Answers the signing secret in `secret` (`whsec_…`), shown this once "
    "(`Cache-Control: no-store`). "
)
ENDPOINT_EXAMPLE: dict[str, Any] = {
    "id": 7,
    "url": "https://siem.example.com/keyward",
    "description": "SIEM",
    "events": ["token.*", "security_policy.changed"],
    "active": True,
    "secretHint": "whsec_…Qx8=",
    "previousSecretValidUntil": None,
    "failingSince": None,
    "deactivatedAt": None,
    "deactivatedReason": "",
    "version": 2,
    "createdAt": "2026-11-02T09:00:00Z",
    "updatedAt": "2026-11-20T16:20:00Z",
}
DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": 981,
    "messageId": "msg_2Xk9vQ0m7L4fJc1pYw8RbA3s",
    "eventType": "token.revoked",
    "status": "succeeded",
    "attempts": 2,
    "nextAttemptAt": None,
    "lastAttemptAt": "2026-11-23T08:12:46Z",
    "lastStatusCode": 200,
    "lastError": "",
    "lastDurationMs": 84,
    "createdAt": "2026-11-23T08:12:40Z",
    "completedAt": "2026-11-23T08:12:46Z",
    "redeliveryOf": None,
    "requestedBy": "",
}


# Schemas --------------------------------------------------------------------------------------


class WebhookOut(CamelSchema):
    id: int
    url: str
    description: str
    events: list[str] = Field(description='Event types, "kind.*" (e.g. token.*) or "*".')
    active: bool
    secret_hint: str = Field(description="The secret's prefix and last characters.")
    previous_secret_valid_until: datetime | None = Field(
        description="During a rotation's overlap, until when the old secret signs too."
    )
    failing_since: datetime | None = Field(
        description="Since when every attempt has failed; 24 hours turns the endpoint off."
    )
    deactivated_at: datetime | None
    deactivated_reason: str
    version: int
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(json_schema_extra={"examples": [ENDPOINT_EXAMPLE]})


class WebhookSecretOut(WebhookOut):
    secret: str = Field(description="The signing secret, shown this once.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {**ENDPOINT_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+Wp1HN0Qx8="}
            ]
        }
    )


class WebhookCreateIn(InputSchema):
    url: str = Field(max_length=4000, description="https:// (http only for allowed hosts).")
    events: list[str] = Field(max_length=100, description='Event types, "kind.*" or "*".')
    description: str = Field("", max_length=1000)
    active: bool = True

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://siem.example.com/keyward",
                    "events": ["token.*", "security_policy.changed"],
                    "description": "SIEM",
                }
            ]
        }
    )


class WebhookPatchIn(InputSchema):
    version: int = Field(ge=1, le=MAX_VERSION, description="The version you read.")
    url: str | None = Field(None, max_length=4000)
    events: list[str] | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=1000)
    active: bool | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"version": 2, "events": ["*"], "active": True}]}
    )


class RotateIn(InputSchema):
    # Defaults by keyword: type checkers read a field's default from ``default=`` only.
    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="Refuse (409) if changed."
    )
    overlap_seconds: int = Field(
        default=int(services.DEFAULT_OVERLAP.total_seconds()),
        ge=0,
        le=int(services.MAX_OVERLAP.total_seconds()),
        description="How long the old secret keeps signing too (both signatures are sent).",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"version": 2, "overlapSeconds": 86400}]}
    )


class VersionQuery(InputSchema):
    version: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="Refuse (409) if it changed since."
    )


class DeliveryFilters(InputSchema):
    status: Literal["pending", "delivering", "succeeded", "failed"] | None = None
    event_type: str | None = Field(
        None, max_length=60, json_schema_extra={"example": "token.revoked"}
    )


class DeliveryOut(CamelSchema):
    id: int
    message_id: str = Field(description="The webhook-id header; the same when redelivered.")
    event_type: str
    status: str = Field(description="pending, delivering, succeeded or failed.")
    attempts: int
    next_attempt_at: datetime | None = Field(description="For a pending delivery.")
    last_attempt_at: datetime | None
    last_status_code: int | None = Field(description="The receiver's answer to the last try.")
    last_error: str
    last_duration_ms: int | None
    created_at: datetime
    completed_at: datetime | None
    redelivery_of: int | None = Field(description="The delivery this one sends again.")
    requested_by: str = Field(description="Who asked for a test event or a redelivery.")

    model_config = ConfigDict(json_schema_extra={"examples": [DELIVERY_EXAMPLE]})


class AttemptOut(CamelSchema):
    number: int
    attempted_at: datetime
    succeeded: bool
    status_code: int | None
    error: str
    duration_ms: int


class DeliveryDetailOut(DeliveryOut):
    payload: dict[str, Any] = Field(description='The body sent: {"type", "timestamp", "data"}.')
    attempt_log: list[AttemptOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **DELIVERY_EXAMPLE,
                    "payload": {
                        "type": "token.revoked",
                        "timestamp": "2026-11-23T08:12:40Z",
                        "data": {"id": 1001, "action": "token.revoked"},
                    },
                    "attemptLog": [
                        {
                            "number": 1,
                            "attemptedAt": "2026-11-23T08:12:40Z",
                            "succeeded": False,
                            "statusCode": 500,
                            "error": "The receiver answered 500.",
                            "durationMs": 120,
                        },
                        {
                            "number": 2,
                            "attemptedAt": "2026-11-23T08:12:46Z",
                            "succeeded": True,
                            "statusCode": 200,
                            "error": "",
                            "durationMs": 84,
                        },
                    ],
                }
            ]
        }
    )


# Translation ----------------------------------------------------------------------------------


def endpoint_out(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "active": endpoint.active,
        "secret_hint": endpoint.secret_partial,
        "previous_secret_valid_until": endpoint.previous_secret_expires_at,
        "failing_since": endpoint.failing_since,
        "deactivated_at": endpoint.deactivated_at,
        "deactivated_reason": endpoint.deactivated_reason,
        "version": endpoint.version,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.modified_at,
    }


def _secret_out(issued: services.IssuedEndpoint, response: HttpResponse) -> dict[str, Any]:
    # The one response that carries a secret must never be stored by a cache or a browser.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return {**endpoint_out(issued.endpoint), "secret": issued.secret}


def delivery_out(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "message_id": delivery.message_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": (
            delivery.next_attempt_at if delivery.status == DeliveryStatus.PENDING else None
        ),
        "last_attempt_at": delivery.last_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "last_duration_ms": delivery.last_duration_ms,
        "created_at": delivery.created_at,
        "completed_at": delivery.completed_at,
        "redelivery_of": delivery.redelivery_of_id,
        "requested_by": delivery.requested_by_name,
    }


def _get_endpoint(principal: Principal, endpoint_id: int) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.visible_to(principal)
        .select_related("organization")
        .filter(pk=endpoint_id)
        .first()
    )
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def _get_delivery(endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery:
    delivery = endpoint.deliveries.filter(pk=delivery_id).first()
    if delivery is None:
        raise NotFound("No such delivery.")
    delivery.endpoint = endpoint
    return delivery


# Endpoints ------------------------------------------------------------------------------------


@router.get(
    "/webhooks",
    auth=requires(READ),
    response=responses({200: Page[WebhookOut]}),
    by_alias=True,
    summary="List webhook endpoints",
    description=permission_note(READ),
)
def list_webhooks(request: HttpRequest, paging: Query[Paging]) -> dict[str, Any]:
    endpoints = WebhookEndpoint.objects.visible_to(principal_of(request)).order_by(
        "created_at", "pk"
    )
    page = paginate(endpoints, paging)
    page["items"] = [endpoint_out(endpoint) for endpoint in page["items"]]
    return page


@router.post(
    "/webhooks",
    auth=requires(WRITE),
    response=responses({201: WebhookSecretOut}),
    by_alias=True,
    summary="Register a webhook endpoint",
    description=SECRET_NOTE
    + "A URL that is not https (in production), or whose host is or resolves to a loopback, "
    "private, link-local, multicast or reserved address, is refused on `url`. "
    + permission_note(WRITE),
)
def create_webhook(request: HttpRequest, response: HttpResponse, payload: WebhookCreateIn) -> Any:
    principal = principal_of(request)
    issued = services.create_endpoint(
        actor=principal,
        organization=organization_of(principal),
        url=payload.url,
        events=payload.events,
        description=payload.description,
        active=payload.active,
    )
    return 201, _secret_out(issued, response)


@router.get(
    "/webhooks/{id}",
    auth=requires(READ),
    response=responses({200: WebhookOut}),
    by_alias=True,
    summary="Read a webhook endpoint",
    description=permission_note(READ),
)
def read_webhook(request: HttpRequest, id: int = ObjectId) -> dict[str, Any]:
    return endpoint_out(_get_endpoint(principal_of(request), id))


@router.patch(
    "/webhooks/{id}",
    auth=requires(WRITE),
    response=responses({200: WebhookOut}),
    by_alias=True,
    summary="Change a webhook endpoint",
    description="Only the fields given change; needs the `version` you read. Turning an "
    "endpoint off cancels its queued deliveries; turning it on forgets its failures. "
    + permission_note(WRITE),
)
def update_webhook(
    request: HttpRequest, payload: WebhookPatchIn, id: int = ObjectId
) -> dict[str, Any]:
    principal = principal_of(request)
    endpoint = services.update_endpoint(
        actor=principal,
        endpoint=_get_endpoint(principal, id),
        expected_version=payload.version,
        url=payload.url,
        events=payload.events,
        description=payload.description,
        active=payload.active,
    )
    return endpoint_out(endpoint)


@router.delete(
    "/webhooks/{id}",
    auth=requires(DELETE),
    response=responses({204: None}),
    summary="Delete a webhook endpoint",
    description="Deletes its deliveries too. " + permission_note(DELETE),
)
def delete_webhook(
    request: HttpRequest, query: Query[VersionQuery], id: int = ObjectId
) -> tuple[int, None]:
    principal = principal_of(request)
    services.delete_endpoint(
        actor=principal, endpoint=_get_endpoint(principal, id), expected_version=query.version
    )
    return 204, None


@router.post(
    "/webhooks/{id}/rotate-secret",
    auth=requires(WRITE),
    response=responses({200: WebhookSecretOut}),
    by_alias=True,
    summary="Rotate a webhook endpoint's signing secret",
    description=SECRET_NOTE
    + "For `overlapSeconds` (default 24 hours, at most 7 days) deliveries carry a signature "
    "by the old secret too. " + permission_note(WRITE),
)
def rotate_webhook_secret(
    request: HttpRequest,
    response: HttpResponse,
    payload: RotateIn | None = None,
    id: int = ObjectId,
) -> Any:
    principal = principal_of(request)
    payload = payload or RotateIn()
    with api_fields(**ROTATE_FIELDS):
        issued = services.rotate_secret(
            actor=principal,
            endpoint=_get_endpoint(principal, id),
            expected_version=payload.version,
            overlap=timedelta(seconds=payload.overlap_seconds),
        )
    return _secret_out(issued, response)


@router.post(
    "/webhooks/{id}/test",
    auth=requires(WRITE),
    response=responses({202: DeliveryOut}),
    by_alias=True,
    summary="Send a test event",
    description="Queues a `webhook.test` event for this endpoint alone; the worker sends it. "
    + permission_note(WRITE),
)
def test_webhook(request: HttpRequest, id: int = ObjectId) -> Any:
    principal = principal_of(request)
    delivery = services.send_test_event(actor=principal, endpoint=_get_endpoint(principal, id))
    return 202, delivery_out(delivery)


# Deliveries -----------------------------------------------------------------------------------


@router.get(
    "/webhooks/{id}/deliveries",
    auth=requires(READ),
    response=responses({200: Page[DeliveryOut]}),
    by_alias=True,
    summary="List a webhook endpoint's deliveries",
    description="Newest first. " + permission_note(READ),
)
def list_deliveries(
    request: HttpRequest,
    filters: Query[DeliveryFilters],
    paging: Query[Paging],
    id: int = ObjectId,
) -> dict[str, Any]:
    endpoint = _get_endpoint(principal_of(request), id)
    deliveries = endpoint.deliveries.order_by("-created_at", "-pk")
    if filters.status:
        deliveries = deliveries.filter(status=filters.status)
    if filters.event_type:
        deliveries = deliveries.filter(event_type=filters.event_type)
    page = paginate(deliveries.defer("body"), paging)
    page["items"] = [delivery_out(delivery) for delivery in page["items"]]
    return page


@router.get(
    "/webhooks/{id}/deliveries/{delivery_id}",
    auth=requires(READ),
    response=responses({200: DeliveryDetailOut}),
    by_alias=True,
    summary="Read a delivery with its payload and attempts",
    description=permission_note(READ),
)
def read_delivery(
    request: HttpRequest, id: int = ObjectId, delivery_id: int = ObjectId
) -> dict[str, Any]:
    delivery = _get_delivery(_get_endpoint(principal_of(request), id), delivery_id)
    return {
        **delivery_out(delivery),
        "payload": json.loads(delivery.body),
        "attempt_log": [
            {
                "number": item.number,
                "attempted_at": item.attempted_at,
                "succeeded": item.succeeded,
                "status_code": item.status_code,
                "error": item.error,
                "duration_ms": item.duration_ms,
            }
            for item in delivery.attempt_log.all()
        ],
    }


@router.post(
    "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    auth=requires(WRITE),
    response=responses({202: DeliveryOut}),
    by_alias=True,
    summary="Send a delivery again",
    description="Queues a finished delivery again with the same body and `webhook-id`, signed "
    "anew; answers the new delivery. " + permission_note(WRITE),
)
def redeliver(request: HttpRequest, id: int = ObjectId, delivery_id: int = ObjectId) -> Any:
    principal = principal_of(request)
    delivery = _get_delivery(_get_endpoint(principal, id), delivery_id)
    again = services.redeliver(actor=principal, delivery=delivery)
    return 202, delivery_out(again)
