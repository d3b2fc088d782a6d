import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from mail.models import OutgoingEmail
from orgs.models import AuditEvent, User
from tests.factories import issue
from tokens.models import ExpiryReminder
from tokens.services import regenerate_token, revoke_token

pytestmark = pytest.mark.django_db

START = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


def notify(*args):
    out = io.StringIO()
    call_command("notify_expiring_tokens", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def addresses(world, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    for user in (world.alice, world.bob, world.carol, world.dave):
        User.objects.filter(pk=user.pk).update(email=f"{user.username}@example.com")


@pytest.fixture
def frozen():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def test_one_digest_per_organization_goes_to_its_admins(frozen, world, org_admin, other_org_admin):
    issue(org_admin, name="Deploy", expires_in=timedelta(days=20))
    issue(org_admin, name="Backup", expires_in=timedelta(days=25))
    issue(org_admin, name="Far away", expires_in=timedelta(days=90))
    issue(other_org_admin, name="Globex bot", expires_in=timedelta(days=10))
    output = notify()
    assert len(mail.outbox) == 2
    acme = next(message for message in mail.outbox if "Acme Corp" in message.subject)
    assert acme.to == ["alice@example.com"]
    assert acme.subject == "[Keyward] 2 API tokens expiring in Acme Corp"
    assert "Deploy" in acme.body and "Backup" in acme.body and "Far away" not in acme.body
    assert "in 20 days" in acme.body
    globex = next(message for message in mail.outbox if "Globex" in message.subject)
    assert globex.to == ["dave@example.com"] and "Globex bot" in globex.body
    assert "2 digests, 3 tokens reminded." in output


def test_group_tokens_also_go_to_the_group_s_admins(frozen, world, org_admin):
    issue(
        org_admin,
        scope="group",
        group=world.platform,
        name="Platform CI",
        expires_in=timedelta(days=6),
    )
    notify()
    subjects = {message.subject: message for message in mail.outbox}
    group_mail = subjects["[Keyward] 1 API token expiring in group Platform of Acme Corp"]
    assert group_mail.to == ["bob@example.com"] and "Platform CI" in group_mail.body
    assert "[Keyward] 1 API token expiring in Acme Corp" in subjects


def test_each_threshold_is_reminded_once(frozen, world, org_admin):
    issue(org_admin, name="Ticking", expires_in=timedelta(days=29, hours=12))
    notify()
    assert len(mail.outbox) == 1
    notify()
    frozen.shift(timedelta(days=10))
    notify()
    assert len(mail.outbox) == 1  # still the 30-day reminder, already sent
    frozen.shift(timedelta(days=13))  # 6.5 days left
    notify()
    assert len(mail.outbox) == 2 and "in 6 days" in mail.outbox[1].body
    frozen.shift(timedelta(days=6))  # 12 hours left
    notify()
    notify()
    assert len(mail.outbox) == 3 and "within a day" in mail.outbox[2].body
    assert sorted(ExpiryReminder.objects.values_list("threshold_days", flat=True)) == [1, 7, 30]


def test_each_reminder_is_an_audit_event_a_webhook_can_subscribe_to(frozen, world, org_admin):
    token = issue(org_admin, name="Ticking", expires_in=timedelta(days=6, hours=12)).token
    notify()
    notify()  # nothing new is due: no second event
    events = list(AuditEvent.objects.filter(action="token.expiring"))
    assert len(events) == 1
    event = events[0]
    assert event.object_id == str(token.pk) and event.organization_id == world.acme.pk
    assert event.actor_name == "expiry reminders"
    assert event.changes["days_left"]["after"] == 7
    assert event.changes["expires_at"]["after"] == token.expires_at.isoformat()


def test_a_token_first_seen_close_to_expiry_gets_only_the_nearest_reminder(
    frozen, world, org_admin
):
    issue(org_admin, name="Sudden", expires_in=timedelta(days=5))
    notify()
    frozen.shift(timedelta(hours=1))
    notify()
    assert len(mail.outbox) == 1
    assert list(ExpiryReminder.objects.values_list("threshold_days", flat=True)) == [7]


def test_a_new_expiry_after_regeneration_is_reminded_again(frozen, world, org_admin):
    token = issue(org_admin, name="Renewed", expires_in=timedelta(days=3)).token
    notify()
    frozen.shift(timedelta(days=2))
    regenerate_token(actor=org_admin, token=token)  # lives another 3 days from now
    notify()
    assert len(mail.outbox) == 2


def test_revoked_expired_and_never_expiring_tokens_are_not_listed(frozen, world, org_admin, member):
    revoked = issue(org_admin, name="Revoked", expires_in=timedelta(days=3)).token
    revoke_token(actor=org_admin, token=revoked)
    issue(org_admin, name="Forever", expires_at=None)
    mine = issue(member, scope="personal", role="member", name="Mine", expires_in=timedelta(days=3))
    revoke_token(actor=member, token=mine.token)
    issue(member, scope="personal", role="member", name="Far", expires_in=timedelta(days=20))
    issue(org_admin, name="Gone soon", expires_in=timedelta(minutes=5))
    frozen.shift(timedelta(minutes=10))
    assert "0 digests, 0 tokens reminded." in notify()
    assert mail.outbox == []


def test_owners_hear_about_their_personal_tokens_7_days_and_1_day_before_each_once(
    frozen, world, org_admin, member
):
    token = issue(
        member, scope="personal", role="member", name="Laptop", expires_in=timedelta(days=10)
    ).token
    assert "0 digests" in notify()  # 10 days: no reminder yet for a personal token
    frozen.shift(timedelta(days=3, hours=1))  # 6 days 23 hours left
    notify()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["carol@example.com"]  # the owner, and no admin
    assert message.subject == "[Keyward] Your API token in Acme Corp expires soon"
    assert "Laptop" in message.body and token.partial_token in message.body
    assert f"/o/acme/tokens/{token.pk}/" in message.body
    notify()
    assert len(mail.outbox) == 1  # once per threshold
    frozen.shift(timedelta(days=6, hours=1))  # 22 hours left
    notify()
    assert len(mail.outbox) == 2 and "Laptop" in mail.outbox[1].body
    notify()
    assert len(mail.outbox) == 2
    assert OutgoingEmail.objects.filter(purpose="expiry_reminder").count() == 2


def test_admins_keep_their_digests_beside_the_owners_reminders(frozen, world, org_admin, member):
    issue(org_admin, name="Deploy", expires_in=timedelta(days=5))
    issue(member, scope="personal", role="member", name="Laptop", expires_in=timedelta(days=5))
    notify()
    by_recipient = {tuple(message.to): message for message in mail.outbox}
    assert set(by_recipient) == {("alice@example.com",), ("carol@example.com",)}
    assert "Deploy" in by_recipient[("alice@example.com",)].body
    assert "Laptop" not in by_recipient[("alice@example.com",)].body
    assert "Laptop" in by_recipient[("carol@example.com",)].body


def test_dry_run_prints_the_digests_and_sends_and_records_nothing(frozen, world, org_admin):
    issue(org_admin, name="Preview", expires_in=timedelta(days=2))
    output = notify("--dry-run")
    assert "Would send '[Keyward] 1 API token expiring in Acme Corp' to alice@example.com" in output
    assert "Preview" in output and "1 tokens would be reminded." in output
    assert mail.outbox == [] and not ExpiryReminder.objects.exists()
    notify()
    assert len(mail.outbox) == 1


def test_an_organization_without_admin_addresses_is_reminded_once_one_is_set(
    frozen, world, org_admin
):
    User.objects.filter(pk=world.alice.pk).update(email="")
    issue(org_admin, name="Unheard", expires_in=timedelta(days=2))
    notify()
    assert mail.outbox == [] and not ExpiryReminder.objects.exists()
    User.objects.filter(pk=world.alice.pk).update(email="alice@example.com")
    notify()
    assert len(mail.outbox) == 1


def test_a_mail_failure_exits_non_zero_and_is_retried_next_run(
    frozen, world, org_admin, monkeypatch
):
    issue(org_admin, name="Retry", expires_in=timedelta(days=2))

    def broken(self, fail_silently=False):
        raise ConnectionRefusedError("SMTP server unreachable")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", broken)
    with pytest.raises(CommandError, match="alice@example.com: .*SMTP server unreachable"):
        notify()
    queued = OutgoingEmail.objects.get()
    assert queued.status == "pending" and "unreachable" in queued.last_error
    monkeypatch.undo()
    frozen.shift(timedelta(minutes=2))
    notify()
    assert len(mail.outbox) == 1
    assert OutgoingEmail.objects.get().status == "sent"
    notify()  # sent once, not again
    assert len(mail.outbox) == 1


def test_org_limits_the_reminders_to_one_organization(frozen, world, org_admin, other_org_admin):
    issue(org_admin, name="Acme soon", expires_in=timedelta(days=2))
    issue(other_org_admin, name="Globex soon", expires_in=timedelta(days=2))
    notify("--org", "globex")
    assert [message.to for message in mail.outbox] == [["dave@example.com"]]
    with pytest.raises(CommandError, match="No organization 'nope'"):
        notify("--org", "nope")


def test_help_explains_the_thresholds():
    from tokens.management.commands.notify_expiring_tokens import Command

    help_text = Command().create_parser("manage.py", "notify_expiring_tokens").format_help()
    text = " ".join(help_text.split())
    assert "30, 7, 1 days" in text and "--dry-run" in text
