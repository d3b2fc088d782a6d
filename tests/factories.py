"""Objects for tests, made through the same services the product uses."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count
from typing import Any

from django.test import Client
from django.utils import timezone

from orgs.models import Group, Organization, Role, User, UserKind
from orgs.principals import Principal
from people.services import create_group, create_organization, set_group_member, set_member
from policies.services import update_security_policy
from tokens.models import ApiToken, TokenSecret
from tokens.services import DEFAULT, IssuedToken, create_token

PASSWORD = "correct-horse-battery-staple"
_sequence = count(1)
OPERATOR = Principal.operator(label="tests")
# Headers of a request HTMX makes.
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_user(username: str | None = None, **fields: Any) -> User:
    username = username or f"user{next(_sequence)}"
    user = User.objects.create_user(username=username, password=PASSWORD, **fields)
    return user


def make_org(
    slug: str | None = None, *, admin: User | None = None, name: str | None = None
) -> Organization:
    slug = slug or f"org{next(_sequence)}"
    return create_organization(actor=OPERATOR, slug=slug, name=name or slug.title(), admin=admin)


def add_member(organization: Organization, user: User, role: str = Role.MEMBER) -> None:
    set_member(actor=OPERATOR, organization=organization, user=user, role=role)


def make_group(
    organization: Organization, slug: str | None = None, *, admin: User | None = None
) -> Group:
    slug = slug or f"group{next(_sequence)}"
    group = create_group(
        actor=Principal.operator(organization=organization, label="tests"),
        organization=organization,
        slug=slug,
        name=slug.title(),
    )
    if admin is not None:
        set_group_member(actor=OPERATOR, group=group, user=admin, role=Role.ADMIN)
    return group


def _group_of(group: Group | None) -> Group:
    """An operator outside any organization issues a group's token: the group says where."""
    assert group is not None, "give the group an operator issues the token in"
    return group


def allow_permission_edits(organization: Organization) -> None:
    """Turn on permission edits for every kind of token (new organizations start without)."""
    update_security_policy(
        actor=Principal.operator(organization=organization, label="tests"),
        organization=organization,
        changes={
            scope: {"permission_edits_allowed": True}
            for scope in ("organization", "group", "personal")
        },
    )


def issue(
    actor: Principal,
    *,
    name: str | None = None,
    description: str = "",
    scope: str = "organization",
    group: Group | None = None,
    role: str = "admin",
    permissions: tuple[str, ...] | list[str] = (),
    expires_in: timedelta | None = None,
    expires_at=DEFAULT,
    allowed_addresses: tuple[str, ...] = (),
    ip_filter=None,
) -> IssuedToken:
    if expires_in is not None:
        expires_at = timezone.now() + expires_in
    return create_token(
        actor=actor,
        organization=actor.organization or _group_of(group).organization,
        name=name if name is not None else f"token {next(_sequence)}",
        description=description,
        scope=scope,
        group=group,
        role=role,
        permissions=permissions,
        expires_at=expires_at,
        allowed_addresses=allowed_addresses,
        ip_filter=ip_filter,
    )


@dataclass
class World:
    """Two organizations with every kind of person the rules talk about."""

    acme: Organization
    globex: Organization
    platform: Group
    data: Group
    alice: User  # admin of acme
    bob: User  # member of acme, admin of group platform
    carol: User  # member of acme, member of group platform
    dave: User  # admin of globex

    def principal(self, user: User, organization: Organization | None = None) -> Principal:
        return Principal.for_member(user, organization or self.acme)


def build_world() -> World:
    alice, bob, carol, dave = (make_user(name) for name in ("alice", "bob", "carol", "dave"))
    acme = make_org("acme", admin=alice, name="Acme Corp")
    globex = make_org("globex", admin=dave, name="Globex")
    add_member(acme, bob)
    add_member(acme, carol)
    platform = make_group(acme, "platform", admin=bob)
    set_group_member(actor=OPERATOR, group=platform, user=carol, role=Role.MEMBER)
    data = make_group(acme, "data")
    return World(acme, globex, platform, data, alice, bob, carol, dave)


# API clients: one bearer token (or none) per client.
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


# Many tokens fast (bulk_create, not through the services), for operator-scale tests.
def bulk_tokens(
    organization: Organization,
    count: int,
    *,
    prefix: str = "bulk",
    group: Group | None = None,
    expires_at: datetime | None = None,
    status: str = "active",
    revoked_at: datetime | None = None,
    created_at: datetime | None = None,
    last_used_at: datetime | None = None,
    with_secrets: bool = True,
    batch_size: int = 2000,
) -> list[int]:
    """Create ``count`` tokens, each with its own technical user (and a secret); return ids."""
    run = secrets.token_hex(3)
    now = created_at or timezone.now()
    users = User.objects.bulk_create(
        [
            User(
                username=f"token.{organization.slug}.{prefix}-{run}-{index}",
                kind=UserKind.TECHNICAL,
                display_name=f"{prefix} {run} {index}",
                password="!",
            )
            for index in range(count)
        ],
        batch_size=batch_size,
    )
    if not all(user.pk for user in users):  # backends that return no ids
        users = list(
            User.objects.filter(username__startswith=f"token.{organization.slug}.{prefix}-{run}-")
        )
    tokens = ApiToken.objects.bulk_create(
        [
            ApiToken(
                organization=organization,
                group=group,
                scope="group" if group else "organization",
                name=user.display_name,
                user=user,
                role="member",
                expires_at=expires_at,
                status=status,
                revoked_at=revoked_at,
                partial_token=f"kwo_…{index % 10000:04d}",
                created_at=now,
                modified_at=now,
                last_used_at=last_used_at,
            )
            for index, user in enumerate(users)
        ],
        batch_size=batch_size,
    )
    if not all(token.pk for token in tokens):
        tokens = list(ApiToken.objects.filter(user__in=users))
    if with_secrets:
        TokenSecret.objects.bulk_create(
            [
                TokenSecret(
                    token=token,
                    digest=secrets.token_hex(32),
                    pepper_id="test",
                    partial_token=token.partial_token,
                )
                for token in tokens
            ],
            batch_size=batch_size,
        )
    return [token.pk for token in tokens]
