"""The console and leaked tokens: reporting one, the Leaked badge, no restore, a replacement."""

import re

import pytest

from orgs.models import AuditEvent
from tests.factories import issue
from tokens import leaks
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db

URL = "https://github.com/octo/app/blob/abc123/.env"
REPORT = "/leaked-tokens/report/"
CSRF = re.compile(r'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+')


def leak(issued, url=URL):
    leaks.process_report(leaks.LeakReport(token=issued.secret, url=url), reporter_address=None)
    return ApiToken.objects.get(pk=issued.token.pk)


def test_any_signed_in_person_reports_a_token_and_gets_the_neutral_answer(as_carol, org_admin):
    issued = issue(org_admin, name="deploy")
    page = as_carol.get("/o/acme/me/tokens/").content.decode()
    assert f'href="{REPORT}"' in page  # offered in the person's menu
    response = as_carol.post(REPORT, {"tokens": f"{issued.secret}\nkwo_nothing\n", "where": URL})
    content = response.content.decode()
    assert response.status_code == 200 and "Received 2 tokens" in content
    assert issued.secret not in content
    assert response.headers["Cache-Control"].startswith("max-age=0")
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert token.status == "revoked" and token.revoked_reason == f"Leaked: {URL}"
    event = AuditEvent.objects.get(action="token.leaked")
    assert event.actor_name == "leak report"
    assert event.changes["leak"]["after"]["reported_by"] == "carol"


def test_the_answer_does_not_depend_on_a_match(as_carol, org_admin):
    issued = issue(org_admin)
    answers = [
        CSRF.sub("", as_carol.post(REPORT, {"tokens": text, "where": "a chat"}).content.decode())
        for text in ("kwo_nothing", issued.secret)
    ]
    assert answers[0] == answers[1]
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_reason == "Leaked: a chat"


def test_reporting_needs_a_signed_in_person(client):
    response = client.get(REPORT)
    assert response.status_code == 302 and "/login/" in response.headers["Location"]


def test_an_empty_report_is_an_error_on_the_field(as_carol):
    response = as_carol.post(REPORT, {"tokens": "  \n", "where": ""})
    assert response.status_code == 200 and 'aria-invalid="true"' in response.content.decode()


def test_a_leaked_token_shows_the_badge_and_the_url_on_its_list_and_page(as_alice, org_admin):
    issued = issue(org_admin, name="deploy")
    token = leak(issued)
    listing = as_alice.get("/o/acme/tokens/inactive/").content.decode()  # revoked: inactive
    assert ">Leaked</span>" in listing and f'href="{URL}"' in listing
    detail = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert ">Leaked</span>" in detail and "can never be restored" in detail
    assert "Create a replacement" in detail
    assert f"/tokens/{token.pk}/restore/" not in detail
    assert f"/tokens/{token.pk}/delete/" in detail


def test_a_reported_address_that_is_not_a_web_address_is_never_a_link(as_alice, org_admin):
    token = leak(issue(org_admin, name="deploy"), url="javascript:alert(1)")
    detail = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert 'href="javascript' not in detail and "javascript:alert(1)" in detail


def test_restoring_a_leaked_token_from_the_console_is_refused_with_the_reason(as_alice, org_admin):
    token = leak(issue(org_admin))
    response = as_alice.post(f"/o/acme/tokens/{token.pk}/restore/", {"version": token.version})
    assert response.status_code == 200
    assert "can never be restored" in response.content.decode()
    assert ApiToken.objects.get(pk=token.pk).status == "revoked"


def test_create_a_replacement_starts_from_the_leaked_tokens_access(as_alice, org_admin):
    issued = issue(
        org_admin,
        name="deploy",
        role="custom",
        permissions=["api.api-tokens.read", "api.groups.read"],
        allowed_addresses=("203.0.113.0/24",),
    )
    token = leak(issued)
    form = as_alice.get(f"/o/acme/tokens/new/?replace={token.pk}").content.decode()
    assert 'value="deploy (replacement)"' in form
    assert 'value="api.api-tokens.read" checked' in form
    assert 'value="api.groups.read" checked' in form
    assert "203.0.113.0/24" in form and "A replacement for the leaked token" in form
    created = as_alice.post(
        "/o/acme/tokens/new/",
        {
            "name": "deploy (replacement)",
            "role": "custom",
            "permissions": ["api.api-tokens.read", "api.groups.read"],
            "expiry": "30d",
            "allowed_addresses": "203.0.113.0/24",
        },
    )
    content = created.content.decode()
    replacement = ApiToken.objects.get(name="deploy (replacement)")
    assert replacement.permissions == ["api.api-tokens.read", "api.groups.read"]
    assert replacement.allowed_addresses == ["203.0.113.0/24"]
    assert 'id="revealed-token"' in content  # the secret, shown this once
    assert created.headers["Cache-Control"].startswith("max-age=0")


def test_only_a_leaked_token_is_replaced_and_only_from_its_own_list(as_alice, org_admin, world):
    active = issue(org_admin, name="fine").token
    assert as_alice.get(f"/o/acme/tokens/new/?replace={active.pk}").status_code == 403
    group_token = leak(issue(org_admin, scope="group", group=world.platform, role="member"))
    assert as_alice.get(f"/o/acme/tokens/new/?replace={group_token.pk}").status_code == 404
    assert (
        as_alice.get(f"/o/acme/groups/platform/tokens/new/?replace={group_token.pk}").status_code
        == 200
    )


def test_someone_elses_personal_token_is_replaced_by_its_owner_only(
    as_alice, member, world, client
):
    carols = leak(issue(member, scope="personal", role="member", name="laptop"))
    detail = as_alice.get(f"/o/acme/tokens/{carols.pk}/").content.decode()
    assert "Create a replacement" not in detail
    client.force_login(world.carol)
    own = client.get(f"/o/acme/tokens/{carols.pk}/").content.decode()
    assert "Create a replacement" in own
    form = client.get(f"/o/acme/me/tokens/new/?replace={carols.pk}").content.decode()
    assert 'value="laptop (replacement)"' in form


def test_a_report_answered_with_an_error_shows_no_secret_back(as_carol, org_admin):
    """More than 100 lines is an error: the form came back with every pasted secret in it."""
    issued = issue(org_admin, name="deploy")
    lines = "\n".join([issued.secret] + [f"kwo_{index}" for index in range(100)])
    response = as_carol.post(REPORT, {"tokens": lines, "where": f"ci log {issued.secret}"})
    content = response.content.decode()
    assert "At most 100 tokens" in content
    assert issued.secret not in content
    assert "ci log" in content  # what was typed about where is kept, less the secret


@pytest.mark.parametrize("raw", ["²", "99999999999999999999", "-1", "0"])
def test_a_replacement_of_an_impossible_id_is_a_404(as_alice, raw):
    assert as_alice.get(f"/o/acme/tokens/new/?replace={raw}").status_code == 404
