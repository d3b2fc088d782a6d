"""The REST API v1: mounts each app's router and turns every error into one JSON shape.

``{"error": {"code", "message", "fields"?}}``, never an HTML page, never a 500 for bad input.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, ValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from access.errors import Forbidden, NotFound, PolicyViolation, TokenLeaked, VersionConflict
from api.docs import public_docs
from api.support import (
    TOKEN_EXPIRY_DESCRIPTION,
    TOKEN_EXPIRY_HEADER,
    BearerTokenAuth,
    JsonParser,
    UnreadableBody,
)
from orgs.api import router as orgs_router
from people.api import router as people_router
from people.invitations_api import router as invitations_router
from policies.api import router as policies_router
from tokens.api import router as tokens_router
from tokens.auth import AuthenticationFailed
from tokens.leaks_api import router as leaks_router
from webhooks.api import router as webhooks_router

logger = logging.getLogger("keyward.api")

TOKEN_SCHEMES = {"BearerTokenAuth", "PersonalTokenAuth"}


class KeywardApi(NinjaAPI):
    """The API object; its schema documents the header every token-authenticated response
    carries (django-ninja has no per-response header declaration to do it on each operation)."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        header = {
            TOKEN_EXPIRY_HEADER: {
                "description": TOKEN_EXPIRY_DESCRIPTION,
                "schema": {"type": "string", "format": "date-time"},
                "example": "2027-02-01T00:00:00Z",
            }
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                security = operation.get("security") or []
                if not any(TOKEN_SCHEMES & set(requirement) for requirement in security):
                    continue
                for status, response in operation.get("responses", {}).items():
                    # 401 and 429 answer requests no token authenticated.
                    if int(status) not in (401, 429):
                        response.setdefault("headers", {}).update(header)
        return schema


api = KeywardApi(
    title="Keyward API",
    version="1",
    description=(
        "Manage API tokens, groups, members, IP filters, the security policy, the audit log "
        "and the webhook endpoints of a Keyward organization. Authenticate with "
        "`Authorization: Bearer <token>`."
    ),
    auth=BearerTokenAuth(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
    docs_decorator=public_docs,
    parser=JsonParser(),
)


def field_name(name: str) -> str:
    """A service's field name as the API spells it: ``allowed_addresses`` -> ``allowedAddresses``,
    ``personal.max_lifetime`` -> ``personal.maxLifetime``; names already camelCase stay."""
    return ".".join(
        part if part.startswith("__") or part != part.lower() else to_camel(part)
        for part in name.split(".")
    )


def error_response(
    request: HttpRequest,
    status: int,
    code: str,
    message: str,
    fields: dict[str, list[str]] | None = None,
    **extra: Any,
) -> HttpResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    body.update(extra)
    return api.create_response(request, {"error": body}, status=status)


@api.exception_handler(AuthenticationFailed)
def on_authentication_failed(request: HttpRequest, exc: AuthenticationFailed) -> HttpResponse:
    if exc.status == 429:
        response = error_response(request, 429, "too_many_requests", exc.message)
        response.headers["Retry-After"] = str(exc.retry_after or 60)
        return response
    if exc.status == 403:
        return error_response(request, 403, "address_not_allowed", exc.message)
    response = error_response(request, 401, "unauthenticated", exc.message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="keyward", error="invalid_token"'
    return response


@api.exception_handler(AuthenticationError)
def on_ninja_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return on_authentication_failed(request, AuthenticationFailed("missing"))


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    if hasattr(exc, "error_dict"):
        fields = {
            field_name(name): [str(m) for e in errors for m in e.messages]
            for name, errors in exc.error_dict.items()
        }
    else:
        fields = {"__all__": list(exc.messages)}
    return error_response(request, 400, "validation_error", "The request is not valid.", fields)


@api.exception_handler(NinjaValidationError)
def on_schema_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for error in exc.errors:
        location = [
            str(part)
            for part in error.get("loc", ())
            if part not in ("body", "query", "path", "payload", "filters", "paging")
        ]
        if error.get("type") == "extra_forbidden":
            message = "This field is not accepted here."
        elif error.get("type") == "missing":
            message = "This field is required."
        else:
            message = str(error.get("msg", "invalid"))
        fields.setdefault(".".join(location) or "body", []).append(message)
    return error_response(request, 400, "validation_error", "The request is not valid.", fields)


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(request, 400, "validation_error", "The request body is over 64 KiB.")


@api.exception_handler(NotFound)
@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(request, 404, "not_found", "Not found.")


@api.exception_handler(Forbidden)
def on_forbidden(request: HttpRequest, exc: Forbidden) -> HttpResponse:
    extra: dict[str, Any] = {"permission": exc.permission} if exc.permission else {}
    return error_response(request, 403, "forbidden", exc.message, **extra)


@api.exception_handler(PolicyViolation)
def on_policy_violation(request: HttpRequest, exc: PolicyViolation) -> HttpResponse:
    return error_response(request, 403, "policy_violation", exc.message, setting=exc.setting)


@api.exception_handler(VersionConflict)
def on_version_conflict(request: HttpRequest, exc: VersionConflict) -> HttpResponse:
    return error_response(
        request, 409, "version_conflict", exc.message, currentVersion=exc.current_version
    )


@api.exception_handler(TokenLeaked)
def on_token_leaked(request: HttpRequest, exc: TokenLeaked) -> HttpResponse:
    return error_response(request, 409, "token_leaked", exc.message)


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, UnreadableBody):
        return error_response(request, 400, "validation_error", str(exc.__cause__))
    code = {400: "validation_error", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "error"
    )
    return error_response(request, exc.status_code, code, str(exc))


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    # The database is down or restarting: say so briefly and let the client retry; the
    # connection is replaced on the next request (CONN_HEALTH_CHECKS).
    logger.warning("Database unavailable in %s %s: %s", request.method, request.path, type(exc))
    response = error_response(
        request, 503, "service_unavailable", "The service is briefly unavailable; retry shortly."
    )
    response.headers["Retry-After"] = "5"
    return response


@api.exception_handler(Exception)
def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # A bug, not bad input: log it with its traceback and answer in the API's shape.
    logger.exception("Unexpected error in %s %s", request.method, request.path)
    return error_response(request, 500, "internal_error", "Something went wrong on our side.")


class HealthOut(Schema):
    status: str

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})


@api.get(
    "/health",
    auth=None,
    response={200: HealthOut},
    tags=["meta"],
    summary="Liveness check",
    description="Answers 200 while the application serves requests; needs no token.",
)
def health(request: HttpRequest) -> dict[str, str]:
    return {"status": "ok"}


api.add_router("", orgs_router)
api.add_router("", people_router)
api.add_router("", invitations_router)
api.add_router("", tokens_router)
api.add_router("", policies_router)
api.add_router("", webhooks_router)
api.add_router("", leaks_router)
