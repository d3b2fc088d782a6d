import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from orgs import audit
from orgs.audit_views import neutralise
from orgs.models import AuditEvent, User
from orgs.principals import Principal
from tests.factories import issue
from tokens.auth import authenticate
from tokens.cleanup import purge_technical_users
from tokens.services import delete_token, rename_token, revoke_token

pytestmark = pytest.mark.django_db

LOG = "audit:log"
EXPORT = "audit:export"


def url(name):
    return reverse(name, kwargs={"org_slug": "acme"})


def rows_of(response):
    """The rows of a whole export: it must end with the marker counting them."""
    body = b"".join(response.streaming_content).decode()
    assert body.endswith("\r\n")
    table, marker = body[:-2].rsplit("\r\n", 1)
    rows = list(csv.DictReader(io.StringIO(table + "\r\n")))
    assert marker == f"# end of export: {len(rows)} events"
    return rows


@pytest.fixture
def as_alice(client, world):
    client.force_login(world.alice)
    return client


# Who sees what --------------------------------------------------------------------------------


def test_an_org_admin_sees_the_organization_s_events_and_not_another_s(
    as_alice, world, org_admin, other_org_admin
):
    issue(org_admin, name="Acme deployer")
    issue(other_org_admin, name="Globex deployer")
    page = as_alice.get(url(LOG)).content.decode()
    assert "Acme deployer" in page and "Globex deployer" not in page
    assert "token.created" in page and "alice" in page


def test_a_group_admin_sees_only_the_events_of_their_groups(client, world, org_admin, group_admin):
    issue(org_admin, scope="group", group=world.platform, name="Platform bot")
    issue(org_admin, scope="group", group=world.data, name="Data bot")
    issue(org_admin, name="Org bot")
    client.force_login(world.bob)
    page = client.get(url(LOG)).content.decode()
    assert "Platform bot" in page
    assert "Data bot" not in page and "Org bot" not in page
    objects = {row["object"] for row in rows_of(client.get(url(EXPORT)))}
    assert any(name.startswith("Platform bot") for name in objects)
    assert not any(name.startswith(("Data bot", "Org bot")) for name in objects)


def test_a_member_who_administers_nothing_is_refused(client, world, member):
    client.force_login(world.carol)
    assert client.get(url(LOG)).status_code == 403
    assert client.get(url(EXPORT)).status_code == 403


def test_someone_outside_the_organization_gets_a_404(client, world):
    client.force_login(world.dave)
    assert client.get(url(LOG)).status_code == 404
    assert client.get(url(EXPORT)).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    response = client.get(url(LOG))
    assert response.status_code == 302 and reverse("login") in response["Location"]


# Rows -----------------------------------------------------------------------------------------


def test_each_row_names_the_actor_the_token_it_acted_through_the_address_and_the_changes(
    as_alice, world, org_admin
):
    issued = issue(org_admin, name="Automation", role="admin")
    principal = authenticate(f"Bearer {issued.secret}", "198.51.100.7").principal
    target = issue(org_admin, name="Target").token
    rename_token(actor=principal, token=target, name="Renamed target")
    page = as_alice.get(url(LOG), {"action": "token.renamed"}).content.decode()
    assert "Automation" in page and "technical user" in page
    assert f"via token Automation <code>{issued.token.partial_token}</code>" in page
    assert "198.51.100.7" in page
    assert "<del>Target</del> → <ins>Renamed target</ins>" in page


def test_events_outlive_deleted_tokens_and_purged_technical_users(as_alice, world, org_admin):
    issued = issue(org_admin, name="Short lived", role="admin")
    partial = issued.token.partial_token
    principal = authenticate(f"Bearer {issued.secret}", "192.0.2.1").principal
    other = issue(org_admin, name="Victim").token
    revoke_token(actor=principal, token=other, reason="done by the robot")
    delete_token(actor=org_admin, token=issued.token)
    later = datetime.now(UTC) + timedelta(days=400)
    with time_machine.travel(later):
        purge_technical_users(actor=Principal.operator(), older_than=timedelta(days=365))
    assert not User.objects.filter(username__startswith="token.acme.short-lived").exists()

    page = as_alice.get(url(LOG), {"token": "Short lived"}).content.decode()
    assert "token.revoked" in page and "token.deleted" in page
    assert f"via token Short lived <code>{partial}</code>" in page
    rows = rows_of(as_alice.get(url(EXPORT), {"action": "token.revoked"}))
    assert rows[0]["actor"] == "Short lived" and rows[0]["actor_kind"] == "technical"
    assert rows[0]["via_token_partial"] == partial


# Filters --------------------------------------------------------------------------------------


@pytest.fixture
def history(world, org_admin):
    """A token created on March 1st, revoked on the 10th, renamed on the 20th."""
    with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False):
        token = issue(org_admin, name="Timeline", expires_at=None).token
    with time_machine.travel(datetime(2026, 3, 10, 23, 59, tzinfo=UTC), tick=False):
        token = revoke_token(actor=org_admin, token=token)
    with time_machine.travel(datetime(2026, 3, 20, 0, 0, tzinfo=UTC), tick=False):
        token = rename_token(
            actor=Principal.operator(label="night shift"), token=token, name="Timeline 2"
        )
    return token


def test_filter_by_date_range_includes_both_whole_days(as_alice, history):
    rows = rows_of(as_alice.get(url(EXPORT), {"since": "2026-03-10", "until": "2026-03-20"}))
    assert [row["action"] for row in rows] == ["token.renamed", "token.revoked"]
    rows = rows_of(as_alice.get(url(EXPORT), {"until": "2026-03-09"}))
    assert "token.created" in {row["action"] for row in rows}
    assert not {"token.revoked", "token.renamed"} & {row["action"] for row in rows}


def test_filter_by_actor_action_token_and_object(as_alice, history, org_admin):
    issue(org_admin, name="Unrelated")
    by_actor = rows_of(as_alice.get(url(EXPORT), {"actor": "night"}))
    assert [row["action"] for row in by_actor] == ["token.renamed"]
    by_kind = rows_of(as_alice.get(url(EXPORT), {"actor_kind": "operator", "action": ""}))
    assert {row["actor"] for row in by_kind} >= {"night shift"}
    by_action = rows_of(as_alice.get(url(EXPORT), {"action": "token.revoked"}))
    assert len(by_action) == 1 and by_action[0]["object"].startswith("Timeline")
    by_token = rows_of(as_alice.get(url(EXPORT), {"token": "timeline"}))
    assert {row["action"] for row in by_token} == {
        "token.created",
        "token.revoked",
        "token.renamed",
    }
    by_object = rows_of(as_alice.get(url(EXPORT), {"object": f"api_token:{history.pk}"}))
    assert len(by_object) == 3
    by_name = rows_of(as_alice.get(url(EXPORT), {"object": "Timeline 2"}))
    assert {row["action"] for row in by_name} == {"token.created", "token.revoked", "token.renamed"}
    by_family = rows_of(as_alice.get(url(EXPORT), {"action": "group."}))
    assert by_family and {row["object_type"] for row in by_family} == {"group"}


def test_a_date_range_ending_before_it_starts_is_named_and_ignored(as_alice, history):
    response = as_alice.get(url(LOG), {"since": "2026-03-20", "until": "2026-03-01"})
    assert response.status_code == 200
    assert "The end date is before the start date." in response.content.decode()
    export = as_alice.get(url(EXPORT), {"since": "2026-03-20", "until": "2026-03-01"})
    assert export.status_code == 400 and b"until" in export.content


def test_nonsense_filters_never_fail_the_page(as_alice, world):
    for query in (
        {"since": "not a date"},
        {"action": "no.such.action"},
        {"page": "999"},
        {"page": "-1"},
        {"group": "not a number"},
        {"object": ":"},
        {"actor": "x" * 500},
    ):
        assert as_alice.get(url(LOG), query).status_code == 200, query


def test_the_log_is_paginated_newest_first_by_cursor(as_alice, world):
    acme = world.acme
    for index in range(60):
        audit.record(
            actor=Principal.operator(label=f"op {index:02d}"),
            action="test.event",
            organization=acme,
            object_type="thing",
        )
    first = as_alice.get(url(LOG), {"action": "test.event"}).content.decode()
    assert "op 59" in first and "op 10" in first and "op 09" not in first
    assert "Older events" in first and "Newer events" not in first
    older = re.search(r'href="(\?[^"]*before=[^"]+)"', first).group(1).replace("&amp;", "&")
    assert "action=test.event" in older  # page links keep the filters
    second = as_alice.get(url(LOG) + older).content.decode()
    assert "op 09" in second and "op 00" in second and "op 10" not in second
    assert "Newer events" in second and "Older events" not in second


def test_an_htmx_filter_request_gets_only_the_results_fragment(as_alice, world, org_admin):
    issue(org_admin, name="Fragment")
    response = as_alice.get(url(LOG), {"token": "Fragment"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert 'id="audit-results"' in page and "Fragment" in page
    assert "<html" not in page and "<form" not in page


# CSV ------------------------------------------------------------------------------------------


def test_the_export_holds_every_filtered_event_not_only_one_page(as_alice, world):
    for index in range(120):
        audit.record(
            actor=Principal.operator(label=f"op {index}"),
            action="bulk.event",
            organization=world.acme,
            object_type="thing",
        )
    response = as_alice.get(url(EXPORT), {"action": "bulk.event"})
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert len(rows_of(response)) == 120


def test_the_export_neutralises_spreadsheet_formulas(as_alice, world, org_admin):
    issue(org_admin, name='=HYPERLINK("http://evil.example","x")')
    issue(org_admin, name="+cmd|' /C calc'!A0")
    issue(org_admin, name="@SUM(1+1)")
    issue(org_admin, name="-2+3")
    rows = rows_of(as_alice.get(url(EXPORT), {"action": "token.created"}))
    objects = [row["object"] for row in rows]
    assert len(objects) == 4
    assert all(value.startswith("'") for value in objects), objects
    assert neutralise("plain") == "plain" and neutralise(None) == ""
    assert neutralise("=1+1") == "'=1+1"


def test_the_export_carries_before_and_after_as_json(as_alice, world, org_admin):
    token = issue(org_admin, name="Diffed").token
    revoke_token(actor=org_admin, token=token, reason="leaked")
    row = rows_of(as_alice.get(url(EXPORT), {"action": "token.revoked"}))[0]
    assert '"revoked_reason": {"after": "leaked", "before": ""}' in row["changes"]


def test_audit_events_refuse_changes_whatever_the_caller(world, org_admin):
    issue(org_admin, name="Immutable")
    event = AuditEvent.objects.first()
    with pytest.raises(Exception, match="cannot"):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(Exception, match="cannot"):
        event.delete()
