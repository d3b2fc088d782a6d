"""No sequence of token actions lets an actor end up with more than it holds.

Hypothesis draws an actor (an organization or group token with a random permission set), a
target token with another random set, and a sequence of actions the actor tries on the target
and on every token it creates on the way. Whatever succeeds, two things must stay true:

- every secret the actor obtains (by creating or regenerating a token) belongs to a token whose
  effective permissions are within the actor's own;
- every token the actor created or reshaped holds only permissions the actor holds.
"""

from __future__ import annotations

from itertools import count

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from access import catalog
from access.errors import DomainError
from orgs.principals import Principal
from tests.factories import issue
from tokens.auth import authenticate
from tokens.models import ApiToken
from tokens.services import (
    create_token,
    delete_token,
    regenerate_token,
    restore_token,
    revoke_token,
    update_token_addresses,
    update_token_permissions,
)

pytestmark = pytest.mark.django_db

GROUP_VALID = sorted(catalog.valid_in(catalog.GROUP))
ORG_VALID = sorted(catalog.valid_in(catalog.ORGANIZATION))
WRITE = "api.api-tokens.write"
_names = count(1)

scopes = st.sampled_from(["organization", "group"])
roles = st.sampled_from(["admin", "member", "custom"])


def grants(valid: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(valid), min_size=1, max_size=6, unique=True)


step = st.tuples(
    st.sampled_from(
        ["regenerate", "restore", "revoke", "reshape", "create", "addresses", "delete"]
    ),
    st.integers(min_value=0, max_value=5),  # which known token
    roles,
    grants(ORG_VALID),
    scopes,
)


class Rollback(Exception):
    """Leave each example's database as it was."""


def _valid(scope: str) -> list[str]:
    return GROUP_VALID if scope == "group" else ORG_VALID


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    actor_scope=scopes,
    actor_grant=grants(ORG_VALID),
    with_write=st.booleans(),
    target_scope=scopes,
    target_role=roles,
    target_grant=grants(ORG_VALID),
    steps=st.lists(step, min_size=1, max_size=8),
)
def test_no_sequence_of_actions_gives_an_actor_more_than_it_holds(
    world, actor_scope, actor_grant, with_write, target_scope, target_role, target_grant, steps
):
    try:
        with transaction.atomic():
            _play(
                world,
                actor_scope,
                actor_grant,
                with_write,
                target_scope,
                target_role,
                target_grant,
                steps,
            )
            raise Rollback
    except Rollback:
        pass


def _play(
    world, actor_scope, actor_grant, with_write, target_scope, target_role, target_grant, steps
):
    operator = Principal.operator(organization=world.acme, label="tests")
    group = world.platform

    def make(by: Principal, scope: str, role: str, grant: list[str]):
        valid = _valid(scope)
        return issue(
            by,
            name=f"t{next(_names)}",
            scope=scope,
            group=group if scope == "group" else None,
            role=role,
            permissions=[name for name in grant if name in valid] or [valid[0]],
        )

    grant = list(actor_grant) + ([WRITE] if with_write else [])
    actor_token = make(operator, actor_scope, "custom", grant)
    actor = authenticate(f"Bearer {actor_token.secret}", "203.0.113.9").principal
    held = actor.permissions
    known: list[ApiToken] = [make(operator, target_scope, target_role, target_grant).token]
    reshaped: set[int] = set()

    def effective(token: ApiToken) -> frozenset[str]:
        token.refresh_from_db()
        return token.granted_permissions()

    for action, index, role, permissions, scope in steps:
        token = known[index % len(known)]
        if not ApiToken.objects.filter(pk=token.pk).exists():
            continue
        obtained = None
        try:
            with transaction.atomic():
                if action == "regenerate":
                    obtained = regenerate_token(actor=actor, token=token)
                elif action == "restore":
                    if token.status == "active":
                        revoke_token(actor=operator, token=token)
                        token.refresh_from_db()
                    restore_token(actor=actor, token=token)
                elif action == "revoke":
                    revoke_token(actor=actor, token=token)
                elif action == "reshape":
                    valid = _valid(token.scope)
                    update_token_permissions(
                        actor=actor,
                        token=token,
                        role=role,
                        permissions=[name for name in permissions if name in valid] or [valid[0]],
                    )
                    reshaped.add(token.pk)
                elif action == "addresses":
                    update_token_addresses(
                        actor=actor, token=token, ip_filter=None, allowed_addresses=["10.0.0.0/8"]
                    )
                elif action == "delete":
                    delete_token(actor=actor, token=token)
                else:
                    valid = _valid(scope)
                    obtained = create_token(
                        actor=actor,
                        organization=world.acme,
                        name=f"c{next(_names)}",
                        scope=scope,
                        group=group if scope == "group" else None,
                        role=role,
                        permissions=[name for name in permissions if name in valid] or [valid[0]],
                    )
                    known.append(obtained.token)
                    reshaped.add(obtained.token.pk)
        except (DomainError, ValidationError):
            continue
        if obtained is not None:
            stronger = effective(obtained.token) - held
            assert not stronger, f"{action} handed the actor a secret holding {sorted(stronger)}"
        for pk in reshaped:
            reshaped_token = ApiToken.objects.filter(pk=pk).first()
            if reshaped_token is not None:
                stronger = effective(reshaped_token) - held
                assert not stronger, f"token {pk} was given {sorted(stronger)} beyond the actor"
