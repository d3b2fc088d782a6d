"""API: API tokens, the permission catalog and per-token usage. Translation only: every rule
lives in tokens.services and the querysets."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Path, Query, Router
from pydantic import ConfigDict

from access import catalog
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
from orgs.durations import parse_duration, parse_expiry
from orgs.models import Group, User
from orgs.principals import Principal
from policies.models import IpFilter
from tokens import usage as usage_reads
from tokens.models import ApiToken, ApiTokenQuerySet
from tokens.services import (
    DEFAULT,
    IssuedToken,
    create_token,
    delete_token,
    regenerate_token,
    restore_token,
    revoke_token,
    update_token,
)

router = Router(tags=["api-tokens"])

READ = "api.api-tokens.read"
WRITE = "api.api-tokens.write"
DELETE = "api.api-tokens.delete"
USAGE = "api.usage.read"
MAX_GRACE_SECONDS = 10**9  # the service and the policy set the real limit
MAX_USAGE_DAYS = 366

Scope = Literal["organization", "group", "personal"]
Role = Literal["admin", "member", "custom"]
Status = Literal["active", "revoked", "expired"]

# The service's field names for what the client calls otherwise.
CREATE_FIELDS = {"group": "groupId", "ip_filter": "ipFilterId"}
REGENERATE_FIELDS = {"grace": "gracePeriodSeconds"}

TOKEN_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "version": 3,
    "createdAt": "2026-11-01T09:30:00Z",
    "updatedAt": "2026-11-20T14:02:11Z",
    "createdBy": {"id": 7, "name": "alice", "kind": "human"},
    "modifiedBy": {"id": 7, "name": "alice", "kind": "human"},
    "userId": 311,
    "name": "CI deploy",
    "description": "Deploys main to production from the CI pipeline.",
    "scope": "organization",
    "groupId": None,
    "role": "custom",
    "permissions": ["api.api-tokens.read", "api.api-tokens.write"],
    "partialToken": "kwo_…x7Qa",
    "expiry": "2027-02-01T00:00:00Z",
    "allowedAddresses": ["203.0.113.0/24"],
    "ipFilterId": None,
    "status": "active",
    "revokedReason": None,
    "lastUsedAt": "2026-11-23T08:12:40Z",
    "lastUsedAddress": "203.0.113.17",
    "leakedAt": None,
    "leakedWhere": None,
}
SECRET_EXAMPLE = "kwo_4pXe0vQ9mTzL2cR8bN5hY1wK7sD3fG6jA0uE9iO2qZx3kB7Qa"


# Schemas -------------------------------------------------------------------------------------


class UserRef(CamelSchema):
    id: int | None = Field(description="null when the user no longer exists")
    name: str
    kind: str | None = Field(description="human or technical; null when unknown")


class TokenOut(CamelSchema):
    id: int
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: UserRef
    modified_by: UserRef
    user_id: int = Field(description="The technical user, or the owner of a personal token.")
    name: str
    description: str = Field(description="What the token is for; empty when none was given.")
    scope: Scope
    group_id: int | None
    role: Role
    permissions: list[str] = Field(description="What the token grants, its role resolved.")
    partial_token: str
    expiry: datetime | None
    allowed_addresses: list[str]
    ip_filter_id: int | None
    status: Status
    revoked_at: datetime | None = Field(description="When it was revoked (null: it is not).")
    revoked_by: str | None = Field(
        description="Who revoked it, as named then (`leak detection` for a leaked token); null "
        "when it is not revoked."
    )
    revoked_reason: str | None
    last_used_at: datetime | None
    last_used_address: str | None
    leaked_at: datetime | None = Field(
        description="When its secret was reported leaked; a leaked token is never restored."
    )
    leaked_where: str | None = Field(description="Where the leak was seen: a URL or a source.")

    model_config = ConfigDict(json_schema_extra={"examples": [TOKEN_EXAMPLE]})


class TokenWithSecretOut(TokenOut):
    token: str = Field(description="The secret. Shown in this response only, never again.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**TOKEN_EXAMPLE, "version": 1, "token": SECRET_EXAMPLE}]}
    )


class RegeneratedOut(TokenWithSecretOut):
    previous_secret_ends_at: datetime | None = Field(
        description="When the previous secret stops working (null: it already has). A grace "
        "period never outlives the token."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **TOKEN_EXAMPLE,
                    "version": 4,
                    "token": SECRET_EXAMPLE,
                    "previousSecretEndsAt": "2026-11-23T09:12:40Z",
                }
            ]
        }
    )


class TokenFilters(InputSchema):
    name: str | None = Field(
        None,
        max_length=200,
        description="Case-insensitive part of the name or the description.",
        json_schema_extra={"example": "ci"},
    )
    status: Status | None = Field(
        None,
        description="Without it: active and revoked tokens and those expired in the last five "
        "minutes. `revoked` lists every revoked token (leaked ones included: their reason "
        "starts with `Leaked:`), `expired` every expired one that is not revoked, for as long "
        "as cleanup keeps them.",
    )
    scope: Scope | None = None
    group_id: int | None = Field(None, ge=1, le=MAX_ID, json_schema_extra={"example": 3})


class TokenCreateIn(InputSchema):
    name: str = Field(max_length=1000, examples=["CI deploy"])
    description: str = Field(
        "",
        max_length=5000,
        description="Optional: what the token is for, up to 1,000 characters; line breaks kept.",
        examples=["Deploys main to production from the CI pipeline."],
    )
    scope: Scope = "organization"
    group_id: int | None = Field(None, ge=1, le=MAX_ID, description="For a group token.")
    role: Role = "custom"
    permissions: list[str] = Field(
        default_factory=list, max_length=200, description="For the custom role."
    )
    expiry: str | None = Field(
        None,
        max_length=64,
        description="ISO-8601 date-time (UTC unless it carries an offset), or a date meaning "
        "the end of that day (23:59:59 UTC), or null for no expiry. Omitted: the policy's "
        "default.",
        examples=["2027-02-01T00:00:00Z", "2027-02-01"],
    )
    expires_in: str | None = Field(
        None, max_length=32, description="Instead of expiry: 90m, 12h, 30d.", examples=["30d"]
    )
    allowed_addresses: list[str] = Field(default_factory=list, max_length=1000)
    ip_filter_id: int | None = Field(None, ge=1, le=MAX_ID)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "CI deploy",
                    "description": "Deploys main to production from the CI pipeline.",
                    "role": "custom",
                    "permissions": ["api.api-tokens.read"],
                    "expiresIn": "30d",
                    "allowedAddresses": ["203.0.113.0/24"],
                }
            ]
        }
    )


class TokenPatchIn(InputSchema):
    version: int = Field(ge=1, le=MAX_VERSION, description="The version you read.")
    name: str | None = Field(None, max_length=1000)
    description: str | None = Field(
        None, max_length=5000, description="Up to 1,000 characters; an empty string clears it."
    )
    role: Role | None = None
    permissions: list[str] | None = Field(None, max_length=200, description="For the custom role.")
    ip_filter_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="A named IP filter, or null for none."
    )
    allowed_addresses: list[str] | None = Field(
        None, max_length=1000, description="Addresses or networks; [] for any address."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"version": 3, "name": "CI deploy (prod)"},
                {"version": 3, "description": "Deploys main to production."},
                {"version": 3, "role": "custom", "permissions": ["api.api-tokens.read"]},
                {"version": 3, "ipFilterId": None, "allowedAddresses": ["203.0.113.0/24"]},
            ]
        }
    )


# Defaults by keyword (default=): type checkers read a field's default from that only.
class RegenerateIn(InputSchema):
    grace_period_seconds: int = Field(
        default=0,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How long the old secret keeps working, up to the policy's limit.",
    )
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)

    model_config = ConfigDict(json_schema_extra={"examples": [{"gracePeriodSeconds": 3600}]})


class RevokeIn(InputSchema):
    reason: str = Field(default="", max_length=1000)
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Leaked in a CI log"}]})


class RestoreIn(InputSchema):
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 4}]})


class DeleteQuery(InputSchema):
    version: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="Refuse (409) if the token changed since."
    )


class PermissionOut(CamelSchema):
    name: str
    resource: str
    action: str
    description: str
    scopes: list[Scope]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "api.api-tokens.read",
                    "resource": "api-tokens",
                    "action": "read",
                    "description": "List API tokens and read their details.",
                    "scopes": ["organization", "group", "personal"],
                }
            ]
        }
    )


class PermissionList(CamelSchema):
    items: list[PermissionOut]
    count: int


class UsageQuery(InputSchema):
    since: date | None = Field(None, description="First day (UTC); default 29 days ago.")
    until: date | None = Field(None, description="Last day (UTC); default today.")


class UsageDay(CamelSchema):
    day: date
    count: int


class SecretUsage(CamelSchema):
    partial_token: str
    created_at: datetime
    ends_at: datetime | None
    last_used_at: datetime | None
    last_used_address: str | None


class UsageOut(CamelSchema):
    token_id: int
    since: date
    until: date
    total: int
    days: list[UsageDay]
    last_used_at: datetime | None
    last_used_address: str | None
    secrets: list[SecretUsage] = Field(
        description="The current secret and any old one still in its grace period."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tokenId": 42,
                    "since": "2026-11-22",
                    "until": "2026-11-23",
                    "total": 130,
                    "days": [
                        {"day": "2026-11-22", "count": 120},
                        {"day": "2026-11-23", "count": 10},
                    ],
                    "lastUsedAt": "2026-11-23T08:12:40Z",
                    "lastUsedAddress": "203.0.113.17",
                    "secrets": [
                        {
                            "partialToken": "kwo_…x7Qa",
                            "createdAt": "2026-11-20T14:02:11Z",
                            "endsAt": None,
                            "lastUsedAt": "2026-11-23T08:12:40Z",
                            "lastUsedAddress": "203.0.113.17",
                        }
                    ],
                }
            ]
        }
    )


# Translation ---------------------------------------------------------------------------------


def _user_ref(user: User | None, name: str) -> dict[str, Any]:
    if user is None:
        return {"id": None, "name": name, "kind": None}
    return {"id": user.pk, "name": name or user.name, "kind": user.kind}


def token_out(token: ApiToken, now: datetime | None = None) -> dict[str, Any]:
    """The API's token object (never the secret)."""
    return {
        "id": token.pk,
        "version": token.version,
        "created_at": token.created_at,
        "updated_at": token.modified_at,
        "created_by": _user_ref(token.created_by, token.created_by_name),
        "modified_by": _user_ref(token.modified_by, token.modified_by_name),
        "user_id": token.user_id,
        "name": token.name,
        "description": token.description,
        "scope": token.scope,
        "group_id": token.group_id,
        "role": token.role,
        "permissions": sorted(token.granted_permissions()),
        "partial_token": token.partial_token,
        "expiry": token.expires_at,
        "allowed_addresses": list(token.allowed_addresses),
        "ip_filter_id": token.ip_filter_id,
        "status": token.display_status(now),
        "revoked_at": token.revoked_at,
        "revoked_by": token.revoked_by_name or None,
        "revoked_reason": token.revoked_reason or None,
        "last_used_at": token.last_used_at,
        "last_used_address": token.last_used_address,
        "leaked_at": token.leaked_at,
        "leaked_where": token.leaked_where or None,
    }


def _issued_out(issued: IssuedToken, response: HttpResponse) -> dict[str, Any]:
    # The one response that carries a secret must never be stored by a cache or a browser.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return {**token_out(issued.token), "token": issued.secret}


def _visible_tokens(principal: Principal) -> ApiTokenQuerySet:
    return ApiToken.objects.visible_to(principal).select_related("created_by", "modified_by")


def _get_token(principal: Principal, token_id: int) -> ApiToken:
    token = _visible_tokens(principal).filter(pk=token_id).first()
    if token is None:
        raise NotFound("No such API token.")
    return token


def _parse_expiry(text: str) -> datetime:
    try:
        return parse_expiry(text)
    except ValueError as error:
        raise ValidationError({"expiry": [f"{str(error)[:1].upper()}{str(error)[1:]}."]}) from None


def _expiry_of(payload: TokenCreateIn, now: datetime) -> datetime | None:
    given = payload.model_fields_set
    if "expiry" in given and payload.expires_in is not None:
        message = "Give expiry or expiresIn, not both."
        raise ValidationError({"expiry": [message], "expires_in": [message]})
    if payload.expires_in is not None:
        try:
            return now + parse_duration(payload.expires_in)
        except ValueError as error:
            raise ValidationError({"expires_in": [str(error).capitalize() + "."]}) from None
    if "expiry" not in given:
        return DEFAULT
    return None if payload.expiry is None else _parse_expiry(payload.expiry)


def _filter_of(principal: Principal, filter_id: int | None) -> IpFilter | None:
    if filter_id is None:
        return None
    ip_filter = IpFilter.objects.visible_to(principal).filter(pk=filter_id).first()
    if ip_filter is None:
        raise ValidationError({"ip_filter": ["No such IP filter."]})
    return ip_filter


def _permissions_need_custom(role: str, permissions: list[str] | None) -> None:
    if permissions and role != "custom":
        message = 'Permissions are set for the custom role only; send "role": "custom".'
        raise ValidationError({"permissions": [message]})


# Catalog -------------------------------------------------------------------------------------


@router.get(
    "/permissions",
    auth=requires(None),
    response=responses({200: PermissionList}),
    by_alias=True,
    tags=["permissions"],
    summary="The permission catalog",
    description="Every permission a token can hold and the token scopes it applies to. "
    + permission_note(None),
)
def list_permissions(request: HttpRequest) -> dict[str, Any]:
    items = [
        {
            "name": permission.name,
            "resource": permission.resource,
            "action": permission.action,
            "description": permission.description,
            "scopes": list(permission.scopes),
        }
        for permission in catalog.CATALOG
    ]
    return {"items": items, "count": len(items)}


# Tokens --------------------------------------------------------------------------------------


@router.get(
    "/api-tokens",
    auth=requires(READ),
    response=responses({200: Page[TokenOut]}),
    by_alias=True,
    summary="List API tokens",
    description="The tokens the caller may see, by name. " + permission_note(READ),
)
def list_tokens(
    request: HttpRequest, filters: Query[TokenFilters], paging: Query[Paging]
) -> dict[str, Any]:
    now = timezone.now()
    tokens = _visible_tokens(principal_of(request))
    tokens = tokens.with_status(filters.status, now) if filters.status else tokens.listed(now)
    if filters.name:
        tokens = tokens.matching(filters.name)
    if filters.scope:
        tokens = tokens.filter(scope=filters.scope)
    if filters.group_id is not None:
        tokens = tokens.filter(group_id=filters.group_id)
    page = paginate(tokens.order_by("name", "id"), paging)
    page["items"] = [token_out(token, now) for token in page["items"]]
    return page


@router.post(
    "/api-tokens",
    auth=requires(WRITE),
    response=responses({201: TokenWithSecretOut}),
    by_alias=True,
    summary="Create an API token",
    description="Answers the token with its secret in `token`, shown this once "
    "(`Cache-Control: no-store`). " + permission_note(WRITE),
)
def create(request: HttpRequest, response: HttpResponse, payload: TokenCreateIn) -> Any:
    principal = principal_of(request)
    now = timezone.now()
    with api_fields(**CREATE_FIELDS):
        _permissions_need_custom(payload.role, payload.permissions)
        group = None
        if payload.group_id is not None:
            group = Group.objects.visible_to(principal).filter(pk=payload.group_id).first()
            if group is None:
                raise ValidationError({"group": ["No such group."]})
        ip_filter = _filter_of(principal, payload.ip_filter_id)
        issued = create_token(
            actor=principal,
            organization=organization_of(principal),
            name=payload.name,
            description=payload.description,
            scope=payload.scope,
            group=group,
            role=payload.role,
            permissions=payload.permissions,
            expires_at=_expiry_of(payload, now),
            allowed_addresses=payload.allowed_addresses,
            ip_filter=ip_filter,
            now=now,
        )
    return 201, _issued_out(issued, response)


@router.get(
    "/api-tokens/{id}",
    auth=requires(READ),
    response=responses({200: TokenOut}),
    by_alias=True,
    summary="Read an API token",
    description=permission_note(READ),
)
def read(request: HttpRequest, id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return token_out(_get_token(principal_of(request), id))


@router.patch(
    "/api-tokens/{id}",
    auth=requires(WRITE),
    response=responses({200: TokenOut}),
    by_alias=True,
    summary="Rename a token or change its description, role and permissions, IP filter or "
    "addresses",
    description="Needs the `version` you read (409 if the token changed since). Changing a "
    "token needs every permission it holds (you cannot change a token stronger than you). "
    "The IP filter and allowed addresses change only where the security policy lets tokens "
    "carry their own; an enforced filter stays. The expiry never changes. "
    + permission_note(WRITE),
)
def update(
    request: HttpRequest, payload: TokenPatchIn, id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    principal = principal_of(request)
    token = _get_token(principal, id)
    given = payload.model_fields_set
    changes: dict[str, Any] = {}
    if payload.name is not None:
        changes["name"] = payload.name
    if payload.description is not None:
        changes["description"] = payload.description
    if payload.role is not None:
        changes["role"] = payload.role
    if payload.permissions is not None:
        changes["permissions"] = payload.permissions
    _permissions_need_custom(payload.role or token.role, payload.permissions)
    with api_fields(**CREATE_FIELDS):
        if "ip_filter_id" in given:
            changes["ip_filter"] = _filter_of(principal, payload.ip_filter_id)
        if payload.allowed_addresses is not None:
            changes["allowed_addresses"] = payload.allowed_addresses
        update_token(actor=principal, token=token, expected_version=payload.version, **changes)
    return token_out(_get_token(principal, id))


@router.post(
    "/api-tokens/{id}/regenerate",
    auth=requires(WRITE),
    response=responses({200: RegeneratedOut}),
    by_alias=True,
    summary="Regenerate a token's secret",
    description="Answers the token with its new secret in `token`, shown this once. The old "
    "secret ends now, or after `gracePeriodSeconds` (never after the token expires), and "
    "`previousSecretEndsAt` says when. The expiry does not move; an expired token cannot be "
    "regenerated. Needs every permission the token holds. " + permission_note(WRITE),
)
def regenerate(
    request: HttpRequest,
    response: HttpResponse,
    payload: RegenerateIn | None = None,
    id: int = Path(..., ge=1, le=MAX_ID),
) -> Any:
    principal = principal_of(request)
    payload = payload or RegenerateIn()
    token = _get_token(principal, id)
    with api_fields(**REGENERATE_FIELDS):
        issued = regenerate_token(
            actor=principal,
            token=token,
            expected_version=payload.version,
            grace=timedelta(seconds=payload.grace_period_seconds),
        )
    return {
        **_issued_out(issued, response),
        "previous_secret_ends_at": issued.previous_secret_ends_at,
    }


@router.post(
    "/api-tokens/{id}/revoke",
    auth=requires(WRITE),
    response=responses({200: TokenOut}),
    by_alias=True,
    summary="Revoke a token",
    description="The token stops working until it is restored. " + permission_note(WRITE),
)
def revoke(
    request: HttpRequest, payload: RevokeIn | None = None, id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    principal = principal_of(request)
    payload = payload or RevokeIn()
    token = revoke_token(
        actor=principal,
        token=_get_token(principal, id),
        expected_version=payload.version,
        reason=payload.reason,
    )
    return token_out(_get_token(principal, token.pk))


@router.post(
    "/api-tokens/{id}/restore",
    auth=requires(WRITE),
    response=responses({200: TokenOut}),
    by_alias=True,
    summary="Restore a revoked token",
    description="A token whose secret leaked (`leakedAt` set) is never restored: 409 "
    "`token_leaked`; delete it and create a replacement. " + permission_note(WRITE),
)
def restore(
    request: HttpRequest, payload: RestoreIn | None = None, id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    principal = principal_of(request)
    payload = payload or RestoreIn()
    token = restore_token(
        actor=principal, token=_get_token(principal, id), expected_version=payload.version
    )
    return token_out(_get_token(principal, token.pk))


@router.delete(
    "/api-tokens/{id}",
    auth=requires(DELETE),
    response=responses({204: None}),
    summary="Delete a token for good",
    description=permission_note(DELETE),
)
def delete(
    request: HttpRequest, query: Query[DeleteQuery], id: int = Path(..., ge=1, le=MAX_ID)
) -> tuple[int, None]:
    principal = principal_of(request)
    delete_token(actor=principal, token=_get_token(principal, id), expected_version=query.version)
    return 204, None


# Usage ---------------------------------------------------------------------------------------


@router.get(
    "/api-tokens/{id}/usage",
    auth=requires(USAGE),
    response=responses({200: UsageOut}),
    by_alias=True,
    tags=["usage"],
    summary="A token's daily request counts and last use",
    description="Counts per UTC day (at most 366 days), and the last use of each live secret. "
    + permission_note(USAGE),
)
def usage(
    request: HttpRequest, query: Query[UsageQuery], id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    token = _get_token(principal_of(request), id)
    now = timezone.now()
    until = query.until or now.date()
    try:
        since = query.since or until - timedelta(days=29)
    except OverflowError:  # an until in the first days of year 1
        since = date.min
    if since > until:
        raise ValidationError({"since": ["since must not be after until."]})
    if (until - since).days >= MAX_USAGE_DAYS:
        raise ValidationError({"since": [f"Ask for at most {MAX_USAGE_DAYS} days."]})
    counts = usage_reads.counts_between(token, since, until)
    days = [since + timedelta(days=offset) for offset in range((until - since).days + 1)]
    last_used_at, last_used_address = usage_reads.last_use(token)
    live = [
        use
        for use in usage_reads.secret_last_uses(token)
        if use.ends_at is None or use.ends_at > now
    ]
    return {
        "token_id": token.pk,
        "since": since,
        "until": until,
        "total": sum(counts.values()),
        "days": [{"day": day, "count": counts.get(day, 0)} for day in days],
        "last_used_at": last_used_at,
        "last_used_address": last_used_address,
        "secrets": [
            {
                "partial_token": use.partial_token,
                "created_at": use.created_at,
                "ends_at": use.ends_at,
                "last_used_at": use.last_used_at,
                "last_used_address": use.last_used_address,
            }
            for use in live
        ],
    }
