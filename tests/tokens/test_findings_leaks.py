"""Findings of an attack on the leak report endpoint, the Inactive list's Leaked filter and
the policy's "Revoke tokens unused for" (issues 13 and 14), each as the behaviour a user or an
attacker would notice."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from policies.services import update_security_policy
from tests.factories import HTMX, issue
from tokens.leaks import LeakReport, process_report
from tokens.models import ApiToken
from tokens.services import revoke_token

pytestmark = pytest.mark.django_db

ENDPOINT = "/api/v1/leaked-tokens"


def report(client, address):
    return client.post(
        ENDPOINT, json.dumps([{"token": "x"}]), content_type="application/json", REMOTE_ADDR=address
    )


# Rate limit: one IPv6 network is one reporter -----------------------------------------------


def test_addresses_of_one_ipv6_network_share_the_report_limit(client):
    """Anyone on IPv6 is given a /64 (2^64 addresses): counting each address on its own lets
    one reporter send as many reports as it likes by changing the low bits."""
    answers = [report(client, f"2001:db8:1:2::{n:x}").status_code for n in range(1, 32)]
    assert answers == [202] * 30 + [429]
    elsewhere = report(client, "2001:db8:1:3::1")
    assert elsewhere.status_code == 202  # another /64 is another reporter


def test_ipv4_addresses_are_still_counted_one_by_one(client):
    answers = [report(client, f"198.51.100.{n}").status_code for n in range(1, 40)]
    assert answers == [202] * 39


# The Inactive list's Leaked filter --------------------------------------------------------


def names_listed(content: str) -> set[str]:
    import re

    return set(re.findall(r'<tr id="token-\d+">\s*<td><a href="[^"]+">([^<]+)</a>', content))


def test_the_leaked_filter_lists_leaked_tokens_not_reasons_that_say_leaked(as_alice, org_admin):
    """A token that had already expired when its secret was reported is leaked (badge, never
    restorable) and must be found by the filter; a token someone revoked with a reason that
    starts "Leaked:" was not reported leaked, and can still be restored."""
    expired = issue(org_admin, name="Expired then leaked", expires_in=timedelta(days=1))
    ApiToken.objects.filter(pk=expired.token.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    process_report(
        LeakReport(token=expired.secret, url="https://paste.example/1"), reporter_address=None
    )
    reported = issue(org_admin, name="Reported")
    process_report(LeakReport(token=reported.secret, source="content"), reporter_address=None)
    typed = issue(org_admin, name="Typed reason")
    revoke_token(actor=org_admin, token=typed.token, reason="Leaked: maybe, checking")

    content = as_alice.get("/o/acme/tokens/inactive/?status=leaked", **HTMX).content.decode()
    assert names_listed(content) == {"Expired then leaked", "Reported"}


# Revoke tokens unused for ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["²", "3²", "¹⁰d"])
def test_digits_int_cannot_read_are_refused_with_the_fields_message(org_admin, value):
    """``str.isdigit`` is true of superscripts, which ``int`` refuses: the person saw Python's
    "invalid literal for int() with base 10" as the field's error."""
    with pytest.raises(ValidationError) as raised:
        update_security_policy(
            actor=org_admin,
            organization=org_admin.organization,
            changes={"organization": {"revoke_unused_days": value}},
        )
    messages = raised.value.message_dict["organization.revoke_unused_days"]
    assert messages == ["Give a number of days from 7 to 365, or off."]


# A live token pasted into a console form that fails on another field ----------------------


def test_a_token_pasted_into_a_create_form_that_fails_elsewhere_is_leaked_and_not_echoed(
    as_carol, org_admin
):
    """The description holds a live token and the name is missing: the form never reached the
    services, so the token kept working, and the answer showed its secret again."""
    pasted = issue(org_admin, name="CI deploy key")
    response = as_carol.post(
        "/o/acme/me/tokens/new/",
        {"expiry": "30d", "name": "", "role": "member", "description": f"ci: {pasted.secret}"},
    )
    assert response.status_code == 200
    assert pasted.secret not in response.content.decode()
    assert ApiToken.objects.get(pk=pasted.token.pk).leaked_at is not None


def test_a_token_pasted_into_a_description_is_not_shown_back_with_the_error(as_carol, org_admin):
    pasted = issue(org_admin, name="CI deploy key")
    response = as_carol.post(
        "/o/acme/me/tokens/new/",
        {"expiry": "30d", "name": "laptop", "role": "member", "description": pasted.secret},
    )
    content = response.content.decode()
    assert "cannot contain an API token" in content
    assert pasted.secret not in content


def test_a_token_pasted_into_a_rename_that_fails_elsewhere_is_leaked_and_not_echoed(
    as_alice, org_admin
):
    target = issue(org_admin, name="Renamed")
    pasted = issue(org_admin, name="Pasted")
    response = as_alice.post(
        f"/o/acme/tokens/{target.token.pk}/edit/",
        {"version": target.token.version, "name": "", "description": pasted.secret},
    )
    assert pasted.secret not in response.content.decode()
    assert ApiToken.objects.get(pk=pasted.token.pk).leaked_at is not None


# The same for the other console forms with free text -------------------------------------------

FILTERS = "/o/acme/ip-filters/"
PEOPLE = "/o/acme/people/"


def _shown_back(response, pasted):
    return pasted.secret in response.content.decode()


def _leaked(pasted):
    return ApiToken.objects.get(pk=pasted.token.pk).leaked_at is not None


@pytest.mark.parametrize("field", ["name", "description", "rules_text"])
def test_a_token_pasted_into_an_ip_filter_form_is_leaked_and_not_echoed(as_alice, org_admin, field):
    pasted = issue(org_admin, name="Pasted into a filter")
    data = {"name": "Office", "description": "", "rules_text": "allow 10.0.0.0/8\nnonsense"}
    data[field] = f"{data[field]} {pasted.secret}".strip()
    response = as_alice.post(f"{FILTERS}new/", data)
    assert response.status_code == 200  # answered with errors
    assert not _shown_back(response, pasted)
    assert _leaked(pasted)


def test_a_token_pasted_into_an_ip_filter_edit_is_leaked_and_not_echoed(as_alice, org_admin):
    from policies.services import create_ip_filter

    office = create_ip_filter(
        actor=org_admin, organization=org_admin.organization, name="Office", rules_text="deny all"
    )
    pasted = issue(org_admin, name="Pasted into an edit")
    response = as_alice.post(
        f"{FILTERS}{office.pk}/edit/",
        {
            "name": "",
            "description": pasted.secret,
            "rules_text": "",
            "expected_version": office.version,
        },
    )
    assert response.status_code == 200
    assert not _shown_back(response, pasted)
    assert _leaked(pasted)


def test_a_token_pasted_into_the_invite_form_is_leaked_and_not_echoed(as_alice, org_admin):
    pasted = issue(org_admin, name="Pasted into an invitation")
    response = as_alice.post(f"{PEOPLE}invite/", {"addressee": pasted.secret, "role": "member"})
    assert not _shown_back(response, pasted)
    assert _leaked(pasted)


def test_a_token_pasted_into_the_create_person_form_is_leaked_and_not_echoed(
    as_alice, org_admin, settings
):
    settings.KEYWARD_ALLOW_ORG_USER_CREATION = True
    pasted = issue(org_admin, name="Pasted into a person")
    response = as_alice.post(
        f"{PEOPLE}new/", {"username": "", "display_name": pasted.secret, "role": "member"}
    )
    assert not _shown_back(response, pasted)
    assert _leaked(pasted)


@pytest.mark.parametrize("field", ["username", "email"])
def test_a_token_is_never_invited_and_is_treated_as_leaked(org_admin, field):
    """The finding: a token pasted as the addressee was kept as a username invitation, listed
    on the people page and in the success message."""
    from people.models import Invitation
    from people.services import invite

    pasted = issue(org_admin, name="Pasted as an addressee")
    value = pasted.secret if field == "username" else f"{pasted.secret}@example.com"
    with pytest.raises(ValidationError) as raised:
        invite(actor=org_admin, organization=org_admin.organization, **{field: value})
    assert "API token" in raised.value.message_dict[field][0]
    assert pasted.secret not in str(raised.value)
    assert not Invitation.objects.exists()
    assert _leaked(pasted)


@pytest.mark.parametrize("field", ["username", "display_name"])
def test_a_token_never_becomes_a_person_s_username_or_name(org_admin, settings, field):
    from orgs.models import User
    from people.services import create_person

    settings.KEYWARD_ALLOW_ORG_USER_CREATION = True
    pasted = issue(org_admin, name="Pasted as a person")
    values = {"username": "fresh", "display_name": "Fresh", field: pasted.secret}
    with pytest.raises(ValidationError) as raised:
        create_person(actor=org_admin, organization=org_admin.organization, **values)
    assert field in raised.value.message_dict
    assert not User.objects.filter(username__in=["fresh", pasted.secret]).exists()
    assert _leaked(pasted)


@pytest.mark.parametrize("field", ["name", "description", "rules_text"])
def test_a_token_pasted_into_an_ip_filter_edit_stays_treated_as_leaked_through_the_service(
    org_admin, field
):
    """The edit's transaction rolled back the revocation its own check had made (the API's
    PATCH goes straight to the service, with no form to catch it first)."""
    from policies.services import create_ip_filter, update_ip_filter

    office = create_ip_filter(
        actor=org_admin, organization=org_admin.organization, name="Office", rules_text="deny all"
    )
    pasted = issue(org_admin, name="Pasted into a filter edit")
    with pytest.raises(ValidationError) as raised:
        update_ip_filter(
            actor=org_admin,
            ip_filter=office,
            expected_version=office.version,
            **{field: f"x {pasted.secret}"},
        )
    assert field in raised.value.message_dict
    assert _leaked(pasted)
