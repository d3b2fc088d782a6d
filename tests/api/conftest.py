"""An API client and one token for each kind of caller the authorization matrix names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from tests.factories import issue

CUSTOM_PERMISSIONS = ("api.api-tokens.read", "api.groups.read", "api.audit-events.read")


class Api:
    """Requests to /api/v1 with one bearer token (or none)."""

    def __init__(self, client: Client, secret: str | None) -> None:
        self.client = client
        self.secret = secret

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        result = {"Authorization": f"Bearer {self.secret}"} if self.secret else {}
        result.update(headers or {})
        return result

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
        remote_addr: str | None = None,
    ):
        url = f"/api/v1{path}"
        call = getattr(self.client, method.lower())
        kwargs: dict[str, Any] = {"headers": self._headers(headers)}
        if remote_addr is not None:
            kwargs["REMOTE_ADDR"] = remote_addr
        if method.upper() in ("GET", "DELETE") and body is None and raw is None:
            return (
                call(url, query or {}, **kwargs)
                if method.upper() == "GET"
                else call(url, query_params=query or {}, **kwargs)
            )
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return call(url, data, content_type=content_type, query_params=query or {}, **kwargs)

    def get(self, path: str, **query: Any):
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None, **kwargs: Any):
        return self.request("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any):
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **query: Any):
        return self.request("DELETE", path, query=query)


@dataclass
class Callers:
    """One token per kind of caller; ``api(name)`` gives a client for it."""

    client: Client
    secrets: dict[str, str]
    tokens: dict[str, Any]

    def api(self, name: str) -> Api:
        return Api(self.client, self.secrets[name])


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """People in these tests never sign in; hashing their passwords would only cost time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def callers(world, org_admin, member, other_org_admin, client) -> Callers:
    issued = {
        "org_admin": issue(org_admin, name="org admin", role="admin"),
        "member_role": issue(org_admin, name="org member", role="member"),
        "custom": issue(org_admin, name="custom", role="custom", permissions=CUSTOM_PERMISSIONS),
        "group": issue(org_admin, name="platform", scope="group", group=world.platform),
        "personal_admin": issue(org_admin, name="alice's", scope="personal", role="admin"),
        "personal_member": issue(member, name="carol's", scope="personal", role="admin"),
        "other_org": issue(other_org_admin, name="globex admin", role="admin"),
    }
    return Callers(
        client=client,
        secrets={name: token.secret for name, token in issued.items()},
        tokens={name: token.token for name, token in issued.items()},
    )


@pytest.fixture
def admin_api(callers) -> Api:
    return callers.api("org_admin")
