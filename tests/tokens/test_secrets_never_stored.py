"""After a full token life cycle, no table and no log line holds any secret."""

import logging
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session

from tests.factories import PASSWORD, issue
from tokens.logging import MaskTokensFilter, mask
from tokens.services import delete_token, regenerate_token, revoke_token

pytestmark = pytest.mark.django_db


def every_stored_value():
    for model in apps.get_models():
        for row in model._default_manager.all().values():
            yield model._meta.label, " ".join(str(value) for value in row.values())


def test_no_table_and_no_log_line_ever_holds_a_secret(client, world, org_admin, member, caplog):
    caplog.set_level(logging.DEBUG)
    secrets = []
    organization_token = issue(org_admin, name="Lifecycle", role="admin")
    group_token = issue(org_admin, scope="group", group=world.platform, role="member")
    personal_token = issue(member, scope="personal", role="member")
    secrets += [organization_token.secret, group_token.secret, personal_token.secret]
    renewed = regenerate_token(
        actor=org_admin, token=organization_token.token, grace=timedelta(hours=1)
    )
    again = regenerate_token(actor=org_admin, token=organization_token.token)
    secrets += [renewed.secret, again.secret]
    for secret in secrets:
        client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}")
        client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret[:-1]}x")
    revoke_token(actor=org_admin, token=group_token.token, reason="done")
    delete_token(actor=org_admin, token=group_token.token)
    client.post("/login/", {"username": "alice", "password": "wrong"})
    client.post("/login/", {"username": "alice", "password": PASSWORD})

    bodies = [secret[4:-6] for secret in secrets]  # the random part, whatever surrounds it
    for label, text in every_stored_value():
        for body in bodies:
            assert body not in text, f"a secret is stored in {label}"
    for record in caplog.records:
        for body in bodies:
            assert body not in record.getMessage()
    assert Session.objects.exists()


def test_the_log_filter_masks_anything_shaped_like_a_token(org_admin):
    secret = issue(org_admin).secret
    assert secret not in mask(f"header was Bearer {secret}.")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "got %s", (secret,), None)
    MaskTokensFilter().filter(record)
    assert secret not in record.getMessage() and "kwo_[masked]" in record.getMessage()
