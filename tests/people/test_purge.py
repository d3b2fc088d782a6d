import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from orgs.models import AuditEvent, User
from tests.factories import OPERATOR, issue
from tokens.auth import authenticate
from tokens.services import delete_token, rename_token

pytestmark = pytest.mark.django_db

LATER = datetime.now(UTC) + timedelta(days=400)


def purge(*args):
    out = io.StringIO()
    call_command("purge_technical_users", *args, stdout=out)
    return out.getvalue()


def test_technical_users_of_long_deleted_tokens_are_removed_and_their_events_stay_readable(
    world, org_admin
):
    issued = issue(org_admin, name="Retired bot", role="admin")
    user = issued.token.user
    principal = authenticate(f"Bearer {issued.secret}", "192.0.2.10").principal
    victim = issue(org_admin, name="Victim").token
    rename_token(actor=principal, token=victim, name="Victim renamed")
    delete_token(actor=org_admin, token=issued.token)
    with time_machine.travel(LATER):
        output = purge("--older-than", "365d")
    assert "Deleted 1 technical users." in output
    assert not User.objects.filter(pk=user.pk).exists()
    event = AuditEvent.objects.get(action="token.renamed")
    assert event.actor is None and event.actor_name == "Retired bot"
    assert event.via_token_partial == issued.token.partial_token
    purged = AuditEvent.objects.get(action="technical_users.purged")
    assert purged.changes["purged"]["after"] == 1


def test_users_still_holding_a_token_recently_active_or_human_are_kept(world, org_admin):
    live = issue(org_admin, name="Live").token
    recent = issue(org_admin, name="Recent", role="admin")
    principal = authenticate(f"Bearer {recent.secret}", "192.0.2.10").principal
    delete_token(actor=org_admin, token=issue(org_admin, name="Quiet").token)
    with time_machine.travel(LATER - timedelta(days=10)):
        rename_token(actor=principal, token=live, name="Live renamed")  # acts 10 days "ago"
        delete_token(actor=OPERATOR, token=recent.token)
    with time_machine.travel(LATER):
        output = purge("--older-than", "30d")
    assert "Deleted 1 technical users." in output
    assert User.objects.filter(pk=live.user_id).exists()
    assert User.objects.filter(pk=recent.token.user_id).exists()
    assert not User.objects.filter(display_name="Quiet").exists()
    assert User.objects.filter(username="alice").exists()


def test_dry_run_lists_the_users_and_deletes_none(world, org_admin):
    token = issue(org_admin, name="Listed").token
    delete_token(actor=org_admin, token=token)
    with time_machine.travel(LATER):
        output = purge("--older-than", "30d", "--dry-run")
    assert f"would delete technical user {token.user.username}" in output
    assert "Would delete 1 technical users." in output
    assert User.objects.filter(pk=token.user_id).exists()
    assert not AuditEvent.objects.filter(action="technical_users.purged").exists()


def test_older_than_is_required_and_checked(world):
    with pytest.raises(CommandError, match="--older-than"):
        purge()
    with pytest.raises(CommandError, match="not a duration"):
        purge("--older-than", "a while")
    with pytest.raises(CommandError, match="--batch-size"):
        purge("--older-than", "30d", "--batch-size", "0")


def test_nothing_to_purge_is_not_an_error(world):
    assert "Deleted 0 technical users." in purge("--older-than", "1d")
    assert not AuditEvent.objects.filter(action="technical_users.purged").exists()
