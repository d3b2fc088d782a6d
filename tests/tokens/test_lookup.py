"""The hand-written authentication query returns exactly what the ORM would."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.forms.models import model_to_dict

from policies.models import IpFilter
from tests.factories import issue
from tokens import token_format
from tokens.lookup import find_secret
from tokens.models import ApiToken, TokenSecret

pytestmark = pytest.mark.django_db


def digests(secret):
    return [token_format.digest(secret, pepper) for _id, pepper in settings.KEYWARD_TOKEN_PEPPERS]


def test_the_row_matches_the_orm_for_a_group_token_with_filter_and_expiry(world, org_admin):
    ip_filter = IpFilter.objects.create(
        organization=world.acme, name="Office", rules_text="allow 10.0.0.0/8"
    )
    issued = issue(
        org_admin,
        scope="group",
        group=world.platform,
        role="custom",
        permissions=["api.usage.read"],
        expires_in=timedelta(days=3),
        allowed_addresses=("10.1.0.0/16",),
        ip_filter=ip_filter,
    )
    row = find_secret(digests(issued.secret))
    token = ApiToken.objects.select_related("user", "organization", "group", "ip_filter").get(
        pk=issued.token.pk
    )
    assert model_to_dict(row.secret) == model_to_dict(TokenSecret.objects.get(token=token))
    assert model_to_dict(row.secret.token) == model_to_dict(token)
    assert row.secret.token.expires_at == token.expires_at and token.expires_at.tzinfo
    assert row.secret.token.user == token.user and row.secret.token.group == world.platform
    assert row.secret.token.ip_filter.rules_text == "allow 10.0.0.0/8"
    assert row.scope_policy == world.acme.security_policy.group_tokens
    # Only a personal token carries its owner's standing; a group token has none to carry.
    assert row.owner_role is None and row.owner_is_group_admin is False


def test_a_personal_token_row_carries_its_owners_roles(world, group_admin):
    issued = issue(group_admin, scope="personal", role="member")
    row = find_secret(digests(issued.secret))
    assert row.owner_role == "member" and row.owner_is_group_admin is True
    assert row.scope_policy == world.acme.security_policy.personal_tokens
    assert row.secret.token.group is None and row.secret.token.ip_filter is None


def test_an_unknown_digest_finds_nothing(db):
    assert find_secret(digests(token_format.generate("organization"))) is None


def test_authentication_never_reads_a_persons_password_hash(client, member):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    issued = issue(member, scope="personal", role="member")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 200 and response.json()["name"] == "carol"
    assert queries.captured_queries  # the lookup, and this first use of the minute
    assert not any("password" in query["sql"] for query in queries.captured_queries)
