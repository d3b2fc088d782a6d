"""Who may do what to which token, cell by cell, without HTTP.

Rows are kinds of principal; for each, targets are tokens weaker than, equal to and stronger
than the principal in its own scope, a token of another group, one of another organization and
another person's personal token. Each cell runs the real service on a fresh target and names
what happened:

    O  done          F  Forbidden (403)       N  NotFound (404: outside visibility)
    V  ValidationError (a grant beyond the actor's own)     -  no such target for this row

Actions, in the order of each cell string: read, revoke, regenerate, restore, rename, change
permissions, change addresses, delete, create (a token like the target: same scope, group, role
and permissions; a personal one is the actor's own).

The expectations are written out, not computed: they are the rules of docs/design.md as a
table. The HTTP matrix (tests/access/test_authorization_matrix_api.py) checks the same
through the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

import pytest
from django.core.exceptions import ValidationError

from access.errors import Forbidden, NotFound, TokenLeaked
from orgs.principals import Principal
from tests.factories import issue
from tokens.auth import authenticate
from tokens.models import ApiToken
from tokens.services import (
    create_token,
    delete_token,
    describe_token,
    regenerate_token,
    rename_token,
    replacement_draft,
    restore_token,
    revoke_token,
    update_token_addresses,
    update_token_permissions,
)

pytestmark = pytest.mark.django_db

ACTIONS = (
    "read",
    "revoke",
    "regenerate",
    "restore",
    "rename",
    "describe",
    "change_permissions",
    "change_addresses",
    "delete",
    "create",
)
TARGETS = ("weaker", "equal", "stronger", "other_group", "other_org", "others_personal")
READ_ONLY = ["api.api-tokens.read"]
READ_WRITE = ["api.api-tokens.read", "api.api-tokens.write"]
_names = count(1)


def _all(code: str) -> str:
    return code * len(ACTIONS)


NA = _all("-")
NOT_FOUND = _all("N")

# principal -> target -> outcome of each action, in ACTIONS order.
TABLE: dict[str, dict[str, str]] = {
    "org_admin_token": {
        "weaker": "OOOOOOOOOO",
        "equal": "OOOOOOOOOO",
        "stronger": NA,
        "other_group": "OOOOOOOOOO",
        "other_org": NOT_FOUND,
        "others_personal": "OOFFFFFFFF",  # revoked (kill switch), never managed
    },
    "org_member_token": {
        "weaker": "OFFFFFFFFF",
        "equal": "OFFFFFFFFF",
        "stronger": "OFFFFFFFFF",
        "other_group": "OFFFFFFFFF",
        "other_org": NOT_FOUND,
        "others_personal": "OFFFFFFFFF",
    },
    "custom_token": {  # api-tokens.read and .write: the attacker of issue 12
        "weaker": "OOOOOOOOFO",
        "equal": "OOOOOOOOFO",
        "stronger": "OOFFFFFFFV",
        "other_group": "OOFFFFFFFV",
        "other_org": NOT_FOUND,
        "others_personal": "OOFFFFFFFF",
    },
    "group_admin_token": {
        "weaker": "OOOOOOOOOO",
        "equal": "OOOOOOOOOO",
        "stronger": NA,
        "other_group": "NNNNNNNNNN",
        "other_org": NOT_FOUND,
        "others_personal": "NNNNNNNNNF",
    },
    "group_member_token": {
        "weaker": "OFFFFFFFFF",
        "equal": "OFFFFFFFFF",
        "stronger": "OFFFFFFFFF",
        "other_group": "NNNNNNNNNF",
        "other_org": NOT_FOUND,
        "others_personal": "NNNNNNNNNF",
    },
    "personal_of_admin": {
        "weaker": "OOOOOOOOOO",
        "equal": "OOOOOOOOOO",
        "stronger": NA,
        "other_group": "OOOOOOOOOO",
        "other_org": NOT_FOUND,
        "others_personal": "OOFFFFFFFO",
    },
    "personal_of_member": {
        "weaker": "OOOOOOOOOO",
        "equal": "OOOOOOOOOO",
        "stronger": NA,
        "other_group": "NNNNNNNNNN",
        "other_org": NOT_FOUND,
        "others_personal": "NNNNNNNNNO",
    },
    "personal_writer_of_member": {  # carol's personal token with read and write only
        "weaker": "OOOOOOOOFO",
        "equal": "OOOOOOOOFO",
        "stronger": "OOFFFFFFFV",
        "other_group": "NNNNNNNNNN",
        "other_org": NOT_FOUND,
        "others_personal": "NNNNNNNNNV",
    },
    "other_org_token": {
        "weaker": NOT_FOUND,
        "equal": NOT_FOUND,
        "stronger": NA,
        "other_group": NOT_FOUND,
        "other_org": NOT_FOUND,
        "others_personal": NOT_FOUND,
    },
    "human_admin": {
        "weaker": "OOOOOOOOOO",
        "equal": "OOOOOOOOOO",
        "stronger": NA,
        "other_group": "OOOOOOOOOO",
        "other_org": NOT_FOUND,
        "others_personal": "OOFFFFFFFO",
    },
    "human_member": {
        "weaker": "OOOOOOOOOO",
        "equal": "OOOOOOOOOO",
        "stronger": NA,
        "other_group": "NNNNNNNNNN",
        "other_org": NOT_FOUND,
        "others_personal": "NNNNNNNNNO",
    },
    "human_group_admin": {
        "weaker": "OOOOOOOOOO",
        "equal": "OOOOOOOOOO",
        "stronger": NA,
        "other_group": "NNNNNNNNNN",
        "other_org": NOT_FOUND,
        "others_personal": "NNNNNNNNNO",
    },
}


@dataclass(frozen=True)
class Spec:
    """A token to make: scope, group (by world attribute), owner (by world attribute), grant."""

    scope: str
    role: str
    permissions: tuple[str, ...] = ()
    group: str | None = None
    owner: str | None = None
    organization: str = "acme"


ORG_WEAKER = Spec("organization", "custom", tuple(READ_ONLY))
ORG_ADMIN = Spec("organization", "admin")
PLATFORM_WEAKER = Spec("group", "custom", tuple(READ_ONLY), group="platform")
PLATFORM_ADMIN = Spec("group", "admin", group="platform")
PLATFORM_MEMBER = Spec("group", "member", group="platform")
DATA_ADMIN = Spec("group", "admin", group="data")
GLOBEX_ADMIN = Spec("organization", "admin", organization="globex")
CAROL_WEAKER = Spec("personal", "custom", tuple(READ_ONLY), owner="carol")
CAROL_ADMIN = Spec("personal", "admin", owner="carol")
CAROL_WRITER = Spec("personal", "custom", tuple(READ_WRITE), owner="carol")
BOB_ADMIN = Spec("personal", "admin", owner="bob")
ALICE_ADMIN = Spec("personal", "admin", owner="alice")

# principal -> (how it is made, its targets). A token principal is a Spec authenticated through
# the real bearer path; a person is (user attribute,).
ROWS: dict[str, tuple[Spec | str, dict[str, Spec | None]]] = {
    "org_admin_token": (
        ORG_ADMIN,
        {
            "weaker": ORG_WEAKER,
            "equal": ORG_ADMIN,
            "stronger": None,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": CAROL_ADMIN,
        },
    ),
    "org_member_token": (
        Spec("organization", "member"),
        {
            "weaker": ORG_WEAKER,
            "equal": Spec("organization", "member"),
            "stronger": ORG_ADMIN,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": CAROL_ADMIN,
        },
    ),
    "custom_token": (
        Spec("organization", "custom", tuple(READ_WRITE)),
        {
            "weaker": ORG_WEAKER,
            "equal": Spec("organization", "custom", tuple(READ_WRITE)),
            "stronger": ORG_ADMIN,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": CAROL_ADMIN,
        },
    ),
    "group_admin_token": (
        PLATFORM_ADMIN,
        {
            "weaker": PLATFORM_WEAKER,
            "equal": PLATFORM_ADMIN,
            "stronger": None,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": CAROL_ADMIN,
        },
    ),
    "group_member_token": (
        PLATFORM_MEMBER,
        {
            "weaker": PLATFORM_WEAKER,
            "equal": PLATFORM_MEMBER,
            "stronger": PLATFORM_ADMIN,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": CAROL_ADMIN,
        },
    ),
    "personal_of_admin": (
        ALICE_ADMIN,
        {
            "weaker": ORG_WEAKER,
            "equal": ORG_ADMIN,
            "stronger": None,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": CAROL_ADMIN,
        },
    ),
    "personal_of_member": (
        CAROL_ADMIN,
        {
            "weaker": CAROL_WEAKER,
            "equal": CAROL_ADMIN,
            "stronger": None,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": BOB_ADMIN,
        },
    ),
    "personal_writer_of_member": (
        CAROL_WRITER,
        {
            "weaker": CAROL_WEAKER,
            "equal": CAROL_WRITER,
            "stronger": CAROL_ADMIN,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": BOB_ADMIN,
        },
    ),
    "other_org_token": (
        GLOBEX_ADMIN,
        {
            "weaker": ORG_WEAKER,
            "equal": ORG_ADMIN,
            "stronger": None,
            "other_group": DATA_ADMIN,
            "other_org": PLATFORM_ADMIN,
            "others_personal": CAROL_ADMIN,
        },
    ),
    "human_admin": (
        "alice",
        {
            "weaker": ORG_WEAKER,
            "equal": ORG_ADMIN,
            "stronger": None,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": CAROL_ADMIN,
        },
    ),
    "human_member": (
        "carol",
        {
            "weaker": CAROL_WEAKER,
            "equal": CAROL_ADMIN,
            "stronger": None,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": BOB_ADMIN,
        },
    ),
    "human_group_admin": (
        "bob",
        {
            "weaker": PLATFORM_WEAKER,
            "equal": PLATFORM_ADMIN,
            "stronger": None,
            "other_group": DATA_ADMIN,
            "other_org": GLOBEX_ADMIN,
            "others_personal": CAROL_ADMIN,
        },
    ),
}


def _issuer(world, spec: Spec) -> Principal:
    organization = getattr(world, spec.organization)
    if spec.owner is not None:
        return Principal.for_member(getattr(world, spec.owner), organization)
    return Principal.operator(organization=organization, label="tests")


def make(world, spec: Spec) -> ApiToken:
    return _made(world, spec).token


def _made(world, spec: Spec):
    return issue(
        _issuer(world, spec),
        name=f"target {next(_names)}",
        scope=spec.scope,
        group=getattr(world, spec.group) if spec.group else None,
        role=spec.role,
        permissions=spec.permissions,
    )


def principal_of(world, made_as: Spec | str) -> Principal:
    if isinstance(made_as, str):
        return Principal.for_member(getattr(world, made_as), world.acme)
    secret = _made(world, made_as).secret
    return authenticate(f"Bearer {secret}", "203.0.113.5").principal


def _revoker(world, token: ApiToken) -> Principal:
    """Who revokes the target before a restore: its owner for a personal token (one revoked by
    anyone else is never its owner's to restore), an operator otherwise."""
    if token.scope == "personal":
        return Principal.for_member(token.user, token.organization)
    return Principal.operator(organization=token.organization, label="tests")


def _create_like(world, actor: Principal, spec: Spec) -> None:
    create_token(
        actor=actor,
        organization=getattr(world, spec.organization),
        name=f"copy {next(_names)}",
        scope=spec.scope,
        group=getattr(world, spec.group) if spec.group else None,
        role=spec.role,
        permissions=spec.permissions,
    )


def _read(world, actor: Principal, token: ApiToken) -> None:
    if not ApiToken.objects.visible_to(actor).filter(pk=token.pk).exists():
        raise NotFound("Not visible.")


RUN: dict[str, Callable] = {
    "read": _read,
    "revoke": lambda world, actor, token: revoke_token(actor=actor, token=token, reason="t"),
    "regenerate": lambda world, actor, token: regenerate_token(actor=actor, token=token),
    "restore": lambda world, actor, token: restore_token(
        actor=actor, token=revoke_token(actor=_revoker(world, token), token=token)
    ),
    "rename": lambda world, actor, token: rename_token(
        actor=actor, token=token, name=f"renamed {next(_names)}"
    ),
    "describe": lambda world, actor, token: describe_token(
        actor=actor, token=token, description=f"described {next(_names)}"
    ),
    "change_permissions": lambda world, actor, token: update_token_permissions(
        actor=actor, token=token, role=token.role, permissions=token.permissions
    ),
    "change_addresses": lambda world, actor, token: update_token_addresses(
        actor=actor, token=token, ip_filter=None, allowed_addresses=["10.0.0.0/8"]
    ),
    "delete": lambda world, actor, token: delete_token(actor=actor, token=token),
}


def outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except Forbidden:
        return "F"
    except NotFound:
        return "N"
    except ValidationError:
        return "V"
    return "O"


@pytest.mark.usefixtures("permission_edits_allowed")
@pytest.mark.parametrize("row", list(ROWS))
def test_each_principal_may_do_exactly_what_the_table_says(world, row):
    made_as, targets = ROWS[row]
    actor = principal_of(world, made_as)
    wrong = {}
    for target_name in TARGETS:
        spec = targets[target_name]
        expected = TABLE[row][target_name]
        if spec is None:
            assert expected == NA, f"{row}/{target_name} has no target but expects {expected}"
            continue
        got = []
        for action in ACTIONS:
            if action == "create":
                got.append(outcome(lambda spec=spec: _create_like(world, actor, spec)))
            else:
                token = make(world, spec)
                got.append(
                    outcome(lambda action=action, token=token: RUN[action](world, actor, token))
                )
        if "".join(got) != expected:
            wrong[target_name] = ("".join(got), expected)
    assert wrong == {}, f"{row}: target -> (got, expected) in order {', '.join(ACTIONS)}"


def test_every_row_has_every_target_and_action():
    assert set(TABLE) == set(ROWS)
    for row, cells in TABLE.items():
        assert set(cells) == set(TARGETS), row
        assert all(len(cell) == len(ACTIONS) for cell in cells.values()), row


# Leaked tokens (issue 14) ----------------------------------------------------------------------
#
# The same principals and targets, each target's secret reported leaked first. Actions: restore,
# delete, replace (create a replacement: ``replacement_draft``, what the console's Create a
# replacement asks). L: TokenLeaked (409): restoring a leaked token is refused even to those who
# could restore it otherwise; to anyone else the manage rule answers first, so they learn
# nothing new. Deleting is the manage rule unchanged. Replacing is creating a token like it
# within one's own rights; a personal token only by its owner. The owner's own personal tokens
# answer F to restore: the leak report revoked them, and a personal token someone else revoked
# is never its owner's to restore (design.md), which the manage rule says first.

LEAK_ACTIONS = ("restore", "delete", "replace")
LEAK_NA = "-" * len(LEAK_ACTIONS)
LEAK_NOT_FOUND = "N" * len(LEAK_ACTIONS)

LEAK_TABLE: dict[str, dict[str, str]] = {
    "org_admin_token": {
        "weaker": "LOO",
        "equal": "LOO",
        "stronger": LEAK_NA,
        "other_group": "LOO",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "FFF",
    },
    "org_member_token": {
        "weaker": "FFF",
        "equal": "FFF",
        "stronger": "FFF",
        "other_group": "FFF",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "FFF",
    },
    "custom_token": {
        "weaker": "LFO",
        "equal": "LFO",
        "stronger": "FFF",
        "other_group": "FFF",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "FFF",
    },
    "group_admin_token": {
        "weaker": "LOO",
        "equal": "LOO",
        "stronger": LEAK_NA,
        "other_group": "NNN",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "NNN",
    },
    "group_member_token": {
        "weaker": "FFF",
        "equal": "FFF",
        "stronger": "FFF",
        "other_group": "NNN",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "NNN",
    },
    "personal_of_admin": {
        "weaker": "LOO",
        "equal": "LOO",
        "stronger": LEAK_NA,
        "other_group": "LOO",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "FFF",
    },
    "personal_of_member": {
        "weaker": "FOO",
        "equal": "FOO",
        "stronger": LEAK_NA,
        "other_group": "NNN",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "NNN",
    },
    "personal_writer_of_member": {
        "weaker": "FFO",
        "equal": "FFO",
        "stronger": "FFF",
        "other_group": "NNN",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "NNN",
    },
    "other_org_token": {
        "weaker": LEAK_NOT_FOUND,
        "equal": LEAK_NOT_FOUND,
        "stronger": LEAK_NA,
        "other_group": LEAK_NOT_FOUND,
        "other_org": LEAK_NOT_FOUND,
        "others_personal": LEAK_NOT_FOUND,
    },
    "human_admin": {
        "weaker": "LOO",
        "equal": "LOO",
        "stronger": LEAK_NA,
        "other_group": "LOO",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "FFF",
    },
    "human_member": {
        "weaker": "FOO",
        "equal": "FOO",
        "stronger": LEAK_NA,
        "other_group": "NNN",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "NNN",
    },
    "human_group_admin": {
        "weaker": "LOO",
        "equal": "LOO",
        "stronger": LEAK_NA,
        "other_group": "NNN",
        "other_org": LEAK_NOT_FOUND,
        "others_personal": "NNN",
    },
}


def _leaked(world, spec: Spec) -> ApiToken:
    from tokens import leaks

    made = _made(world, spec)
    leaks.process_report(leaks.LeakReport(token=made.secret, url="u"), reporter_address=None)
    return ApiToken.objects.get(pk=made.token.pk)


LEAK_RUN: dict[str, Callable] = {
    "restore": lambda actor, token: restore_token(actor=actor, token=token),
    "delete": lambda actor, token: delete_token(actor=actor, token=token),
    "replace": lambda actor, token: replacement_draft(actor=actor, token=token),
}


@pytest.mark.parametrize("row", list(ROWS))
def test_each_principal_may_do_to_a_leaked_token_what_the_table_says(world, row):
    made_as, targets = ROWS[row]
    actor = principal_of(world, made_as)
    wrong = {}
    for target_name in TARGETS:
        spec = targets[target_name]
        expected = LEAK_TABLE[row][target_name]
        if spec is None:
            assert expected == LEAK_NA
            continue
        got = ""
        for action in LEAK_ACTIONS:
            token = _leaked(world, spec)
            try:
                LEAK_RUN[action](actor, token)
            except TokenLeaked:
                got += "L"
            except Forbidden:
                got += "F"
            except NotFound:
                got += "N"
            except ValidationError:
                got += "V"
            else:
                got += "O"
        if got != expected:
            wrong[target_name] = (got, expected)
    assert wrong == {}, f"{row}: target -> (got, expected) in order {', '.join(LEAK_ACTIONS)}"


def test_the_leak_table_has_every_row_and_target():
    assert set(LEAK_TABLE) == set(ROWS)
    for row, cells in LEAK_TABLE.items():
        assert set(cells) == set(TARGETS), row
        assert all(len(cell) == len(LEAK_ACTIONS) for cell in cells.values()), row
