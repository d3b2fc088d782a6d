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


def test_reporting_leaks_stores_and_logs_no_secret(client, world, org_admin, member, caplog):
    caplog.set_level(logging.DEBUG)
    world.alice.email = "alice@acme.test"
    world.alice.save(update_fields=["email"])
    current = issue(org_admin, name="Leaked")
    old = issue(org_admin, name="Rotated")
    regenerate_token(actor=org_admin, token=old.token, grace=timedelta(hours=1))
    personal = issue(member, scope="personal", role="member")
    secrets = [current.secret, old.secret, personal.secret]
    url = "https://github.com/octo/app/blob/abc123/.env"
    client.post(
        "/api/v1/leaked-tokens",
        [{"token": current.secret, "url": f"{url}#{current.secret}", "source": current.secret}],
        content_type="application/json",
    )
    client.post(
        "/api/v1/leaked-tokens",
        [{"token": old.secret, "url": url}, {"token": old.secret[:-1] + "x"}],
        content_type="application/json",
    )
    client.force_login(world.carol)
    client.post("/leaked-tokens/report/", {"tokens": personal.secret, "where": personal.secret})
    from mail.models import OutgoingEmail
    from orgs.models import AuditEvent
    from tokens.models import ApiToken

    assert AuditEvent.objects.filter(action="token.leaked").count() == 3
    assert ApiToken.objects.get(pk=personal.token.pk).revoked_reason == "Leaked: kwu_[masked]"
    assert OutgoingEmail.objects.filter(purpose="token_leaked").count() == 3

    bodies = [secret[4:-6] for secret in secrets]
    for label, text in every_stored_value():
        for body in bodies:
            assert body not in text, f"a secret is stored in {label}"
    for record in caplog.records:
        for body in bodies:
            assert body not in record.getMessage()
