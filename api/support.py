"""What every API router shares: camelCase schemas, bearer authentication with the permission an
operation needs, the principal, the JSON body parser, pagination and the error schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from ninja import Field, Schema
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.security import APIKeyCookie
from ninja.security.http import HttpAuthBase
from pydantic import ConfigDict, field_validator
from pydantic.alias_generators import to_camel

from access import rules
from access.errors import Forbidden
from orgs.models import Organization, User
from orgs.principals import Principal
from policies.addresses import client_address
from tokens.auth import authenticate

# Largest value a database id or counter can hold (a signed 64-bit integer).
MAX_ID = 2**63 - 1
MAX_OFFSET = 2**31 - 1
MAX_VERSION = 2**31 - 1
JSON_CONTENT_TYPES = ("application/json",)

# Error responses every authenticated operation may give; documented on each.
ERROR_CODES = frozenset({400, 401, 403, 404, 409, 429})
# On every response to a request authenticated by a token that expires: when it does.
TOKEN_EXPIRY_HEADER = "Keyward-Token-Expiry"
TOKEN_EXPIRY_DESCRIPTION = (
    "When the token that authenticated the request expires (ISO-8601, UTC), on every response "
    "to a request it authenticated, errors included; absent for a token without expiry."
)


def expiry_header_value(expires_at: datetime) -> str:
    """``2027-02-01T00:00:00Z``: the expiry as sent in ``Keyward-Token-Expiry``."""
    return expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class CamelSchema(Schema):
    """JSON keys in camelCase; Python names in snake_case."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


class InputSchema(CamelSchema):
    """A request body or query: unknown fields are refused, text never holds NUL characters
    (PostgreSQL cannot store them)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_max_length=65536
    )

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        return _no_nul(value)


# Authentication and permissions --------------------------------------------------------------


class BearerTokenAuth(HttpAuthBase):
    """``Authorization: Bearer <token>``, then the permission the operation needs.

    Authentication failures raise tokens.auth.AuthenticationFailed; a missing permission raises
    Forbidden naming it, before the request body is even read.
    """

    openapi_scheme = "bearer"
    openapi_bearerFormat = "kwo_/kwg_/kwu_ token"

    def __init__(self, permission: str | None = None) -> None:
        self.permission = permission
        super().__init__()

    def __call__(self, request: HttpRequest) -> Any:
        result = authenticate(request.headers.get("Authorization"), client_address(request))
        principal = result.principal
        # Bearer authentication: the principal always carries its token.
        assert principal.token is not None
        # For the response, whatever it turns out to be (config.middleware sets the header).
        request.keyward_token_expires_at = principal.token.expires_at  # type: ignore[attr-defined]
        if self.permission is not None:
            rules.require(principal, self.permission)
        return principal


def requires(permission: str | None) -> BearerTokenAuth:
    """Authentication for an operation that needs ``permission`` (None: any valid token)."""
    return BearerTokenAuth(permission)


def principal_of(request: HttpRequest) -> Principal:
    """The principal ninja's authentication set on the request (``request.auth``)."""
    principal = getattr(request, "auth", None)
    if not isinstance(principal, Principal):
        raise TypeError("principal_of() needs an operation with bearer or session authentication")
    return principal


def organization_of(principal: Principal) -> Organization:
    """The organization a bearer token acts in: every token belongs to one."""
    if principal.organization is None:
        raise TypeError("organization_of() needs a principal acting in an organization")
    return principal.organization


def person_of(principal: Principal) -> User:
    """The person behind a principal of ``person()`` authentication (or any token's user)."""
    if principal.user is None:
        raise TypeError("person_of() needs a principal with a user")
    return principal.user


def permission_note(permission: str | None) -> str:
    if permission is None:
        return "Needs any valid token."
    return f"Needs the permission `{permission}`."


# Request bodies ------------------------------------------------------------------------------


class UnreadableBody(Exception):
    """The body is not JSON, or not sent as JSON."""


class JsonParser(Parser):
    """Bodies must be JSON sent as ``application/json``; anything else is a 400."""

    def parse_body(self, request: HttpRequest) -> Any:
        content_type = (request.content_type or "").lower()
        if content_type not in JSON_CONTENT_TYPES and not content_type.endswith("+json"):
            raise UnreadableBody(
                f"Send the body as JSON with Content-Type: application/json "
                f"(got {request.content_type or 'none'!r})."
            )
        try:
            return json.loads(request.body)
        except (ValueError, RecursionError):
            raise UnreadableBody("The request body is not valid JSON.") from None


@contextmanager
def api_fields(**renames: str) -> Iterator[None]:
    """Report a service's field names as the client wrote them (``group`` -> ``groupId``)."""
    try:
        yield
    except ValidationError as error:
        if not hasattr(error, "error_dict"):
            raise
        raise ValidationError(
            {renames.get(name, name): errors for name, errors in error.error_dict.items()}
        ) from None


# Pagination ----------------------------------------------------------------------------------


class Paging(InputSchema):
    limit: int = Field(
        50, ge=1, le=200, description="How many items, 1 to 200.", json_schema_extra={"example": 50}
    )
    offset: int = Field(
        0,
        ge=0,
        le=MAX_OFFSET,
        description="How many items to skip.",
        json_schema_extra={"example": 0},
    )


Item = TypeVar("Item")


class Page(CamelSchema, Generic[Item]):
    items: list[Item]
    count: int = Field(description="How many items match, over all pages.")
    limit: int
    offset: int


def paginate(queryset: QuerySet, paging: Paging) -> dict[str, Any]:
    """``{"items", "count", "limit", "offset"}`` for one page of a queryset."""
    count = queryset.count()
    items = list(queryset[paging.offset : paging.offset + paging.limit])
    return {"items": items, "count": count, "limit": paging.limit, "offset": paging.offset}


# Errors --------------------------------------------------------------------------------------


class ErrorDetail(CamelSchema):
    code: str = Field(
        description="validation_error, unauthenticated, forbidden, address_not_allowed, "
        "policy_violation, not_found, version_conflict, token_leaked, too_many_requests"
    )
    message: str
    fields: dict[str, list[str]] | None = Field(
        None, description="For validation_error: every bad field and why."
    )
    permission: str | None = Field(None, description="For forbidden: the missing permission.")
    setting: str | None = Field(
        None, description="For policy_violation: the security policy setting."
    )
    current_version: int | None = Field(
        None, description="For version_conflict: the object's version now."
    )


class ErrorOut(Schema):
    error: ErrorDetail

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "forbidden",
                        "message": "This needs the permission api.api-tokens.write.",
                        "permission": "api.api-tokens.write",
                    }
                },
                {
                    "error": {
                        "code": "validation_error",
                        "message": "The request is not valid.",
                        "fields": {"name": ["Give the token a name."]},
                    }
                },
            ]
        }
    )


_RENDERER = JSONRenderer()  # the API's renderer (config/api.py sets no other)


def rendered(request: HttpRequest, body: Any, status: int = 200) -> HttpResponse:
    """``body`` rendered as the API renders an operation's answer, without validating it
    against the operation's schema: for an answer built of plain values of the declared types,
    on a path where validating it again costs more than building it (a test checks it)."""
    return HttpResponse(
        _RENDERER.render(request, body, response_status=status),
        status=status,
        content_type=f"{_RENDERER.media_type}; charset={_RENDERER.charset}",
    )


def responses(success: dict[int, Any]) -> dict[Any, Any]:
    """An operation's documented answers: its successes and every error shape."""
    return {**success, ERROR_CODES: ErrorOut}


# The invited person ----------------------------------------------------------------------------


class PersonalTokenAuth(BearerTokenAuth):
    """A personal token, acting as its owner; no Authorization header lets the session try."""

    def __call__(self, request: HttpRequest) -> Any:
        if not request.headers.get("Authorization"):
            return None
        principal = super().__call__(request)
        if not principal.acts_as_person:
            raise Forbidden(
                "Only the invited person answers an invitation: use their personal token or "
                "their console session."
            )
        return principal


class PersonSessionAuth(APIKeyCookie):
    """The console session of a person (with its CSRF token), outside any organization: how
    someone who belongs to no organization yet answers an invitation."""

    param_name = settings.SESSION_COOKIE_NAME

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if key is None or user is None or not user.is_authenticated:
            return None
        return Principal(user=user, organization=None, address=client_address(request))


def person() -> list[Any]:
    """Authentication for what only the person themselves does: a personal token, or the
    console session."""
    return [PersonalTokenAuth(), PersonSessionAuth()]
