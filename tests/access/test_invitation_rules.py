"""Who may invite, read, withdraw and answer invitations, cell by cell, without HTTP.

Each cell runs the real service on a fresh invitation of acme addressed to erin (who belongs to
globex, not to acme) and names what happened, as in test_rules_table.py:

    O  done      F  Forbidden (403)      N  NotFound (404)      V  a grant beyond the actor's own

Actions, in the order of each cell string: invite a member, invite an admin, read the
organization's invitations, withdraw one, accept, decline. The expectations are the rules of
docs/design.md ("Who may do what") written out.
"""

from __future__ import annotations

from itertools import count

import pytest
from django.core.exceptions import ValidationError

from access import rules
from access.errors import Forbidden, NotFound
from orgs.models import Role
from orgs.principals import Principal
from people import services
from people.models import Invitation
from tests.factories import add_member, issue, make_user
from tokens.auth import authenticate

pytestmark = pytest.mark.django_db

ACTIONS = ("invite_member", "invite_admin", "read", "withdraw", "accept", "decline")
_names = count(1)

TABLE: dict[str, str] = {
    "org_admin_token": "OOOONN",
    "org_member_token": "FFFFNN",
    "custom_users_token": "VVOONN",  # api.users.read and .write only: grants nothing else
    "group_admin_token": "FFFFNN",
    "personal_of_admin": "OOOONN",
    "personal_of_member": "FFFFNN",
    "other_org_token": "NNNNNN",
    "human_admin": "OOOONN",
    "human_member": "FFFFNN",
    "human_group_admin": "FFFFNN",
    "invitee_in_console": "FFFFOO",  # erin, signed in, outside any organization
    "invitee_personal_token": "NNFNOO",  # erin's personal token of globex
}


def _token(world, organization, **spec) -> Principal:
    issuer = Principal.operator(organization=organization, label="tests")
    if spec.get("scope") == "personal":
        issuer = Principal.for_member(spec.pop("owner"), organization)
    secret = issue(issuer, name=f"caller {next(_names)}", **spec).secret
    return authenticate(f"Bearer {secret}", "203.0.113.5").principal


def principal(world, erin, row: str) -> Principal:
    acme, globex = world.acme, world.globex
    return {
        "org_admin_token": lambda: _token(world, acme, role="admin"),
        "org_member_token": lambda: _token(world, acme, role="member"),
        "custom_users_token": lambda: _token(
            world, acme, role="custom", permissions=["api.users.read", "api.users.write"]
        ),
        "group_admin_token": lambda: _token(
            world, acme, scope="group", group=world.platform, role="admin"
        ),
        "personal_of_admin": lambda: _token(
            world, acme, scope="personal", owner=world.alice, role="admin"
        ),
        "personal_of_member": lambda: _token(
            world, acme, scope="personal", owner=world.carol, role="admin"
        ),
        "other_org_token": lambda: _token(world, globex, role="admin"),
        "human_admin": lambda: Principal.for_member(world.alice, acme),
        "human_member": lambda: Principal.for_member(world.carol, acme),
        "human_group_admin": lambda: Principal.for_member(world.bob, acme),
        "invitee_in_console": lambda: Principal(user=erin, organization=None),
        "invitee_personal_token": lambda: _token(
            world, globex, scope="personal", owner=erin, role="admin"
        ),
    }[row]()


def fresh_invitation(world) -> Invitation:
    Invitation.objects.filter(username="erin", status="pending").delete()
    return services.invite(
        actor=Principal.operator(organization=world.acme, label="tests"),
        organization=world.acme,
        username="erin",
    )


def _read(actor: Principal, invitation: Invitation) -> None:
    rules.require_read_invitations(actor)
    if not Invitation.objects.visible_to(actor).filter(pk=invitation.pk).exists():
        raise NotFound("Not visible.")


def run(world, actor: Principal, action: str) -> None:
    if action.startswith("invite_"):
        role = Role.ADMIN if action == "invite_admin" else Role.MEMBER
        services.invite(
            actor=actor, organization=world.acme, username=f"guest{next(_names)}", role=role
        )
        return
    invitation = fresh_invitation(world)
    if action == "read":
        _read(actor, invitation)
    elif action == "withdraw":
        services.withdraw_invitation(actor=actor, invitation=invitation)
    elif action == "accept":
        services.accept_invitation(actor=actor, invitation=invitation)
        # Leave acme again for the next cell (an operator removes her).
        membership = world.acme.memberships.get(user__username="erin")
        membership.delete()
    else:
        services.decline_invitation(actor=actor, invitation=invitation)


def outcome(call) -> str:
    try:
        call()
    except Forbidden:
        return "F"
    except NotFound:
        return "N"
    except ValidationError:
        return "V"
    return "O"


@pytest.fixture
def erin(world):
    user = make_user("erin")
    add_member(world.globex, user)
    return user


@pytest.mark.parametrize("row", list(TABLE))
def test_each_principal_may_do_exactly_what_the_table_says(world, erin, row):
    got = "".join(
        outcome(lambda action=action: run(world, principal(world, erin, row), action))
        for action in ACTIONS
    )
    assert got == TABLE[row], f"{row}: got {got}, expected {TABLE[row]} in order {ACTIONS}"


def test_the_may_functions_agree_with_the_services(world, erin):
    """For principals of acme (the others' may_* speak of their own organization)."""
    invitation = fresh_invitation(world)
    for row, expected in TABLE.items():
        if row in ("other_org_token", "invitee_personal_token"):
            continue
        actor = principal(world, erin, row)
        assert rules.may_invite(actor) == (expected[0] in "OV"), row
        assert rules.may_read_invitations(actor) == (expected[2] == "O"), row
        assert rules.may_answer_invitation(actor, invitation) == (expected[4] == "O"), row
