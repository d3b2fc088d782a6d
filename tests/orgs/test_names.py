"""The one rule for names and free text, as a function, through each service, and for the
rows that existed before it."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from orgs import name_rule, names
from orgs.models import AuditEvent, Group
from people.services import create_group, update_group
from policies.models import IpFilter
from policies.services import create_ip_filter
from tests.factories import issue
from tokens.models import ApiToken
from tokens.services import rename_token, revoke_token

LOOK_ALIKES = [
    "METRICS READER",
    "Metrics re\u0430der",  # Cyrillic а
    "Metrics\u00a0reader",  # no-break space
    " Metrics reader ",
]
FORBIDDEN = {
    "Metrics\u200breader": "invisible",  # zero-width space
    "click \u202egnp.exe": "text-direction",  # right-to-left override
    "Platform\r\nBcc: attacker@evil.test": "control",
    "bell\x07": "control",
    "del\x7f": "control",
    "c1\x85mid": "control",
}


def test_look_alikes_share_one_key():
    key = names.name_key("Metrics reader")
    assert all(
        names.name_key(names.clean(value, label="A name", max_length=100).value) == key
        for value in LOOK_ALIKES
    )
    assert names.name_key("Metrics writer") != key


@pytest.mark.parametrize("value,problem", FORBIDDEN.items())
def test_forbidden_characters_are_refused_with_a_reason(value, problem):
    errors = names.clean(value, label="A name", max_length=100).errors
    assert len(errors) == 1 and problem in errors[0]


def test_a_description_keeps_its_line_breaks_but_not_other_controls():
    cleaned = names.clean(
        "line one\r\nline two\tend", label="A description", max_length=1000, multiline=True
    )
    assert cleaned.value == "line one\nline two\tend" and cleaned.errors == []
    assert names.clean("a\x00b", label="A description", max_length=1000, multiline=True).errors


@given(st.text(max_size=60))
def test_cleaning_is_stable_and_never_lets_a_forbidden_character_through(text):
    cleaned = names.clean(text, label="A name", max_length=100, required=False)
    if not cleaned.errors:
        assert names.clean(cleaned.value, label="A name", max_length=100, required=False).value == (
            cleaned.value
        )
        assert not any(
            character in names.BIDI_CONTROLS
            or ord(character) < 32
            or 0x7F <= ord(character) <= 0x9F
            for character in cleaned.value
        )


# Through the services ------------------------------------------------------------------------

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
def test_a_look_alike_token_name_is_taken_in_its_scope(org_admin, look_alike):
    issue(org_admin, name="Metrics reader")
    with pytest.raises(ValidationError) as raised:
        issue(org_admin, name=look_alike)
    assert "name" in raised.value.message_dict
    assert ApiToken.objects.count() == 1


def test_look_alikes_in_other_scopes_are_fine(world, org_admin, member):
    issue(org_admin, name="Metrics reader")
    issue(org_admin, name="Metrics re\u0430der", scope="group", group=world.platform)
    issue(member, name="METRICS READER", scope="personal", role="member")
    assert ApiToken.objects.count() == 3


def test_a_group_renamed_with_header_lines_is_refused(org_admin, world):
    with pytest.raises(ValidationError) as raised:
        update_group(
            actor=org_admin, group=world.platform, name="Platform\r\nBcc: attacker@evil.test"
        )
    assert "control" in raised.value.message_dict["name"][0]
    assert Group.objects.get(pk=world.platform.pk).name == "Platform"


def test_look_alike_group_and_filter_names_are_taken(org_admin, world):
    with pytest.raises(ValidationError):
        create_group(actor=org_admin, organization=world.acme, slug="plat2", name="Pl\u0430tform")
    create_ip_filter(
        actor=org_admin, organization=world.acme, name="Office", rules_text="allow all"
    )
    with pytest.raises(ValidationError) as raised:
        create_ip_filter(
            actor=org_admin, organization=world.acme, name="OFF\u0406CE", rules_text="allow all"
        )
    assert "looks the same" in raised.value.message_dict["name"][0]


def test_a_live_token_pasted_into_a_name_is_refused_and_treated_as_leaked(org_admin, client):
    victim = issue(org_admin, name="deploy")
    target = issue(org_admin, name="other").token
    with pytest.raises(ValidationError) as raised:
        rename_token(actor=org_admin, token=target, name=f"copy of {victim.secret}")
    message = raised.value.message_dict["name"][0]
    assert "cannot contain an API token" in message and victim.secret not in message
    victim.token.refresh_from_db()
    assert victim.token.status == "revoked" and victim.token.revoked_reason.startswith("Leaked")
    assert victim.secret not in victim.token.revoked_reason
    assert ApiToken.objects.get(pk=target.pk).name == "other"
    for event in AuditEvent.objects.all():
        assert victim.secret not in str(event.changes) + event.object_repr
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {victim.secret}"})
    assert response.status_code == 401


def test_a_reason_may_span_lines_but_not_carry_controls(org_admin):
    token = issue(org_admin, name="deploy").token
    with pytest.raises(ValidationError):
        revoke_token(actor=org_admin, token=token, reason="bad \u202e reason")
    revoke_token(actor=org_admin, token=token, reason="leaked\nin the CI log")
    token.refresh_from_db()
    assert token.revoked_reason == "leaked\nin the CI log"


# Rows from before the rule -------------------------------------------------------------------


def test_the_check_lists_and_the_migration_repairs_old_rows_with_an_audit_trail(org_admin, world):
    first = issue(org_admin, name="Metrics reader").token
    second = issue(org_admin, name="second").token
    secret_name = issue(org_admin, name="third").token
    pasted = "kwo_" + "A" * 49
    # As they could be stored before the rule: look-alike, invisible character, a pasted token.
    ApiToken.objects.filter(pk=second.pk).update(name="Metrics re\u0430der")
    ApiToken.objects.filter(pk=secret_name.pk).update(name=f"ci {pasted}\u200b")
    IpFilter.objects.create(organization=world.acme, name="Office\u202e", rules_text="allow all")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("check_names", stdout=out)
    report = out.getvalue()
    assert f"api_token {second.pk}" in report and "looks the same" in report
    assert pasted not in report and "kwo_…AAAA" in report

    for kind in name_rule.KINDS:
        name_rule.migrate(kind.label)(apps, None)

    assert ApiToken.objects.get(pk=first.pk).name == "Metrics reader"
    assert ApiToken.objects.get(pk=second.pk).name == "Metrics re\u0430der (2)"
    assert ApiToken.objects.get(pk=secret_name.pk).name == "ci kwo_…AAAA"
    assert IpFilter.objects.get(name="Office").name_key == names.name_key("Office")
    renamed = AuditEvent.objects.filter(actor_name=name_rule.ACTOR, object_id=str(secret_name.pk))
    (event,) = renamed
    assert event.changes["name"] == {"before": "ci kwo_…AAAA\u200b", "after": "ci kwo_…AAAA"}
    call_command("check_names", stdout=io.StringIO())  # nothing left
