"""Issue 13 through the API: descriptions, the revoked and expired filters that return every
inactive token, and the Keyward-Token-Expiry header."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
import time_machine
from django.utils import timezone

from orgs.models import AuditEvent
from tests.factories import Api, issue
from tokens.models import ApiToken
from tokens.services import revoke_token, treat_pasted_as_leaked

pytestmark = pytest.mark.django_db

HEADER = "Keyward-Token-Expiry"


def iso(moment) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Descriptions --------------------------------------------------------------------------------


def test_a_token_is_created_with_a_description_kept_on_several_lines(admin_api):
    text = "Deploys main to production.\nAsk the platform team before revoking."
    response = admin_api.post(
        "/api-tokens", {"name": "CI deploy", "role": "member", "description": text}
    )
    assert response.status_code == 201, response.content
    assert response.json()["description"] == text
    read = admin_api.get(f"/api-tokens/{response.json()['id']}").json()
    assert read["description"] == text


def test_a_token_without_description_answers_an_empty_one(admin_api):
    response = admin_api.post("/api-tokens", {"name": "Plain", "role": "member"})
    assert response.json()["description"] == ""


def test_a_description_over_1000_characters_is_refused_naming_the_field(admin_api):
    response = admin_api.post("/api-tokens", {"name": "Long", "description": "x" * 1001})
    assert response.status_code == 400
    assert "description" in response.json()["error"]["fields"]
    assert not ApiToken.objects.filter(name="Long").exists()


def test_a_description_with_a_control_character_is_refused(admin_api):
    response = admin_api.post("/api-tokens", {"name": "Bell", "description": "ring \x07"})
    assert response.status_code == 400
    assert "control" in response.json()["error"]["fields"]["description"][0]


def test_a_live_token_pasted_into_a_description_is_refused_and_treated_as_leaked(
    admin_api, org_admin
):
    victim = issue(org_admin, name="Victim")
    response = admin_api.post(
        "/api-tokens", {"name": "Paste", "description": f"use {victim.secret} here"}
    )
    assert response.status_code == 400
    assert "description" in response.json()["error"]["fields"]
    victim.token.refresh_from_db()
    assert victim.token.status == "revoked"
    assert victim.token.revoked_reason.startswith("Leaked:")


def test_patch_changes_the_description_with_the_version_and_audits_it(admin_api, org_admin):
    token = issue(org_admin, name="CI deploy", description="old").token
    response = admin_api.patch(
        f"/api-tokens/{token.pk}", {"version": token.version, "description": "new words"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["description"] == "new words" and body["version"] == token.version + 1
    event = AuditEvent.objects.get(action="token.described", object_id=str(token.pk))
    assert event.changes["description"] == {"before": "old", "after": "new words"}


def test_patch_with_a_stale_version_changes_no_description(admin_api, org_admin):
    token = issue(org_admin, name="CI deploy", description="old").token
    response = admin_api.patch(
        f"/api-tokens/{token.pk}", {"version": token.version + 5, "description": "new"}
    )
    assert response.status_code == 409
    token.refresh_from_db()
    assert token.description == "old"


def test_the_name_filter_also_finds_words_of_the_description(admin_api, org_admin):
    issue(org_admin, name="Alpha", description="Nightly BACKUP of the billing database")
    issue(org_admin, name="Beta", description="Deploys")
    names = [item["name"] for item in admin_api.get("/api-tokens", name="backup").json()["items"]]
    assert names == ["Alpha"]


# Inactive tokens ------------------------------------------------------------------------------


def test_status_revoked_returns_every_revoked_token_leaked_ones_included(admin_api, org_admin):
    long_ago = issue(org_admin, name="Revoked long ago", expires_in=timedelta(days=60))
    with time_machine.travel(timezone.now() - timedelta(days=20)):
        revoke_token(actor=org_admin, token=long_ago.token, reason="rotated")
    leaked = issue(org_admin, name="Leaked one")
    treat_pasted_as_leaked(actor=org_admin, secrets=[leaked.secret])
    issue(org_admin, name="Still fine")
    body = admin_api.get("/api-tokens", status="revoked").json()
    by_name = {item["name"]: item for item in body["items"]}
    assert set(by_name) == {"Revoked long ago", "Leaked one"}
    assert by_name["Leaked one"]["revokedReason"].startswith("Leaked:")
    assert (
        by_name["Leaked one"]["revokedBy"] == "leak report"
    )  # one leak path (issue 14): the actor of every leak
    assert by_name["Revoked long ago"]["revokedBy"] == org_admin.name
    assert by_name["Revoked long ago"]["revokedAt"] is not None


def test_status_expired_returns_tokens_expired_long_ago_the_default_list_does_not(
    admin_api, org_admin
):
    with time_machine.travel(timezone.now() - timedelta(days=10)):
        issue(org_admin, name="Expired long ago", expires_in=timedelta(days=1))
    default = [item["name"] for item in admin_api.get("/api-tokens").json()["items"]]
    assert "Expired long ago" not in default
    expired = [
        item["name"] for item in admin_api.get("/api-tokens", status="expired").json()["items"]
    ]
    assert expired == ["Expired long ago"]


# Keyward-Token-Expiry --------------------------------------------------------------------------


def test_every_authenticated_answer_says_when_the_token_expires(client, org_admin):
    issued = issue(org_admin, name="Expiring", role="admin", expires_in=timedelta(days=3))
    api = Api(client, issued.secret)
    token = issued.token
    ok = api.get("/api-tokens")
    assert ok.status_code == 200 and ok.headers[HEADER] == iso(token.expires_at)
    missing = api.get("/api-tokens/999999")
    assert missing.status_code == 404 and missing.headers[HEADER] == iso(token.expires_at)


def test_an_answer_refused_for_a_missing_permission_still_carries_the_expiry(client, org_admin):
    issued = issue(org_admin, name="Reader", role="member", expires_in=timedelta(hours=5))
    response = Api(client, issued.secret).post("/api-tokens", {"name": "Nope"})
    assert response.status_code == 403
    assert response.headers[HEADER] == iso(issued.token.expires_at)


def test_a_token_without_expiry_gets_no_header(client, org_admin):
    issued = issue(org_admin, name="Forever", expires_at=None)
    response = Api(client, issued.secret).get("/me")
    assert response.status_code == 200
    assert HEADER not in response.headers


def test_an_unauthenticated_answer_carries_no_expiry(client):
    response = Api(client, None).get("/api-tokens")
    assert response.status_code == 401
    assert HEADER not in response.headers


def test_the_schema_documents_the_header_and_the_description(client):
    schema = client.get("/api/v1/openapi.json").json()
    listing = schema["paths"]["/api/v1/api-tokens"]["get"]["responses"]
    assert HEADER in listing["200"]["headers"]
    assert listing["200"]["headers"][HEADER]["schema"]["format"] == "date-time"
    assert "headers" not in listing["401"]
    properties = schema["components"]["schemas"]["TokenOut"]["properties"]
    assert {"description", "revokedAt", "revokedBy"} <= set(properties)
    assert "description" in schema["components"]["schemas"]["TokenCreateIn"]["properties"]
    assert "description" in schema["components"]["schemas"]["TokenPatchIn"]["properties"]


@pytest.mark.parametrize("field", ["name", "description"])
def test_a_live_token_pasted_into_an_edit_is_refused_and_stays_treated_as_leaked(
    admin_api, org_admin, field
):
    """The finding: the edit's transaction rolled back the revocation its own check had made,
    so the answer said "treated as leaked" while the token stayed active."""
    token = issue(org_admin, name="Edited").token
    victim = issue(org_admin, name="Victim")
    response = admin_api.patch(
        f"/api-tokens/{token.pk}", {"version": token.version, field: f"x {victim.secret}"}
    )
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    victim.token.refresh_from_db()
    assert victim.token.status == "revoked" and victim.token.leaked_at is not None
    token.refresh_from_db()
    assert token.version == 1 and token.name == "Edited"
