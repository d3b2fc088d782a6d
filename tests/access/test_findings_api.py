"""The attacker's findings of issue 12, each replayed through the API as the attacker did."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from orgs.models import OrganizationMembership
from policies.models import IpFilter, SecurityPolicy
from policies.services import create_ip_filter, update_security_policy
from tests.factories import OPERATOR, Api, add_member, issue
from tokens.models import ApiToken
from tokens.services import revoke_token

pytestmark = pytest.mark.django_db

READ_WRITE = ["api.api-tokens.read", "api.api-tokens.write"]


def api_of(client, issued) -> Api:
    return Api(client, issued.secret)


# 1. A read/write token regenerated an admin token and took its new secret ---------------------


@pytest.mark.parametrize("grace", [0, 3600])
def test_a_read_write_token_cannot_regenerate_an_organization_admin_token(client, org_admin, grace):
    admin = issue(org_admin, name="admin", role="admin")
    attacker = api_of(client, issue(org_admin, name="rw", role="custom", permissions=READ_WRITE))
    response = attacker.post(
        f"/api-tokens/{admin.token.pk}/regenerate", {"gracePeriodSeconds": grace}
    )
    assert response.status_code == 403
    assert "token" not in response.json()
    assert "api.users.write" in response.json()["error"]["message"]
    # The owner's secret is untouched: still the only one, still working.
    assert api_of(client, admin).get("/me").status_code == 200
    assert admin.token.secrets.count() == 1


def test_a_read_write_group_token_cannot_regenerate_its_groups_admin_token(
    client, world, org_admin
):
    group_admin = issue(org_admin, name="g admin", scope="group", group=world.platform)
    attacker = api_of(
        client,
        issue(
            org_admin,
            name="g rw",
            scope="group",
            group=world.platform,
            role="custom",
            permissions=READ_WRITE,
        ),
    )
    response = attacker.post(f"/api-tokens/{group_admin.token.pk}/regenerate", {})
    assert response.status_code == 403
    assert api_of(client, group_admin).get("/me").status_code == 200


def test_an_organization_token_no_longer_counts_as_an_organization_admin(client, org_admin):
    weak = api_of(client, issue(org_admin, name="rw", role="custom", permissions=READ_WRITE))
    assert weak.get("/me").json()["permissions"] == READ_WRITE
    assert weak.post("/groups", {"slug": "new", "name": "New"}).status_code == 403
    assert weak.patch("/organization", {"version": 1, "name": "Mine"}).status_code == 403


# 2. The same token restored an admin token an admin had revoked ------------------------------


def test_a_read_write_token_cannot_restore_an_admin_token_an_admin_revoked(client, org_admin):
    admin = issue(org_admin, name="admin", role="admin")
    revoke_token(actor=org_admin, token=admin.token, reason="rotating")
    attacker = api_of(client, issue(org_admin, name="rw", role="custom", permissions=READ_WRITE))
    assert attacker.post(f"/api-tokens/{admin.token.pk}/restore", {}).status_code == 403
    assert ApiToken.objects.get(pk=admin.token.pk).status == "revoked"
    assert api_of(client, admin).get("/me").status_code == 401


def test_anyone_who_may_write_can_still_revoke_a_stronger_token(client, org_admin):
    admin = issue(org_admin, name="admin", role="admin")
    weak = api_of(client, issue(org_admin, name="rw", role="custom", permissions=READ_WRITE))
    response = weak.post(f"/api-tokens/{admin.token.pk}/revoke", {"reason": "leaked"})
    assert response.status_code == 200
    assert response.json()["revokedReason"] == "leaked"
    assert api_of(client, admin).get("/me").status_code == 401


# 3. Removing a person and adding them back made their personal token work again --------------


def test_removing_a_person_revokes_their_personal_tokens_and_adding_them_back_restores_none(
    client, world, member, org_admin
):
    personal = issue(member, name="carol's laptop", scope="personal", role="admin")
    admin = api_of(client, issue(org_admin, name="admin", role="admin"))
    assert api_of(client, personal).get("/me").status_code == 200
    assert admin.delete(f"/members/{world.carol.pk}").status_code == 204
    token = ApiToken.objects.get(pk=personal.token.pk)
    assert token.status == "revoked"
    assert token.revoked_reason == "Owner removed from the organization."
    add_member(world.acme, world.carol)
    assert api_of(client, personal).get("/me").status_code == 401


def test_a_group_admin_leaving_the_group_loses_their_personal_tokens(
    client, world, group_admin, org_admin
):
    personal = issue(group_admin, name="bob's", scope="personal", role="admin")
    admin = api_of(client, issue(org_admin, name="admin", role="admin"))
    response = admin.delete(f"/groups/{world.platform.pk}/members/{world.bob.pk}")
    assert response.status_code == 204
    assert ApiToken.objects.get(pk=personal.token.pk).status == "revoked"
    assert api_of(client, personal).get("/me").status_code == 401


# 4. Regeneration moved the expiry and revived expired tokens ---------------------------------


def test_four_regenerations_keep_the_expiry_where_it_was(client, org_admin):
    admin = api_of(client, issue(org_admin, name="admin", role="admin"))
    created = admin.post("/api-tokens", {"name": "ci", "role": "member", "expiresIn": "10d"})
    expiry = created.json()["expiry"]
    for day in range(1, 5):
        with time_machine.travel(timezone.now() + timedelta(days=day)):
            body = admin.post(f"/api-tokens/{created.json()['id']}/regenerate", {}).json()
            assert body["expiry"] == expiry


def test_an_expired_token_is_not_regenerated(client, org_admin):
    admin = api_of(client, issue(org_admin, name="admin", role="admin"))
    created = admin.post("/api-tokens", {"name": "ci", "role": "member", "expiresIn": "1d"})
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        response = admin.post(f"/api-tokens/{created.json()['id']}/regenerate", {})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "expiry" in error["fields"]


def test_a_grace_period_never_outlives_the_token_and_the_answer_says_when_it_ends(
    client, org_admin
):
    admin = api_of(client, issue(org_admin, name="admin", role="admin"))
    created = admin.post("/api-tokens", {"name": "ci", "role": "member", "expiresIn": "2h"}).json()
    body = admin.post(
        f"/api-tokens/{created['id']}/regenerate", {"gracePeriodSeconds": 86400}
    ).json()
    assert datetime.fromisoformat(body["previousSecretEndsAt"]) == datetime.fromisoformat(
        created["expiry"]
    )


# 5. Console and API disagreed on groups; set_member skipped checks ---------------------------


def test_a_member_sees_the_same_groups_through_the_api_as_in_the_console(client, world, member):
    carol = api_of(client, issue(member, name="carol's", scope="personal", role="admin"))
    names = [group["name"] for group in carol.get("/groups").json()["items"]]
    assert names == ["Platform"]
    client.force_login(world.carol)
    page = client.get("/o/acme/groups/").content.decode()
    assert "Platform" in page and ">Data<" not in page


def test_the_group_list_counts_every_member_not_only_the_viewer(client, world):
    client.force_login(world.carol)
    page = client.get("/o/acme/groups/").content.decode()
    # Platform has bob (admin) and carol: the count must not be 1 (carol's own membership).
    row = page[page.index(">Platform<") :]
    assert row.split("<td>")[1].startswith("2</td>")


def test_setting_a_role_keeps_the_last_admin_and_the_grant_rules(world, org_admin):
    from django.core.exceptions import ValidationError

    from people.services import set_member
    from tokens.auth import authenticate

    with pytest.raises(ValidationError) as raised:
        set_member(actor=OPERATOR, organization=world.acme, user=world.alice, role="member")
    assert "at least one admin" in str(raised.value)
    weak = issue(org_admin, name="users", role="custom", permissions=["api.users.write"])
    actor = authenticate(f"Bearer {weak.secret}", "203.0.113.1").principal
    with pytest.raises(ValidationError) as raised:
        set_member(actor=actor, organization=world.acme, user=world.carol, role="admin")
    assert "do not hold" in str(raised.value)
    assert (
        OrganizationMembership.objects.get(organization=world.acme, user=world.carol).role
        == "member"
    )


# 6. A filter the policy stopped enforcing stayed on its tokens -------------------------------


def _office(org_admin) -> IpFilter:
    return create_ip_filter(
        actor=org_admin,
        organization=org_admin.organization,
        name="Office",
        rules_text="allow 203.0.113.0/24\ndeny all",
    )


def test_tokens_follow_the_policy_when_it_stops_enforcing_a_filter(client, org_admin, world):
    office = _office(org_admin)
    admin = api_of(client, issue(org_admin, name="admin", role="admin"))
    update_security_policy(
        actor=org_admin,
        organization=world.acme,
        changes={"organization": {"enforced_ip_filter": office}},
    )
    token = issue(org_admin, name="enforced", role="member")
    assert token.token.ip_filter == office and token.token.ip_filter_from_policy
    version = SecurityPolicy.objects.get(organization=world.acme).version
    preview = admin.post(
        "/security-policy/preview",
        {"organization": {"enforcedIpFilterId": None}},
        remote_addr="203.0.113.7",
    ).json()
    assert {change["tokenId"] for change in preview["ipFilterReleased"]} >= {token.token.pk}
    assert "no token" not in " ".join(preview["summary"])
    response = admin.patch(
        "/security-policy",
        {"version": version, "organization": {"enforcedIpFilterId": None}},
        remote_addr="203.0.113.7",
    )
    assert response.status_code == 200, response.content
    token.token.refresh_from_db()
    assert token.token.ip_filter is None and not token.token.ip_filter_from_policy
    assert (
        api_of(client, token).request("GET", "/me", remote_addr="198.51.100.1").status_code == 200
    )


def test_a_tokens_filter_and_addresses_can_be_changed_where_the_policy_allows(client, org_admin):
    office = _office(org_admin)
    admin = api_of(client, issue(org_admin, name="admin", role="admin"))
    created = admin.post("/api-tokens", {"name": "ci", "role": "member"}).json()
    response = admin.patch(
        f"/api-tokens/{created['id']}",
        {
            "version": created["version"],
            "ipFilterId": office.pk,
            "allowedAddresses": ["10.0.0.0/8"],
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ipFilterId"] == office.pk and body["allowedAddresses"] == ["10.0.0.0/8"]
    stale = admin.patch(f"/api-tokens/{created['id']}", {"version": 1, "ipFilterId": None})
    assert stale.status_code == 409
    cleared = admin.patch(
        f"/api-tokens/{created['id']}",
        {"version": body["version"], "ipFilterId": None, "allowedAddresses": []},
    ).json()
    assert cleared["ipFilterId"] is None and cleared["allowedAddresses"] == []


def test_a_weaker_token_cannot_change_a_stronger_tokens_addresses(client, org_admin):
    admin = issue(org_admin, name="admin", role="admin")
    weak = api_of(client, issue(org_admin, name="rw", role="custom", permissions=READ_WRITE))
    response = weak.patch(
        f"/api-tokens/{admin.token.pk}", {"version": 1, "allowedAddresses": ["192.0.2.1"]}
    )
    assert response.status_code == 403
    admin.token.refresh_from_db()
    assert admin.token.allowed_addresses == []


# 7. Member-role tokens read the roster and the organization's settings -----------------------


def test_a_member_role_token_reads_tokens_filters_and_policy_but_not_members_or_settings(
    client, org_admin
):
    reader = api_of(client, issue(org_admin, name="reader", role="member"))
    for path in ("/api-tokens", "/ip-filters", "/security-policy", "/permissions", "/groups"):
        assert reader.get(path).status_code == 200, path
    for path in ("/members", "/organization", "/audit-events"):
        assert reader.get(path).status_code == 403, path
    assert reader.get("/me").json()["organization"]["slug"] == "acme"


# The second attack on the access layer (against a running server) ---------------------------


def test_a_group_token_cannot_demote_or_remove_an_organization_admin_it_added_to_its_group(
    client, world, org_admin
):
    alices = issue(org_admin, name="alice's", scope="personal", role="admin")
    group = api_of(client, issue(org_admin, name="g", scope="group", group=world.platform))
    members = f"/groups/{world.platform.pk}/members"
    assert group.post(members, {"userId": world.alice.pk, "role": "admin"}).status_code == 201
    assert group.delete(f"{members}/{world.alice.pk}").status_code == 403
    demote = group.patch(f"{members}/{world.alice.pk}", {"version": 1, "role": "member"})
    assert demote.status_code == 403
    assert api_of(client, alices).get("/me").status_code == 200


def test_an_organization_admin_leaving_a_group_keeps_her_personal_tokens(client, world, org_admin):
    from people.services import remove_group_member, set_group_member

    alices = issue(org_admin, name="alice's", scope="personal", role="admin")
    membership = set_group_member(
        actor=org_admin, group=world.platform, user=world.alice, role="admin"
    )
    remove_group_member(actor=org_admin, membership=membership)
    # Her rights did not shrink (she holds everything as organization admin).
    assert api_of(client, alices).get("/me").status_code == 200


def test_an_organization_token_cannot_remove_a_group_admin_who_holds_more_than_it(
    client, world, org_admin
):
    remover = api_of(
        client,
        issue(
            org_admin,
            name="remover",
            role="custom",
            permissions=["api.users.read", "api.users.delete", "api.api-tokens.read"],
        ),
    )
    response = remover.delete(f"/members/{world.bob.pk}")
    assert response.status_code == 403
    assert "api.users.write" in response.json()["error"]["message"]
    assert OrganizationMembership.objects.filter(organization=world.acme, user=world.bob).exists()


def test_deleting_a_group_revokes_the_personal_tokens_of_admins_who_lose_rights(
    client, world, org_admin, group_admin
):
    bobs = issue(group_admin, name="bob's", scope="personal", role="admin")
    alices = issue(org_admin, name="alice's", scope="personal", role="admin")
    admin = api_of(client, issue(org_admin, name="admin", role="admin"))
    assert admin.delete(f"/groups/{world.platform.pk}").status_code == 204
    assert api_of(client, bobs).get("/me").status_code == 401
    assert api_of(client, alices).get("/me").status_code == 200


def test_a_filter_writer_cannot_loosen_the_filter_of_a_stronger_token(client, world, org_admin):
    office = _office(org_admin)
    admin = issue(org_admin, name="admin", role="admin", ip_filter=office)
    writer = api_of(
        client,
        issue(
            org_admin,
            name="ipw",
            role="custom",
            permissions=["api.ip-filters.read", "api.ip-filters.write"],
        ),
    )
    response = writer.patch(f"/ip-filters/{office.pk}", {"version": 1, "rules": ["allow all"]})
    assert response.status_code == 403
    assert (
        api_of(client, admin).request("GET", "/me", remote_addr="198.51.100.7").status_code == 403
    )
    # Renaming it changes no token's access: allowed.
    assert writer.patch(f"/ip-filters/{office.pk}", {"version": 1, "name": "HQ"}).status_code == 200


def test_a_policy_writer_cannot_strip_a_stronger_tokens_addresses(client, world, org_admin):
    admin = issue(org_admin, name="admin", role="admin", allowed_addresses=("10.9.9.9",))
    writer = api_of(
        client,
        issue(
            org_admin,
            name="spw",
            role="custom",
            permissions=["api.security-policies.read", "api.security-policies.write"],
        ),
    )
    version = SecurityPolicy.objects.get(organization=world.acme).version
    response = writer.patch(
        "/security-policy", {"version": version, "organization": {"customIpAllowed": False}}
    )
    assert response.status_code == 403
    admin.token.refresh_from_db()
    assert admin.token.allowed_addresses == ["10.9.9.9/32"]


def test_an_owner_cannot_restore_a_personal_token_an_admin_revoked(
    client, world, org_admin, member
):
    carols = issue(member, name="carol's", scope="personal", role="admin")
    revoke_token(actor=org_admin, token=carols.token, reason="leaked")
    response = api_of(client, issue(member, name="other", scope="personal", role="admin")).post(
        f"/api-tokens/{carols.token.pk}/restore", {}
    )
    assert response.status_code == 403
    assert "not yours to restore" in response.json()["error"]["message"]
    client.force_login(world.carol)
    page = client.get(f"/o/acme/tokens/{carols.token.pk}/")
    assert ">Restore<" not in page.content.decode()
    client.post(f"/o/acme/tokens/{carols.token.pk}/restore/", {"version": carols.token.version + 1})
    assert ApiToken.objects.get(pk=carols.token.pk).status == "revoked"


def test_an_owner_still_restores_a_personal_token_they_revoked_themselves(client, member):
    carols = issue(member, name="carol's", scope="personal", role="admin")
    revoke_token(actor=member, token=carols.token, reason="pausing it")
    from tokens.services import restore_token

    restore_token(actor=member, token=carols.token)
    assert api_of(client, carols).get("/me").status_code == 200


def test_a_removed_and_readded_owner_cannot_restore_their_old_tokens(
    client, world, member, org_admin
):
    carols = issue(member, name="carol's", scope="personal", role="admin")
    admin = api_of(client, issue(org_admin, name="admin", role="admin"))
    admin.delete(f"/members/{world.carol.pk}")
    add_member(world.acme, world.carol)
    from access.errors import Forbidden
    from orgs.principals import Principal
    from tokens.services import restore_token

    with pytest.raises(Forbidden):
        restore_token(actor=Principal.for_member(world.carol, world.acme), token=carols.token)
    assert api_of(client, carols).get("/me").status_code == 401


def test_a_member_sees_only_their_own_doings_beside_their_token(client, world, org_admin, member):
    carols = issue(member, name="carol's", scope="personal", role="admin")
    revoke_token(actor=org_admin, token=carols.token, reason="checking")
    client.force_login(world.carol)
    page = client.get(f"/o/acme/tokens/{carols.token.pk}/").content.decode()
    recent = page[page.index("Recent activity") :]
    assert "Alice" not in recent and world.alice.username not in recent
    assert "created" in recent.lower()
