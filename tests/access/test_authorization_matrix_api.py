"""Every operation of the API, for every kind of caller, from one table.

A row per operation (method and path as registered), a status per caller in ``CALLERS`` order.
An operation registered on the API without a row fails ``test_every_operation_has_a_row``.
Each cell gets fresh objects to act on, so cells do not depend on each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import pytest

from config.api import api
from orgs.models import Group, Organization, Role
from orgs.principals import Principal
from people.models import Invitation
from people.services import invite
from policies.models import IpFilter, SecurityPolicy
from policies.services import create_ip_filter
from tests.factories import OPERATOR, add_member, issue, make_group, make_user
from tokens.models import ApiToken
from tokens.services import revoke_token
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import create_endpoint, send_test_event

pytestmark = pytest.mark.django_db

CALLERS = (
    "org_admin",  # organization token, admin role
    "member_role",  # organization token, member role (reads only)
    "custom",  # organization token: api-tokens.read, groups.read, audit-events.read
    "group",  # group token of group platform, admin role
    "personal_admin",  # alice's personal token (organization admin)
    "personal_member",  # carol's personal token, admin role, capped by a member's rights
    "other_org",  # globex organization token, admin role
)
_names = count(1)


@dataclass
class Call:
    path: str
    body: Any = None
    query: dict[str, Any] = field(default_factory=dict)


@dataclass
class Cell:
    """What a row's request builder may use: the world, and which caller it builds for."""

    world: Any
    caller: str

    @property
    def organization(self) -> Organization:
        return self.world.globex if self.caller == "other_org" else self.world.acme

    def operator(self) -> Principal:
        return Principal.operator(organization=self.world.acme, label="tests")

    def group_token(self) -> ApiToken:
        """A fresh token of group platform: visible to the organization and that group."""
        return issue(
            self.operator(), name=f"target {next(_names)}", scope="group", group=self.world.platform
        ).token

    def new_member(self) -> Any:
        user = make_user()
        add_member(self.world.acme, user)
        return user

    def ip_filter(self) -> IpFilter:
        return create_ip_filter(
            actor=self.operator(),
            organization=self.world.acme,
            name=f"filter {next(_names)}",
            rules_text="allow 10.0.0.0/8\ndeny all",
        )

    def webhook(self) -> WebhookEndpoint:
        return create_endpoint(
            actor=self.operator(),
            organization=self.world.acme,
            url=f"https://hooks{next(_names)}.example.com/in",
            events=["token.*"],
        ).endpoint

    def finished_delivery(self) -> WebhookDelivery:
        delivery = send_test_event(actor=self.operator(), endpoint=self.webhook())
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
        return delivery


@dataclass
class Row:
    build: Callable[[Cell], Call]
    expect: tuple[int, ...]


def _revoked_token(cell: Cell) -> ApiToken:
    token = cell.group_token()
    return revoke_token(actor=cell.operator(), token=token)


def _platform_member(cell: Cell) -> Any:
    from people.services import set_group_member

    user = cell.new_member()
    set_group_member(actor=OPERATOR, group=cell.world.platform, user=user, role=Role.MEMBER)
    return user


def _group_version(cell: Cell) -> int:
    return Group.objects.get(pk=cell.world.platform.pk).version


def _policy_version(cell: Cell) -> int:
    return SecurityPolicy.objects.get(organization=cell.organization).version


def _org_version(cell: Cell) -> int:
    return Organization.objects.get(pk=cell.organization.pk).version


def _fresh_group(cell: Cell) -> Group:
    return make_group(cell.world.acme)


def _acme_invitation(cell: Cell) -> Invitation:
    return invite(actor=cell.operator(), organization=cell.world.acme, email=_address())


def _address() -> str:
    return f"invitee{next(_names)}@example.com"


def _invitation_for_caller(cell: Cell) -> Invitation:
    """Globex invites the person behind the caller (alice or carol; carol for the others)."""
    user = cell.world.alice if cell.caller == "personal_admin" else cell.world.carol
    Invitation.objects.filter(username=user.username, status="pending").delete()
    return invite(
        actor=Principal.operator(organization=cell.world.globex, label="tests"),
        organization=cell.world.globex,
        username=user.username,
    )


#                                  org_admin member_role custom group p_admin p_member other
MATRIX: dict[tuple[str, str], Row] = {
    ("GET", "/health"): Row(lambda c: Call("/health"), (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/me"): Row(lambda c: Call("/me"), (200, 200, 200, 200, 200, 200, 200)),
    # Needs no token at all: holding the reported one is the proof.
    ("POST", "/leaked-tokens"): Row(
        lambda c: Call("/leaked-tokens", [{"token": "kwo_x"}]),
        (202, 202, 202, 202, 202, 202, 202),
    ),
    ("GET", "/permissions"): Row(
        lambda c: Call("/permissions"), (200, 200, 200, 200, 200, 200, 200)
    ),
    # API tokens: the target is a token of group platform.
    ("GET", "/api-tokens"): Row(lambda c: Call("/api-tokens"), (200, 200, 200, 200, 200, 200, 200)),
    ("POST", "/api-tokens"): Row(
        lambda c: Call("/api-tokens", {"name": f"new {next(_names)}", "role": "member"}),
        (201, 403, 403, 403, 201, 403, 201),
    ),
    ("GET", "/api-tokens/{id}"): Row(
        lambda c: Call(f"/api-tokens/{c.group_token().pk}"), (200, 200, 200, 200, 200, 404, 404)
    ),
    ("PATCH", "/api-tokens/{id}"): Row(
        lambda c: Call(
            f"/api-tokens/{c.group_token().pk}", {"version": 1, "name": f"renamed {next(_names)}"}
        ),
        (200, 403, 403, 200, 200, 404, 404),
    ),
    ("DELETE", "/api-tokens/{id}"): Row(
        lambda c: Call(f"/api-tokens/{c.group_token().pk}"), (204, 403, 403, 204, 204, 404, 404)
    ),
    ("POST", "/api-tokens/{id}/regenerate"): Row(
        lambda c: Call(f"/api-tokens/{c.group_token().pk}/regenerate", {}),
        (200, 403, 403, 200, 200, 404, 404),
    ),
    ("POST", "/api-tokens/{id}/revoke"): Row(
        lambda c: Call(f"/api-tokens/{c.group_token().pk}/revoke", {"reason": "test"}),
        (200, 403, 403, 200, 200, 404, 404),
    ),
    ("POST", "/api-tokens/{id}/restore"): Row(
        lambda c: Call(f"/api-tokens/{_revoked_token(c).pk}/restore", {}),
        (200, 403, 403, 200, 200, 404, 404),
    ),
    ("GET", "/api-tokens/{id}/usage"): Row(
        lambda c: Call(f"/api-tokens/{c.group_token().pk}/usage"),
        (200, 200, 403, 200, 200, 404, 404),
    ),
    # The organization and its members: the target member is carol, or a fresh member.
    ("GET", "/organization"): Row(
        lambda c: Call("/organization"), (200, 403, 403, 200, 200, 403, 200)
    ),
    ("PATCH", "/organization"): Row(
        lambda c: Call("/organization", {"version": _org_version(c), "name": "Renamed"}),
        (200, 403, 403, 403, 200, 403, 200),
    ),
    ("GET", "/members"): Row(lambda c: Call("/members"), (200, 403, 403, 200, 200, 403, 200)),
    ("POST", "/members"): Row(
        lambda c: Call("/members", {"username": make_user().username}),
        (201, 403, 403, 403, 201, 403, 201),
    ),
    ("GET", "/members/{user_id}"): Row(
        lambda c: Call(f"/members/{c.world.carol.pk}"), (200, 403, 403, 200, 200, 403, 404)
    ),
    ("PATCH", "/members/{user_id}"): Row(
        lambda c: Call(f"/members/{c.new_member().pk}", {"version": 1, "role": "admin"}),
        (200, 403, 403, 404, 200, 403, 404),
    ),
    ("DELETE", "/members/{user_id}"): Row(
        lambda c: Call(f"/members/{c.new_member().pk}"), (204, 403, 403, 404, 204, 403, 404)
    ),
    # Invitations: the organization's side (a fresh invitation of acme) and the invited
    # person's side (globex invites the person behind the caller).
    ("POST", "/invitations"): Row(
        lambda c: Call("/invitations", {"email": _address()}),
        (201, 403, 403, 403, 201, 403, 201),
    ),
    ("GET", "/invitations"): Row(
        lambda c: Call("/invitations"), (200, 403, 403, 403, 200, 403, 200)
    ),
    ("GET", "/invitations/{id}"): Row(
        lambda c: Call(f"/invitations/{_acme_invitation(c).pk}"),
        (200, 403, 403, 403, 200, 403, 404),
    ),
    ("DELETE", "/invitations/{id}"): Row(
        lambda c: Call(f"/invitations/{_acme_invitation(c).pk}"),
        (204, 403, 403, 403, 204, 403, 404),
    ),
    ("GET", "/me/invitations"): Row(
        lambda c: Call("/me/invitations"), (403, 403, 403, 403, 200, 200, 403)
    ),
    ("POST", "/invitations/{id}/accept"): Row(
        lambda c: Call(f"/invitations/{_invitation_for_caller(c).pk}/accept", {}),
        (403, 403, 403, 403, 200, 200, 403),
    ),
    ("POST", "/invitations/{id}/decline"): Row(
        lambda c: Call(f"/invitations/{_invitation_for_caller(c).pk}/decline", {}),
        (403, 403, 403, 403, 200, 200, 403),
    ),
    # Groups: the target is group platform, or a fresh group to delete.
    ("GET", "/groups"): Row(lambda c: Call("/groups"), (200, 200, 200, 200, 200, 200, 200)),
    ("POST", "/groups"): Row(
        lambda c: Call(
            "/groups", {"slug": f"g{next(_names)}", "name": f"New group {next(_names)}"}
        ),
        (201, 403, 403, 403, 201, 403, 201),
    ),
    ("GET", "/groups/{id}"): Row(
        lambda c: Call(f"/groups/{c.world.platform.pk}"), (200, 200, 200, 200, 200, 200, 404)
    ),
    ("PATCH", "/groups/{id}"): Row(
        lambda c: Call(
            f"/groups/{c.world.platform.pk}", {"version": _group_version(c), "name": "Platform 2"}
        ),
        (200, 403, 403, 200, 200, 403, 404),
    ),
    ("DELETE", "/groups/{id}"): Row(
        lambda c: Call(f"/groups/{_fresh_group(c).pk}"), (204, 403, 403, 403, 204, 403, 404)
    ),
    ("GET", "/groups/{id}/members"): Row(
        lambda c: Call(f"/groups/{c.world.platform.pk}/members"),
        (200, 403, 403, 200, 200, 403, 404),
    ),
    ("POST", "/groups/{id}/members"): Row(
        lambda c: Call(f"/groups/{c.world.platform.pk}/members", {"userId": c.new_member().pk}),
        (201, 403, 403, 201, 201, 403, 404),
    ),
    ("GET", "/groups/{id}/members/{user_id}"): Row(
        lambda c: Call(f"/groups/{c.world.platform.pk}/members/{c.world.carol.pk}"),
        (200, 403, 403, 200, 200, 403, 404),
    ),
    ("PATCH", "/groups/{id}/members/{user_id}"): Row(
        lambda c: Call(
            f"/groups/{c.world.platform.pk}/members/{_platform_member(c).pk}",
            {"version": 1, "role": "admin"},
        ),
        (200, 403, 403, 200, 200, 403, 404),
    ),
    ("DELETE", "/groups/{id}/members/{user_id}"): Row(
        lambda c: Call(f"/groups/{c.world.platform.pk}/members/{_platform_member(c).pk}"),
        (204, 403, 403, 204, 204, 403, 404),
    ),
    # Audit log.
    ("GET", "/audit-events"): Row(
        lambda c: Call("/audit-events"), (200, 403, 200, 200, 200, 403, 200)
    ),
    # IP filters: the target is a fresh filter of acme.
    ("GET", "/ip-filters"): Row(lambda c: Call("/ip-filters"), (200, 200, 403, 200, 200, 200, 200)),
    ("POST", "/ip-filters"): Row(
        lambda c: Call("/ip-filters", {"name": f"new {next(_names)}", "rules": ["deny all"]}),
        (201, 403, 403, 403, 201, 403, 201),
    ),
    ("GET", "/ip-filters/{id}"): Row(
        lambda c: Call(f"/ip-filters/{c.ip_filter().pk}"), (200, 200, 403, 200, 200, 200, 404)
    ),
    ("PATCH", "/ip-filters/{id}"): Row(
        lambda c: Call(f"/ip-filters/{c.ip_filter().pk}", {"version": 1, "rules": ["allow all"]}),
        (200, 403, 403, 403, 200, 403, 404),
    ),
    ("DELETE", "/ip-filters/{id}"): Row(
        lambda c: Call(f"/ip-filters/{c.ip_filter().pk}"), (204, 403, 403, 403, 204, 403, 404)
    ),
    ("POST", "/ip-filters/{id}/test"): Row(
        lambda c: Call(f"/ip-filters/{c.ip_filter().pk}/test", {"address": "10.1.2.3"}),
        (200, 200, 403, 200, 200, 200, 404),
    ),
    # The security policy of the caller's organization.
    ("GET", "/security-policy"): Row(
        lambda c: Call("/security-policy"), (200, 200, 403, 200, 200, 200, 200)
    ),
    ("PATCH", "/security-policy"): Row(
        lambda c: Call(
            "/security-policy", {"version": _policy_version(c), "group": {"maxGrace": "1d"}}
        ),
        (200, 403, 403, 403, 200, 403, 200),
    ),
    ("POST", "/security-policy/preview"): Row(
        lambda c: Call("/security-policy/preview", {"personal": {"maxLifetime": "7d"}}),
        (200, 403, 403, 403, 200, 403, 200),
    ),
    # Webhooks: organization-wide only, never a member's; the target is a fresh endpoint of acme.
    ("GET", "/webhooks"): Row(lambda c: Call("/webhooks"), (200, 403, 403, 403, 200, 403, 200)),
    ("POST", "/webhooks"): Row(
        lambda c: Call("/webhooks", {"url": "https://siem.example.com/in", "events": ["*"]}),
        (201, 403, 403, 403, 201, 403, 201),
    ),
    ("GET", "/webhooks/{id}"): Row(
        lambda c: Call(f"/webhooks/{c.webhook().pk}"), (200, 403, 403, 403, 200, 403, 404)
    ),
    ("PATCH", "/webhooks/{id}"): Row(
        lambda c: Call(f"/webhooks/{c.webhook().pk}", {"version": 1, "description": "SIEM"}),
        (200, 403, 403, 403, 200, 403, 404),
    ),
    ("DELETE", "/webhooks/{id}"): Row(
        lambda c: Call(f"/webhooks/{c.webhook().pk}"), (204, 403, 403, 403, 204, 403, 404)
    ),
    ("POST", "/webhooks/{id}/rotate-secret"): Row(
        lambda c: Call(f"/webhooks/{c.webhook().pk}/rotate-secret", {}),
        (200, 403, 403, 403, 200, 403, 404),
    ),
    ("POST", "/webhooks/{id}/test"): Row(
        lambda c: Call(f"/webhooks/{c.webhook().pk}/test"), (202, 403, 403, 403, 202, 403, 404)
    ),
    ("GET", "/webhooks/{id}/deliveries"): Row(
        lambda c: Call(f"/webhooks/{c.webhook().pk}/deliveries"),
        (200, 403, 403, 403, 200, 403, 404),
    ),
    ("GET", "/webhooks/{id}/deliveries/{delivery_id}"): Row(
        lambda c: (lambda d: Call(f"/webhooks/{d.endpoint_id}/deliveries/{d.pk}"))(
            c.finished_delivery()
        ),
        (200, 403, 403, 403, 200, 403, 404),
    ),
    ("POST", "/webhooks/{id}/deliveries/{delivery_id}/redeliver"): Row(
        lambda c: (lambda d: Call(f"/webhooks/{d.endpoint_id}/deliveries/{d.pk}/redeliver"))(
            c.finished_delivery()
        ),
        (202, 403, 403, 403, 202, 403, 404),
    ),
}


def registered_operations() -> set[tuple[str, str]]:
    """(method, path) of every operation registered on the NinjaAPI, in any router."""
    operations = set()
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                for method in operation.methods:
                    operations.add((method, f"{prefix}{path}".replace("//", "/")))
    return operations


def test_every_operation_has_a_row():
    registered = registered_operations()
    assert registered - set(MATRIX) == set(), "operations without a row in MATRIX"
    assert set(MATRIX) - registered == set(), "rows for operations that do not exist"


def test_every_row_names_a_status_for_every_caller():
    assert all(len(row.expect) == len(CALLERS) for row in MATRIX.values())


@pytest.mark.parametrize("operation", sorted(MATRIX), ids=lambda op: f"{op[0]} {op[1]}")
def test_each_caller_gets_the_status_in_the_table(operation, world, callers):
    method, _ = operation
    row = MATRIX[operation]
    got = {}
    for caller in CALLERS:
        call = row.build(Cell(world, caller))
        response = callers.api(caller).request(method, call.path, call.body, query=call.query)
        got[caller] = response.status_code
        if response.status_code >= 400:
            assert response.json()["error"]["code"], response.content
        if response.status_code == 403:
            error = response.json()["error"]
            assert error["code"] == "forbidden"
    expected = dict(zip(CALLERS, row.expect, strict=True))
    wrong = {
        caller: (got[caller], expected[caller])
        for caller in CALLERS
        if got[caller] != expected[caller]
    }
    assert wrong == {}, f"{method} {operation[1]}: caller -> (got, expected)"
