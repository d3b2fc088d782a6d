"""Contract of /api/v1/api-tokens, /permissions and per-token usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from orgs.models import AuditEvent
from policies.models import SecurityPolicy
from tests.factories import Api, issue
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db

TOKEN_KEYS = {
    "id",
    "version",
    "createdAt",
    "updatedAt",
    "createdBy",
    "modifiedBy",
    "userId",
    "name",
    "description",
    "revokedAt",
    "revokedBy",
    "scope",
    "groupId",
    "role",
    "permissions",
    "partialToken",
    "expiry",
    "allowedAddresses",
    "ipFilterId",
    "status",
    "revokedReason",
    "lastUsedAt",
    "lastUsedAddress",
    "leakedAt",
    "leakedWhere",
}


def create(api: Api, **body):
    body.setdefault("name", "CI deploy")
    return api.post("/api-tokens", body)


def fields_of(response) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    return error["fields"]


# Listing ------------------------------------------------------------------------------------


def test_the_list_has_items_count_limit_and_offset(admin_api, callers):
    body = admin_api.get("/api-tokens").json()
    assert set(body) == {"items", "count", "limit", "offset"}
    # Every token of acme; globex's is another organization's.
    assert body["count"] == 6 and body["limit"] == 50 and body["offset"] == 0
    assert all(set(item) == TOKEN_KEYS for item in body["items"])


def test_the_list_pages_with_limit_and_offset(admin_api, callers):
    names = [item["name"] for item in admin_api.get("/api-tokens").json()["items"]]
    page = admin_api.get("/api-tokens", limit=2, offset=2).json()
    assert [item["name"] for item in page["items"]] == names[2:4]
    assert page["count"] == 6 and page["limit"] == 2 and page["offset"] == 2


@pytest.mark.parametrize("limit", [0, 201, -1, "many"])
def test_a_limit_outside_1_to_200_is_a_validation_error(admin_api, limit):
    assert "limit" in fields_of(admin_api.get("/api-tokens", limit=limit))


def test_the_list_filters_by_name_status_scope_and_group(admin_api, world, org_admin):
    issue(org_admin, name="Nightly BACKUP")
    revoked = create(admin_api, name="old backup", role="member").json()
    admin_api.post(f"/api-tokens/{revoked['id']}/revoke", {})

    def names(**query):
        return sorted(
            item["name"] for item in admin_api.get("/api-tokens", **query).json()["items"]
        )

    assert names(name="backup") == ["Nightly BACKUP", "old backup"]
    assert names(name="backup", status="revoked") == ["old backup"]
    assert names(name="backup", status="active") == ["Nightly BACKUP"]
    assert names(scope="group") == ["platform"]
    assert names(groupId=world.platform.pk) == ["platform"]
    assert names(scope="personal") == ["alice's", "carol's"]


def test_expired_tokens_are_listed_with_status_expired(admin_api, org_admin):
    token = issue(org_admin, name="short", expires_in=timedelta(minutes=10)).token
    with time_machine.travel(timezone.now() + timedelta(minutes=12), tick=False):
        listed = admin_api.get("/api-tokens", name="short").json()["items"]
        assert [item["status"] for item in listed] == ["expired"]
        assert admin_api.get("/api-tokens", status="expired").json()["items"][0]["id"] == token.pk


def test_a_group_token_lists_only_its_groups_tokens(callers, world, org_admin):
    issue(org_admin, name="data token", scope="group", group=world.data)
    items = callers.api("group").get("/api-tokens").json()["items"]
    assert {item["groupId"] for item in items} == {world.platform.pk}


def test_a_members_personal_token_lists_only_their_own_tokens(callers, world):
    items = callers.api("personal_member").get("/api-tokens").json()["items"]
    assert [(item["name"], item["userId"]) for item in items] == [("carol's", world.carol.pk)]


# Creating -----------------------------------------------------------------------------------


def test_creating_answers_201_with_the_token_and_its_secret_not_to_be_cached(admin_api, callers):
    response = create(
        admin_api,
        name="CI deploy",
        role="custom",
        permissions=["api.api-tokens.read"],
        expiresIn="30d",
        allowedAddresses=["203.0.113.0/24"],
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == TOKEN_KEYS | {"token"}
    assert body["token"].startswith("kwo_") and body["partialToken"].endswith(body["token"][-4:])
    assert body["scope"] == "organization" and body["role"] == "custom"
    assert body["permissions"] == ["api.api-tokens.read"]
    assert body["allowedAddresses"] == ["203.0.113.0/24"]
    assert body["status"] == "active" and body["version"] == 1
    assert body["createdBy"] == {
        "id": callers.tokens["org_admin"].user_id,
        "name": "org admin",
        "kind": "technical",
    }
    # The secret works, from the allowed addresses only.
    outside = Api(admin_api.client, body["token"]).get("/me")
    assert outside.status_code == 403
    assert outside.json()["error"]["code"] == "address_not_allowed"
    inside = Api(admin_api.client, body["token"]).request("GET", "/me", remote_addr="203.0.113.9")
    assert inside.json()["tokenId"] == body["id"]


def test_a_date_expiry_means_the_end_of_that_day_in_utc(admin_api):
    body = create(admin_api, role="member", expiry="2099-02-01").json()
    assert body["expiry"].startswith("2099-02-01T23:59:59")
    expected = datetime(2099, 2, 1, 23, 59, 59, tzinfo=UTC)
    assert ApiToken.objects.get(pk=body["id"]).expires_at == expected


def test_an_expiry_with_an_offset_is_stored_in_utc(admin_api):
    body = create(admin_api, role="member", expiry="2099-02-01T02:00:00+02:00").json()
    assert ApiToken.objects.get(pk=body["id"]).expires_at == datetime(2099, 2, 1, tzinfo=UTC)


def test_expires_in_counts_from_now(admin_api):
    with time_machine.travel(datetime(2030, 1, 1, tzinfo=UTC), tick=False):
        body = create(admin_api, role="member", expiresIn="12h").json()
    assert ApiToken.objects.get(pk=body["id"]).expires_at == datetime(2030, 1, 1, 12, tzinfo=UTC)


def test_a_null_expiry_means_none_and_an_omitted_one_the_policys_default(admin_api, callers):
    assert create(admin_api, name="forever", role="member", expiry=None).json()["expiry"] is None
    personal = callers.api("personal_admin")
    body = create(personal, name="mine", scope="personal", role="member").json()
    assert body["expiry"] is not None  # personal tokens: at most 30 days by default


def test_a_group_token_is_created_in_the_group_given(admin_api, world):
    body = create(admin_api, scope="group", groupId=world.platform.pk, role="member").json()
    assert body["scope"] == "group" and body["groupId"] == world.platform.pk
    assert body["token"].startswith("kwg_")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"permissions": ["api.nothing.read"]}, "permissions"),
        ({"permissions": ["api.groups.delete"], "scope": "group", "groupId": -1}, "groupId"),
        ({"permissions": []}, "permissions"),
        ({"role": "member", "allowedAddresses": ["10.0.0.1/8"]}, "allowedAddresses"),
        ({"role": "member", "allowedAddresses": ["not an address"]}, "allowedAddresses"),
        ({"role": "member", "expiry": "2001-01-01T00:00:00Z"}, "expiry"),
        ({"role": "member", "expiry": "next tuesday"}, "expiry"),
        ({"role": "member", "expiresIn": "3 weeks"}, "expiresIn"),
        ({"role": "member", "expiry": "2099-01-01", "expiresIn": "1d"}, "expiresIn"),
        ({"role": "member", "name": "x" * 101}, "name"),
        ({"role": "member", "name": "   "}, "name"),
        ({"role": "superuser"}, "role"),
        ({"role": "member", "scope": "galaxy"}, "scope"),
        ({"role": "admin", "permissions": ["api.api-tokens.read"]}, "permissions"),
        ({"role": "member", "ipFilterId": 999999}, "ipFilterId"),
        ({"role": "member", "groupId": 999999, "scope": "group"}, "groupId"),
        ({"role": "member", "lifetime": "30d"}, "lifetime"),
        ({"role": "member", "name": "nul\x00byte"}, "name"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(admin_api, body, field):
    before = ApiToken.objects.count()
    assert field in fields_of(create(admin_api, **body))
    assert ApiToken.objects.count() == before


def test_a_permission_not_valid_for_the_scope_is_named(admin_api, world):
    response = create(
        admin_api,
        scope="group",
        groupId=world.platform.pk,
        permissions=["api.groups.delete"],
    )
    assert "api.groups.delete" in fields_of(response)["permissions"][0]


def test_an_expiry_beyond_the_policy_is_refused(callers):
    response = create(
        callers.api("personal_admin"), name="long", scope="personal", role="member", expiresIn="90d"
    )
    assert "at most" in fields_of(response)["expiry"][0]


def test_a_taken_name_is_refused(admin_api):
    assert create(admin_api, name="dup", role="member").status_code == 201
    assert "already exists" in fields_of(create(admin_api, name="DUP", role="member"))["name"][0]


def test_nobody_grants_a_permission_they_do_not_hold(callers, world):
    group_api = callers.api("group")
    response = create(
        group_api,
        scope="group",
        groupId=world.platform.pk,
        role="custom",
        permissions=["api.api-tokens.read"],
    )
    assert response.status_code == 201
    personal_member = callers.api("personal_member")
    response = create(
        personal_member, name="too much", scope="personal", permissions=["api.audit-events.read"]
    )
    assert "do not hold" in fields_of(response)["permissions"][0]


def test_a_token_without_the_write_permission_is_told_which_permission_is_missing(callers):
    response = create(callers.api("member_role"), role="member")
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "This needs the permission api.api-tokens.write.",
        "permission": "api.api-tokens.write",
    }


# Reading ------------------------------------------------------------------------------------


def test_reading_a_token_answers_the_token_object(admin_api, callers):
    token = callers.tokens["custom"]
    body = admin_api.get(f"/api-tokens/{token.pk}").json()
    assert set(body) == TOKEN_KEYS
    assert body["id"] == token.pk and body["name"] == "custom" and body["role"] == "custom"
    assert body["permissions"] == sorted(
        ["api.api-tokens.read", "api.groups.read", "api.audit-events.read"]
    )


def test_another_organizations_token_is_a_404_exactly_like_a_missing_one(callers):
    globex_token = callers.tokens["other_org"]
    api = callers.api("org_admin")
    hidden = api.get(f"/api-tokens/{globex_token.pk}")
    missing = api.get("/api-tokens/987654")
    assert hidden.status_code == missing.status_code == 404
    assert (
        hidden.json() == missing.json() == {"error": {"code": "not_found", "message": "Not found."}}
    )


# Updating -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("permission_edits_allowed")
def test_patch_renames_and_changes_permissions_in_one_request(admin_api):
    token = create(admin_api, name="before", permissions=["api.api-tokens.read"]).json()
    response = admin_api.patch(
        f"/api-tokens/{token['id']}",
        {"version": 1, "name": "after", "permissions": ["api.groups.read"]},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "after" and body["permissions"] == ["api.groups.read"]
    assert body["version"] > 1 and "token" not in body


def test_patch_needs_the_version(admin_api):
    token = create(admin_api, role="member").json()
    assert fields_of(admin_api.patch(f"/api-tokens/{token['id']}", {"name": "x"})) == {
        "version": ["This field is required."]
    }


def test_a_stale_version_is_a_409_with_the_current_version(admin_api):
    token = create(admin_api, role="member").json()
    admin_api.patch(f"/api-tokens/{token['id']}", {"version": 1, "name": "first"})
    response = admin_api.patch(f"/api-tokens/{token['id']}", {"version": 1, "name": "second"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "version_conflict"
    assert response.json()["error"]["currentVersion"] == 2
    assert ApiToken.objects.get(pk=token["id"]).name == "first"


@pytest.mark.parametrize("field", ["expiry", "scope", "expiresIn", "status", "groupId"])
def test_patch_refuses_any_other_field_naming_it(admin_api, field):
    token = create(admin_api, role="member").json()
    response = admin_api.patch(f"/api-tokens/{token['id']}", {"version": 1, field: None})
    assert fields_of(response) == {field: ["This field is not accepted here."]}


def test_a_permission_edit_the_policy_forbids_is_a_403_naming_the_setting(admin_api, world):
    policy = SecurityPolicy.objects.get(organization=world.acme).organization_tokens
    policy.permission_edits_allowed = False
    policy.save()
    token = create(admin_api, permissions=["api.api-tokens.read"]).json()
    response = admin_api.patch(
        f"/api-tokens/{token['id']}", {"version": 1, "name": "renamed", "role": "member"}
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "policy_violation"
    assert error["setting"] == "organization.permission_edits_allowed"
    assert ApiToken.objects.get(pk=token["id"]).name == "CI deploy"  # nothing changed


def test_patch_with_the_current_values_changes_nothing(admin_api):
    token = create(admin_api, role="member").json()
    body = admin_api.patch(f"/api-tokens/{token['id']}", {"version": 1, "role": "member"}).json()
    assert body["version"] == 1


# Regenerate, revoke, restore, delete -------------------------------------------------------


def test_regenerating_answers_a_new_secret_and_the_old_one_stops_at_once(admin_api):
    created = create(admin_api, role="member").json()
    response = admin_api.post(f"/api-tokens/{created['id']}/regenerate", {})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == TOKEN_KEYS | {"token", "previousSecretEndsAt"}
    assert body["token"] != created["token"] and body["previousSecretEndsAt"] is None
    assert Api(admin_api.client, created["token"]).get("/me").status_code == 401
    assert Api(admin_api.client, body["token"]).get("/me").status_code == 200


def test_regenerating_with_a_grace_period_keeps_the_old_secret_working(admin_api):
    created = create(admin_api, role="member").json()
    body = admin_api.post(
        f"/api-tokens/{created['id']}/regenerate", {"gracePeriodSeconds": 3600}
    ).json()
    assert Api(admin_api.client, created["token"]).get("/me").status_code == 200
    ends = datetime.fromisoformat(body["previousSecretEndsAt"])
    assert timedelta(minutes=59) < ends - timezone.now() <= timedelta(hours=1)


def test_a_grace_period_beyond_the_policy_is_refused(admin_api, world):
    created = create(admin_api, role="member").json()
    response = admin_api.post(
        f"/api-tokens/{created['id']}/regenerate", {"gracePeriodSeconds": 8 * 86400}
    )
    assert "gracePeriodSeconds" in fields_of(response)


def test_revoking_stops_the_token_and_restoring_brings_it_back(admin_api):
    created = create(admin_api, role="member").json()
    revoked = admin_api.post(f"/api-tokens/{created['id']}/revoke", {"reason": "leaked"})
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked" and revoked.json()["revokedReason"] == "leaked"
    assert Api(admin_api.client, created["token"]).get("/me").status_code == 401
    restored = admin_api.post(f"/api-tokens/{created['id']}/restore")
    assert restored.status_code == 200 and restored.json()["status"] == "active"
    assert Api(admin_api.client, created["token"]).get("/me").status_code == 200


def test_revoking_twice_is_a_validation_error(admin_api):
    created = create(admin_api, role="member").json()
    admin_api.post(f"/api-tokens/{created['id']}/revoke")
    assert "status" in fields_of(admin_api.post(f"/api-tokens/{created['id']}/revoke"))


def test_deleting_answers_204_and_the_token_is_gone(admin_api):
    created = create(admin_api, role="member").json()
    response = admin_api.delete(f"/api-tokens/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    assert admin_api.get(f"/api-tokens/{created['id']}").status_code == 404
    assert Api(admin_api.client, created["token"]).get("/me").status_code == 401


def test_deleting_with_a_stale_version_is_a_409(admin_api):
    created = create(admin_api, role="member").json()
    admin_api.patch(f"/api-tokens/{created['id']}", {"version": 1, "name": "changed"})
    assert admin_api.delete(f"/api-tokens/{created['id']}", version=1).status_code == 409


def test_changes_through_the_api_are_audited_with_the_token_used(admin_api, callers):
    created = create(admin_api, role="member").json()
    event = AuditEvent.objects.get(action="token.created", object_id=str(created["id"]))
    assert event.via_token_id == callers.tokens["org_admin"].pk
    assert event.actor_id == callers.tokens["org_admin"].user_id


# Usage and the catalog ----------------------------------------------------------------------


def test_usage_counts_requests_per_day(admin_api, callers):
    token = callers.tokens["custom"]
    custom = callers.api("custom")
    custom.get("/me")  # the first request of a token writes its use at once
    body = admin_api.get(f"/api-tokens/{token.pk}/usage").json()
    assert body["tokenId"] == token.pk and body["total"] == 1
    assert len(body["days"]) == 30 and body["days"][-1]["count"] == 1
    assert body["lastUsedAddress"] == "127.0.0.1"
    assert [secret["partialToken"] for secret in body["secrets"]] == [token.partial_token]


def test_usage_includes_requests_still_buffered(admin_api, callers):
    """Only a token's first request in a minute writes; the endpoint still counts the rest."""
    token = callers.tokens["custom"]
    custom = callers.api("custom")
    for _ in range(3):
        assert custom.get("/me").status_code == 200
    body = admin_api.get(f"/api-tokens/{token.pk}/usage").json()
    assert body["total"] == 3 and body["days"][-1]["count"] == 3
    assert body["lastUsedAt"] is not None


def test_usage_over_more_than_366_days_is_refused(admin_api, callers):
    token = callers.tokens["custom"]
    response = admin_api.get(
        f"/api-tokens/{token.pk}/usage", since="2020-01-01", until="2022-01-01"
    )
    assert "since" in fields_of(response)


def test_the_permission_catalog_lists_every_permission(callers):
    body = callers.api("personal_member").get("/permissions").json()
    names = [item["name"] for item in body["items"]]
    assert "api.api-tokens.read" in names and body["count"] == len(names) == 21
    first = body["items"][0]
    assert set(first) == {"name", "resource", "action", "description", "scopes"}


def test_me_answers_the_principal_with_effective_permissions(callers, world):
    body = callers.api("personal_member").get("/me").json()
    assert body["userId"] == world.carol.pk and body["kind"] == "human"
    assert body["scope"] == "personal" and body["organization"]["slug"] == "acme"
    assert "api.audit-events.read" not in body["permissions"]  # capped by a member's rights
    assert callers.api("group").get("/me").json()["group"]["slug"] == "platform"


def test_regenerating_a_token_that_expires_at_the_end_of_the_calendar_is_not_a_500(admin_api):
    created = create(admin_api, role="member", expiry="9999-12-31T00:00:00Z").json()
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        response = admin_api.post(f"/api-tokens/{created['id']}/regenerate", {})
    assert response.status_code == 200
    assert response.json()["expiry"].startswith("9999-12-31")
