"""Objects for tests, made through the same services the product uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from typing import Any

from django.utils import timezone

from orgs.models import Group, Organization, Role, User
from orgs.principals import Principal
from people.services import create_group, create_organization, set_group_member, set_member
from tokens.services import DEFAULT, IssuedToken, create_token

PASSWORD = "correct-horse-battery-staple"
_sequence = count(1)
OPERATOR = Principal.operator(label="tests")


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


def issue(
    actor: Principal,
    *,
    name: str | None = None,
    scope: str = "organization",
    group: Group | None = None,
    role: str = "admin",
    permissions: tuple[str, ...] | list[str] = (),
    expires_in: timedelta | None = None,
    expires_at=DEFAULT,  # noqa: ANN001
    allowed_addresses: tuple[str, ...] = (),
    ip_filter=None,  # noqa: ANN001
) -> IssuedToken:
    if expires_in is not None:
        expires_at = timezone.now() + expires_in
    return create_token(
        actor=actor,
        organization=actor.organization or _group_of(group).organization,
        name=name if name is not None else f"token {next(_sequence)}",
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
