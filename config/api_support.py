"""What every API router shares: camelCase schemas, bearer authentication, the principal."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Schema
from ninja.security.http import HttpAuthBase
from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from orgs.principals import Principal
from policies.addresses import client_address
from tokens.auth import authenticate


class CamelSchema(Schema):
    """JSON keys in camelCase; Python names in snake_case."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class BearerTokenAuth(HttpAuthBase):
    """``Authorization: Bearer <token>``; failures raise tokens.auth.AuthenticationFailed."""

    openapi_scheme = "bearer"
    openapi_bearerFormat = "kwo_/kwg_/kwu_ token"

    def __call__(self, request: HttpRequest) -> Any:
        result = authenticate(request.headers.get("Authorization"), client_address(request))
        return result.principal


def principal_of(request: HttpRequest) -> Principal:
    return request.auth  # type: ignore[attr-defined]
