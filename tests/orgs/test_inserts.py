"""insert_linked: new rows that point at each other, in one statement on PostgreSQL."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from orgs.inserts import insert_linked
from orgs.models import User, UserKind
from tokens.models import ApiToken, TokenSecret

pytestmark = pytest.mark.django_db


def _rows(world, name="Linked"):
    user = User(username=f"token.{name.lower()}", kind=UserKind.TECHNICAL, display_name=name)
    user.set_unusable_password()
    token = ApiToken(organization=world.acme, scope="organization", name=name, user=user)
    secret = TokenSecret(token=token, digest=f"digest-{name}", pepper_id="p1")
    return user, token, secret


def test_rows_are_written_linked_and_the_instances_marked_saved(world):
    user, token, secret = _rows(world)
    with CaptureQueriesContext(connection) as queries:
        insert_linked([(user, {}), (token, {"user_id": 0}), (secret, {"token_id": 1})])
    if connection.vendor == "postgresql":
        assert len(queries.captured_queries) == 1
    stored = TokenSecret.objects.select_related("token__user").get(pk=secret.pk)
    assert stored.token.pk == token.pk and stored.token.user.pk == user.pk
    assert stored.token.name_key == token.name_key == "linked"  # the field's pre_save ran
    assert token.user_id == user.pk and secret.token_id == token.pk
    assert token.user is user  # the related object stays cached
    assert not any(instance._state.adding for instance in (user, token, secret))
    token.description = "saved again"
    token.save()  # an update now, not a second insert
    assert ApiToken.objects.filter(name="Linked").count() == 1


def test_a_row_cannot_point_at_a_later_one(world):
    user, token, _secret = _rows(world)
    with pytest.raises(ValueError, match="inserted before"):
        insert_linked([(token, {"user_id": 1}), (user, {})])
    assert not User.objects.filter(username="token.linked").exists()


def test_a_conflict_writes_none_of_the_rows(world):
    first = _rows(world, "Taken")
    insert_linked([(first[0], {}), (first[1], {"user_id": 0}), (first[2], {"token_id": 1})])
    user = User(username="token.other", kind=UserKind.TECHNICAL, display_name="Other")
    token = ApiToken(organization=world.acme, scope="organization", name="TAKEN", user=user)
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_linked([(user, {}), (token, {"user_id": 0})])
    assert not User.objects.filter(username="token.other").exists()
