"""Leaked tokens: what a report does to the token it matches (tokens/leaks.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from access.errors import TokenLeaked
from mail.models import OutgoingEmail
from orgs.models import AuditEvent
from orgs.principals import Principal
from tests.factories import issue
from tokens import leaks
from tokens.auth import AuthenticationFailed, authenticate
from tokens.models import ApiToken, TokenSecret
from tokens.services import (
    delete_token,
    regenerate_token,
    restore_token,
    revoke_token,
    treat_pasted_as_leaked,
)

pytestmark = pytest.mark.django_db

URL = "https://github.com/octo/app/blob/abc123/.env"


@pytest.fixture(autouse=True)
def _addresses(world):
    for user, address in ((world.alice, "alice@acme.test"), (world.carol, "carol@acme.test")):
        user.email = address
        user.save(update_fields=["email"])


def report(secret, **kwargs):
    return leaks.process_report(
        leaks.LeakReport(token=secret, **kwargs), reporter_address="198.51.100.7"
    )


def works(secret):
    try:
        authenticate(f"Bearer {secret}", "203.0.113.5")
    except AuthenticationFailed:
        return False
    return True


def test_a_reported_current_secret_revokes_its_token_at_once_with_the_url_as_reason(org_admin):
    issued = issue(org_admin, name="deploy")
    assert report(issued.secret, url=URL, source="content") == leaks.Outcome.REVOKED
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert token.status == "revoked" and token.revoked_reason == f"Leaked: {URL}"
    assert token.leaked_at is not None and token.leaked_where == URL
    assert not works(issued.secret)


def test_without_a_url_the_reason_names_the_source(org_admin):
    issued = issue(org_admin)
    report(issued.secret, source="pastebin")
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_reason == "Leaked: pastebin"


def test_a_leaked_token_is_never_restored_only_deleted(org_admin):
    issued = issue(org_admin)
    report(issued.secret, url=URL)
    token = ApiToken.objects.get(pk=issued.token.pk)
    with pytest.raises(TokenLeaked):
        restore_token(actor=org_admin, token=token)
    assert ApiToken.objects.get(pk=token.pk).status == "revoked"
    delete_token(actor=org_admin, token=token)
    assert not ApiToken.objects.filter(pk=token.pk).exists()


def test_an_old_secret_in_its_grace_period_ends_and_the_current_one_keeps_working(org_admin):
    old = issue(org_admin)
    new = regenerate_token(actor=org_admin, token=old.token, grace=timedelta(hours=1))
    assert works(old.secret)
    assert report(old.secret, url=URL) == leaks.Outcome.GRACE_ENDED
    assert not works(old.secret)
    assert works(new.secret)
    token = ApiToken.objects.get(pk=old.token.pk)
    assert token.status == "active" and token.leaked_at is None
    event = AuditEvent.objects.get(action="token.leaked")
    assert event.changes["leak"]["after"]["outcome"] == "grace_ended"
    assert event.changes["leak"]["after"]["secret"] == "previous"


def test_a_revoked_or_expired_token_only_records_the_leak(org_admin):
    revoked = issue(org_admin)
    revoke_token(actor=org_admin, token=revoked.token, reason="rotated")
    expired = issue(org_admin, expires_in=timedelta(hours=1))
    later = timezone.now() + timedelta(hours=2)
    assert report(revoked.secret, url=URL) == leaks.Outcome.RECORDED
    outcome = leaks.process_report(
        leaks.LeakReport(token=expired.secret, url=URL), reporter_address=None, now=later
    )
    assert outcome == leaks.Outcome.RECORDED
    revoked_token = ApiToken.objects.get(pk=revoked.token.pk)
    assert revoked_token.revoked_reason == "rotated" and revoked_token.leaked_at is not None
    expired_token = ApiToken.objects.get(pk=expired.token.pk)
    assert expired_token.status == "active" and expired_token.leaked_at == later
    # Restoring would make a public secret work again.
    with pytest.raises(TokenLeaked):
        restore_token(actor=org_admin, token=revoked_token)


def test_a_second_report_of_the_same_secret_changes_nothing(org_admin):
    issued = issue(org_admin)
    report(issued.secret, url=URL)
    version = ApiToken.objects.get(pk=issued.token.pk).version
    assert report(issued.secret, url="https://elsewhere.test/") == leaks.Outcome.ALREADY_REPORTED
    assert ApiToken.objects.get(pk=issued.token.pk).version == version
    assert AuditEvent.objects.filter(action="token.leaked").count() == 1


def test_unknown_malformed_and_mistyped_tokens_match_nothing(org_admin):
    issued = issue(org_admin)
    mistyped = issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B")
    for text in ("", "hello", mistyped, "kwo_" + "A" * 49, issued.secret + "x"):
        assert report(text) == leaks.Outcome.NO_MATCH
    assert ApiToken.objects.get(pk=issued.token.pk).status == "active"


def test_each_leak_is_audited_as_the_leak_report_without_the_secret(org_admin):
    issued = issue(org_admin, name="deploy")
    report(issued.secret, url=f"{URL}?copy={issued.secret}", source="content")
    event = AuditEvent.objects.get(action="token.leaked")
    assert event.actor_name == "leak report" and event.address == "198.51.100.7"
    leak = event.changes["leak"]["after"]
    assert leak["url"].startswith(URL) and leak["source"] == "content"
    assert event.changes["status"] == {"before": "active", "after": "revoked"}
    everything = str(event.changes) + event.object_repr
    assert issued.secret not in everything and issued.secret[4:] not in everything
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert issued.secret not in token.revoked_reason + token.leaked_where


def test_admins_and_a_personal_tokens_owner_are_emailed_without_the_secret(world, member):
    issued = issue(member, scope="personal", role="member")
    report(issued.secret, url=URL)
    email = OutgoingEmail.objects.get(purpose="token_leaked")
    assert email.recipients == ["alice@acme.test", "carol@acme.test"]
    assert issued.token.name in email.subject and URL in email.body
    assert "revoked it at once" in email.body
    assert issued.secret not in email.subject + email.body


def test_an_organization_tokens_leak_is_mailed_to_the_admins_only(org_admin):
    issued = issue(org_admin)
    report(issued.secret, url=URL)
    assert OutgoingEmail.objects.get(purpose="token_leaked").recipients == ["alice@acme.test"]


def test_a_live_token_pasted_into_a_form_goes_through_the_same_path(org_admin, member):
    issued = issue(org_admin, name="deploy")
    assert treat_pasted_as_leaked(actor=member, secrets=[issued.secret, "kwo_nothing"]) == 1
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert token.revoked_reason == "Leaked: pasted into a form" and token.leaked_at is not None
    event = AuditEvent.objects.get(action="token.leaked")
    assert event.actor_name == "leak report"
    assert event.changes["leak"]["after"]["reported_by"] == "carol"
    assert OutgoingEmail.objects.filter(purpose="token_leaked").count() == 1


def test_the_leaked_secret_is_remembered_on_the_secret_row(org_admin):
    issued = issue(org_admin)
    report(issued.secret)
    assert TokenSecret.objects.get(token=issued.token).leaked_at is not None


def test_an_operator_cannot_restore_a_leaked_token_either(world, org_admin):
    issued = issue(org_admin)
    report(issued.secret)
    operator = Principal.operator(organization=world.acme, label="tests")
    with pytest.raises(TokenLeaked):
        restore_token(actor=operator, token=ApiToken.objects.get(pk=issued.token.pk))
