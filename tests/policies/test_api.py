"""Contract of /ip-filters (with the address test) and /security-policy (with the preview)."""

from __future__ import annotations

import pytest

from policies.models import IpFilter, SecurityPolicy
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db

OFFICE = {
    "name": "office",
    "description": "Office and VPN",
    "rules": ["allow 10.0.0.0/8", "deny all"],
}


def fields_of(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


# IP filters ---------------------------------------------------------------------------------


def test_an_ip_filter_is_created_read_changed_and_deleted(admin_api):
    created = admin_api.post("/ip-filters", OFFICE)
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "name", "description", "rules", "version", "createdAt", "updatedAt"}
    assert body["rules"] == ["allow 10.0.0.0/8", "deny all"] and body["version"] == 1
    assert admin_api.get("/ip-filters").json()["count"] == 1
    changed = admin_api.patch(f"/ip-filters/{body['id']}", {"version": 1, "rules": ["allow all"]})
    assert changed.json()["rules"] == ["allow all"] and changed.json()["version"] == 2
    stale = admin_api.patch(f"/ip-filters/{body['id']}", {"version": 1, "name": "x"})
    assert stale.status_code == 409
    assert admin_api.delete(f"/ip-filters/{body['id']}").status_code == 204
    assert admin_api.get(f"/ip-filters/{body['id']}").status_code == 404


def test_bad_rules_are_named_by_line(admin_api):
    response = admin_api.post(
        "/ip-filters",
        {"name": "bad", "rules": ["allow 10.0.0.0/8", "allow 10.0.0.1/8", "permit x"]},
    )
    messages = fields_of(response)["rules"]
    assert messages[0].startswith("Line 2:") and "10.0.0.0/8" in messages[0]
    assert messages[1].startswith("Line 3:")
    assert not IpFilter.objects.exists()


def test_a_rule_with_a_line_break_is_refused(admin_api):
    assert "rules" in fields_of(
        admin_api.post("/ip-filters", {"name": "x", "rules": ["allow all\ndeny all"]})
    )


def test_the_test_action_says_which_rule_decided(admin_api):
    ip_filter = admin_api.post("/ip-filters", OFFICE).json()
    path = f"/ip-filters/{ip_filter['id']}/test"
    assert admin_api.post(path, {"address": "10.1.2.3"}).json() == {
        "address": "10.1.2.3",
        "allowed": True,
        "rule": "allow 10.0.0.0/8",
        "line": 1,
    }
    denied = admin_api.post(path, {"address": "192.0.2.1"}).json()
    assert denied["allowed"] is False and denied["line"] == 2
    assert "address" in fields_of(admin_api.post(path, {"address": "not-an-ip"}))


def test_a_filter_in_use_is_not_deleted(admin_api):
    ip_filter = admin_api.post("/ip-filters", OFFICE).json()
    admin_api.post(
        "/api-tokens", {"name": "office only", "role": "member", "ipFilterId": ip_filter["id"]}
    )
    response = admin_api.delete(f"/ip-filters/{ip_filter['id']}")
    assert "office only" in fields_of(response)["id"][0]
    assert IpFilter.objects.filter(pk=ip_filter["id"]).exists()


def test_another_organizations_filter_is_a_404(callers):
    ip_filter = callers.api("other_org").post("/ip-filters", OFFICE).json()
    assert callers.api("org_admin").get(f"/ip-filters/{ip_filter['id']}").status_code == 404


# Security policy ----------------------------------------------------------------------------


def test_the_policy_is_read_per_token_scope(admin_api):
    body = admin_api.get("/security-policy").json()
    assert set(body) == {"version", "updatedAt", "organization", "group", "personal"}
    assert body["personal"]["maxLifetime"] == "30d" and body["personal"]["expiryRequired"]
    assert body["organization"]["maxLifetime"] is None and body["organization"]["maxGrace"] == "7d"


def test_the_preview_lists_what_would_change_and_changes_nothing(admin_api):
    response = admin_api.post(
        "/security-policy/preview", {"personal": {"maxLifetime": "7d"}, "group": {"allowed": False}}
    )
    assert response.status_code == 200
    impact = response.json()
    assert {(c["scope"], c["setting"]) for c in impact["settingChanges"]} == {
        ("personal", "maxLifetime"),
        ("group", "allowed"),
    }
    assert [change["name"] for change in impact["revoked"]] == ["platform"]
    assert sorted(c["name"] for c in impact["expiryShortened"]) == ["alice's", "carol's"]
    assert impact["fingerprint"] and impact["summary"]
    assert impact["counts"] == {"expiryShortened": 2, "revoked": 1}
    assert impact["touchedCount"] == 3
    assert admin_api.get("/security-policy").json()["version"] == 1
    assert not ApiToken.objects.filter(status="revoked").exists()


def test_applying_a_change_does_what_the_preview_said(admin_api, callers):
    preview = admin_api.post("/security-policy/preview", {"group": {"allowed": False}}).json()
    response = admin_api.patch(
        "/security-policy",
        {"version": 1, "group": {"allowed": False}, "expectedImpact": preview["fingerprint"]},
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2 and response.json()["group"]["allowed"] is False
    assert callers.api("group").get("/me").status_code == 401


def test_applying_with_a_stale_version_or_impact_is_a_409(admin_api):
    stale_impact = admin_api.patch(
        "/security-policy", {"version": 1, "group": {"allowed": False}, "expectedImpact": "0" * 16}
    )
    assert stale_impact.status_code == 409
    admin_api.patch("/security-policy", {"version": 1, "group": {"maxGrace": "1d"}})
    stale = admin_api.patch("/security-policy", {"version": 1, "group": {"maxGrace": "2d"}})
    assert stale.status_code == 409 and stale.json()["error"]["currentVersion"] == 2


def test_bad_settings_are_named_scope_and_setting(admin_api):
    response = admin_api.post(
        "/security-policy/preview",
        {
            "personal": {"maxLifetime": "soon", "enforcedIpFilterId": 99999},
            "group": {"maxGrace": "30d"},
        },
    )
    assert set(fields_of(response)) == {
        "personal.maxLifetime",
        "personal.enforcedIpFilterId",
        "group.maxGrace",
    }


def test_unknown_settings_are_refused(admin_api):
    response = admin_api.post("/security-policy/preview", {"personal": {"lifetime": "1d"}})
    assert "personal.lifetime" in fields_of(response)


def test_null_unsets_the_maximum_lifetime(admin_api, world):
    admin_api.patch(
        "/security-policy",
        {"version": 1, "personal": {"maxLifetime": None, "expiryRequired": False}},
    )
    assert SecurityPolicy.objects.get(organization=world.acme).personal_tokens.max_lifetime is None
