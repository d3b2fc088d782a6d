"""Contract of the organization, members, groups, group members and audit events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orgs.models import AuditEvent, Group, GroupMembership, OrganizationMembership
from tests.factories import Api, add_member, issue, make_user
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db


def fields_of(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


# The organization ----------------------------------------------------------------------------


def test_the_organization_is_read_and_renamed_with_its_version(admin_api, world):
    body = admin_api.get("/organization").json()
    assert body == {
        "id": world.acme.pk,
        "slug": "acme",
        "name": "Acme Corp",
        "createdAt": body["createdAt"],
        "version": 1,
    }
    renamed = admin_api.patch("/organization", {"version": 1, "name": "Acme Inc"})
    assert renamed.status_code == 200 and renamed.json()["version"] == 2
    stale = admin_api.patch("/organization", {"version": 1, "name": "Acme Again"})
    assert stale.status_code == 409 and stale.json()["error"]["currentVersion"] == 2
    assert AuditEvent.objects.filter(action="organization.renamed").count() == 1


def test_the_slug_cannot_be_changed(admin_api):
    assert "slug" in fields_of(admin_api.patch("/organization", {"version": 1, "slug": "x"}))


# Members ------------------------------------------------------------------------------------


def test_members_are_listed_with_their_roles(admin_api, world):
    body = admin_api.get("/members").json()
    assert [(item["username"], item["role"]) for item in body["items"]] == [
        ("alice", "admin"),
        ("bob", "member"),
        ("carol", "member"),
    ]
    assert admin_api.get("/members", role="admin").json()["count"] == 1
    assert admin_api.get("/members", name="CAR").json()["items"][0]["userId"] == world.carol.pk


def test_posting_a_member_invites_the_username_once_whoever_it_is(admin_api, world):
    make_user("erin")
    invited = admin_api.post("/members", {"username": "erin", "role": "member"})
    assert invited.status_code == 201 and invited.json()["status"] == "pending"
    assert not world.acme.memberships.filter(user__username="erin").exists()
    assert "username" in fields_of(admin_api.post("/members", {"username": "erin"}))
    assert admin_api.post("/members", {"username": "nobody"}).status_code == 201


def test_a_role_change_needs_the_version_and_keeps_one_admin(admin_api, world):
    promoted = admin_api.patch(f"/members/{world.bob.pk}", {"version": 1, "role": "admin"})
    assert promoted.status_code == 200 and promoted.json() == {
        **promoted.json(),
        "role": "admin",
        "version": 2,
    }
    assert (
        admin_api.patch(f"/members/{world.bob.pk}", {"version": 1, "role": "member"}).status_code
        == 409
    )
    admin_api.patch(f"/members/{world.bob.pk}", {"version": 2, "role": "member"})
    last_admin = admin_api.patch(f"/members/{world.alice.pk}", {"version": 1, "role": "member"})
    assert "at least one admin" in fields_of(last_admin)["role"][0]


def test_removing_a_member_takes_them_out_of_the_groups_too(admin_api, world):
    assert admin_api.delete(f"/members/{world.carol.pk}").status_code == 204
    assert not OrganizationMembership.objects.filter(user=world.carol).exists()
    assert not GroupMembership.objects.filter(user=world.carol).exists()
    assert admin_api.get(f"/members/{world.carol.pk}").status_code == 404


def test_the_last_admin_cannot_be_removed(admin_api, world):
    assert "userId" in fields_of(admin_api.delete(f"/members/{world.alice.pk}"))


def test_another_organizations_member_is_a_404(admin_api, world):
    assert admin_api.get(f"/members/{world.dave.pk}").status_code == 404


def test_a_custom_token_cannot_make_an_admin_with_more_than_it_holds(admin_api, world, org_admin):
    issued = issue(org_admin, name="users only", role="custom", permissions=["api.users.write"])
    api = Api(admin_api.client, issued.secret)
    response = api.patch(f"/members/{world.bob.pk}", {"version": 1, "role": "admin"})
    assert "do not hold" in fields_of(response)["role"][0]


def test_a_group_token_sees_only_the_members_of_its_group(callers, world):
    items = callers.api("group").get("/members").json()["items"]
    assert sorted(item["username"] for item in items) == ["bob", "carol"]
    assert callers.api("group").get(f"/members/{world.alice.pk}").status_code == 404


# Groups -------------------------------------------------------------------------------------


def test_groups_are_created_read_renamed_and_deleted(admin_api):
    created = admin_api.post("/groups", {"slug": "sre", "name": "SRE"})
    assert created.status_code == 201
    group = created.json()
    assert set(group) == {"id", "slug", "name", "createdAt", "version"}
    assert admin_api.get(f"/groups/{group['id']}").json()["name"] == "SRE"
    renamed = admin_api.patch(f"/groups/{group['id']}", {"version": 1, "name": "Site Reliability"})
    assert renamed.json()["name"] == "Site Reliability" and renamed.json()["version"] == 2
    assert admin_api.patch(f"/groups/{group['id']}", {"version": 1, "name": "x"}).status_code == 409
    assert admin_api.delete(f"/groups/{group['id']}").status_code == 204
    assert admin_api.get(f"/groups/{group['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "platform", "name": "Again"}, "slug"),
        ({"slug": "has spaces", "name": "x"}, "slug"),
        ({"slug": "ok", "name": ""}, "name"),
        ({"slug": "ok", "name": "x" * 101}, "name"),
        ({"slug": "ok"}, "name"),
    ],
)
def test_bad_groups_are_refused_naming_the_field(admin_api, body, field):
    assert field in fields_of(admin_api.post("/groups", body))


def test_deleting_a_group_deletes_its_tokens(admin_api, world, callers):
    assert admin_api.delete(f"/groups/{world.platform.pk}").status_code == 204
    assert not ApiToken.objects.filter(group_id=world.platform.pk).exists()
    assert callers.api("group").get("/me").status_code == 401
    assert AuditEvent.objects.filter(action="group.deleted").exists()


def test_a_group_token_sees_and_renames_only_its_own_group(callers, world):
    group_api = callers.api("group")
    assert [item["slug"] for item in group_api.get("/groups").json()["items"]] == ["platform"]
    assert group_api.get(f"/groups/{world.data.pk}").status_code == 404
    renamed = group_api.patch(f"/groups/{world.platform.pk}", {"version": 1, "name": "Plat"})
    assert renamed.status_code == 200
    assert (
        group_api.patch(f"/groups/{world.data.pk}", {"version": 1, "name": "x"}).status_code == 404
    )


# Group members ------------------------------------------------------------------------------


def test_group_members_are_added_changed_and_removed(admin_api, world):
    path = f"/groups/{world.data.pk}/members"
    added = admin_api.post(path, {"userId": world.carol.pk})
    assert added.status_code == 201 and added.json()["role"] == "member"
    assert "userId" in fields_of(admin_api.post(path, {"userId": world.carol.pk}))
    changed = admin_api.patch(f"{path}/{world.carol.pk}", {"version": 1, "role": "admin"})
    assert changed.json()["role"] == "admin" and changed.json()["version"] == 2
    assert admin_api.delete(f"{path}/{world.carol.pk}").status_code == 204
    assert admin_api.get(f"{path}/{world.carol.pk}").status_code == 404


def test_only_members_of_the_organization_join_its_groups(admin_api, world):
    outsider = make_user()
    response = admin_api.post(f"/groups/{world.data.pk}/members", {"userId": outsider.pk})
    assert "userId" in fields_of(response)


def test_a_group_admins_personal_token_manages_their_group_only(world, group_admin, client):
    secret = issue(group_admin, name="bob's", scope="personal", role="admin").secret
    api = Api(client, secret)
    erin = make_user("erin")
    add_member(world.acme, erin)
    assert api.post(f"/groups/{world.platform.pk}/members", {"userId": erin.pk}).status_code == 201
    # Bob is not in group data: it does not exist for him.
    assert api.post(f"/groups/{world.data.pk}/members", {"userId": erin.pk}).status_code == 404


# Audit events -------------------------------------------------------------------------------


def test_audit_events_filter_by_actor_token_action_and_time(admin_api, callers, world):
    created = admin_api.post("/api-tokens", {"name": "audited", "role": "member"}).json()
    admin_api.post(f"/api-tokens/{created['id']}/revoke", {"reason": "test"})
    actor_id = callers.tokens["org_admin"].user_id

    def actions(**query):
        return [item["action"] for item in admin_api.get("/audit-events", **query).json()["items"]]

    assert actions(actorId=actor_id) == ["token.revoked", "token.created"]
    assert actions(tokenId=created["id"]) == ["token.revoked", "token.created"]
    assert actions(action="token.revoked") == ["token.revoked"]
    assert set(actions(action="group.")) == {"group.created"}
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert actions(since=future) == []
    assert (
        len(actions(until=future, limit=200))
        == AuditEvent.objects.filter(organization=world.acme).count()
    )
    event = admin_api.get("/audit-events", tokenId=created["id"], limit=1).json()["items"][0]
    assert event["actor"] == {"id": actor_id, "name": "org admin", "kind": "technical"}
    assert event["token"]["id"] == callers.tokens["org_admin"].pk
    assert event["changes"]["status"] == {"before": "active", "after": "revoked"}


def test_a_group_token_reads_only_its_groups_events(callers, world):
    items = callers.api("group").get("/audit-events", limit=200).json()["items"]
    assert items and {item["groupId"] for item in items} == {world.platform.pk}


def test_since_after_until_is_refused(admin_api):
    response = admin_api.get("/audit-events", since="2030-01-02T00:00:00Z", until="2030-01-01")
    assert "since" in fields_of(response)


def test_groups_deleted_through_the_api_keep_their_audit_trail(admin_api, world):
    group_id = world.data.pk
    admin_api.delete(f"/groups/{group_id}")
    assert not Group.objects.filter(pk=group_id).exists()
    assert admin_api.get("/audit-events", action="group.deleted").json()["count"] == 1


def test_patching_the_organization_without_changes_keeps_its_version(admin_api):
    assert admin_api.patch("/organization", {"version": 1}).json()["version"] == 1
    assert (
        admin_api.patch("/organization", {"version": 1, "name": "Acme Corp"}).json()["version"] == 1
    )
    assert admin_api.patch("/organization", {"version": 7}).status_code == 409
