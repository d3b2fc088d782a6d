"""Commands an operator runs by hand: the demo's refusal in production, --json and progress bars,
issue_token's IP filter, and expiring invitations from cron."""

import io
import json
import re
import sys
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from orgs.models import AuditEvent, User
from people import services as people_services
from people.models import InvitationStatus
from policies.services import create_ip_filter
from tests.factories import OPERATOR, issue
from tokens.auth import AuthenticationFailed, authenticate
from tokens.services import delete_token

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(name, *args, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()


# demo ---------------------------------------------------------------------------------------


def test_demo_refuses_in_production_without_the_explicit_flag(settings):
    """The finding: in production it created five people, two of them admins, with the
    published password keyward-demo."""
    settings.KEYWARD_PRODUCTION = True
    with pytest.raises(CommandError, match="--allow-production"):
        run("demo")
    assert not User.objects.exists()


def test_demo_in_production_gives_each_person_a_random_password_printed_once(settings):
    settings.KEYWARD_PRODUCTION = True
    out, _ = run("demo", "--allow-production")
    passwords = dict(re.findall(r"^  (\w+) .*password (\S+)$", out, flags=re.MULTILINE))
    assert set(passwords) == {"alice", "bob", "carol", "dave", "erin"}
    assert len(set(passwords.values())) == 5 and "keyward-demo" not in out
    for username, password in passwords.items():
        user = User.objects.get(username=username)
        assert user.check_password(password) and not user.check_password("keyward-demo")
    again, _ = run("demo", "--allow-production")
    assert not any(password in again for password in passwords.values())


def test_demo_in_development_keeps_the_published_password(settings):
    settings.KEYWARD_PRODUCTION = False
    out, _ = run("demo")
    assert "keyward-demo" in out
    assert User.objects.get(username="alice").check_password("keyward-demo")


# purge_technical_users ----------------------------------------------------------------------


def _gone_token_user(org_admin):
    issued = issue(org_admin, name=f"retired {timezone.now().timestamp()}")
    delete_token(actor=org_admin, token=issued.token)
    return issued.token.user


def test_purge_prints_json(world, org_admin):
    users = [_gone_token_user(org_admin) for _ in range(2)]
    with time_machine.travel(datetime.now(UTC) + timedelta(days=400)):
        out, _ = run("purge_technical_users", "--older-than", "365d", "--dry-run", "--json")
        assert json.loads(out) == {
            "dry_run": True,
            "purged": 2,
            "usernames": sorted(user.username for user in users),
        }
        out, _ = run("purge_technical_users", "--older-than", "365d", "--json")
    assert json.loads(out) == {"dry_run": False, "purged": 2}


def test_purge_draws_a_progress_bar_on_a_terminal_only(world, org_admin, monkeypatch):
    for _ in range(3):
        _gone_token_user(org_admin)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=400)):
        call_command(
            "purge_technical_users",
            "--older-than",
            "365d",
            "--batch-size",
            "2",
            stdout=io.StringIO(),
        )
    assert "purged [" in terminal.getvalue() and "3/3" in terminal.getvalue()


def test_purge_draws_no_bar_with_json_even_on_a_terminal(world, org_admin, monkeypatch):
    _gone_token_user(org_admin)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=400)):
        call_command(
            "purge_technical_users", "--older-than", "365d", "--json", stdout=io.StringIO()
        )
    assert terminal.getvalue() == ""


# notify_expiring_tokens ---------------------------------------------------------------------


@pytest.fixture
def reminders_due(world, org_admin, other_org_admin, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    User.objects.filter(pk__in=[world.alice.pk, world.dave.pk]).update(email="admin@example.com")
    issue(org_admin, name="Soon", expires_in=timedelta(days=5))
    issue(other_org_admin, name="Later", expires_in=timedelta(days=20))


def test_notify_prints_json(reminders_due):
    out, _ = run("notify_expiring_tokens", "--json")
    summary = json.loads(out)
    assert summary["dry_run"] is False and summary["tokens_reminded"] == 2
    assert summary["failures"] == []
    by_org = {digest["organization"]: digest for digest in summary["digests"]}
    assert by_org["acme"]["recipients"] == ["admin@example.com"]
    assert [token["name"] for token in by_org["acme"]["tokens"]] == ["Soon"]
    assert by_org["acme"]["tokens"][0]["threshold_days"] == 7
    again, _ = run("notify_expiring_tokens", "--json")
    assert json.loads(again)["tokens_reminded"] == 0


def test_notify_draws_a_progress_bar_on_a_terminal(reminders_due, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    call_command("notify_expiring_tokens", stdout=io.StringIO())
    assert "orgs [" in terminal.getvalue() and "2/2" in terminal.getvalue()


# issue_token --------------------------------------------------------------------------------


def test_issue_token_gives_the_token_a_named_ip_filter(world):
    create_ip_filter(
        actor=OPERATOR.__class__.operator(organization=world.acme, label="tests"),
        organization=world.acme,
        name="Office",
        rules_text="allow 10.0.0.0/8\ndeny all",
    )
    out, err = run(
        "issue_token", "--org", "acme", "--name", "ci", "--role", "member", "--ip-filter", "Office"
    )
    secret = out.strip()
    assert "IP filter 'Office'" in err
    assert authenticate(f"Bearer {secret}", "10.1.2.3").principal.token.ip_filter.name == "Office"
    with pytest.raises(AuthenticationFailed):
        authenticate(f"Bearer {secret}", "192.0.2.1")


def test_issue_token_refuses_an_unknown_ip_filter(world):
    with pytest.raises(CommandError, match="No IP filter 'Nope' in acme"):
        run(
            "issue_token",
            "--org",
            "acme",
            "--name",
            "ci",
            "--role",
            "member",
            "--ip-filter",
            "Nope",
        )


# expire_invitations ---------------------------------------------------------------------------


def test_expire_invitations_marks_overdue_ones_from_cron(world, org_admin):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        invitation = people_services.invite(actor=org_admin, organization=world.acme, username="x")
        traveller.shift(timedelta(days=8))
        out, _ = run("expire_invitations", "--json")
    assert json.loads(out) == {"expired": 1}
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.EXPIRED
    event = AuditEvent.objects.get(action="invitation.expired")
    assert event.actor_name == "expire_invitations (command line)"
