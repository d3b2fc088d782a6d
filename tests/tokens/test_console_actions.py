import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import HTMX, issue
from tokens.models import ApiToken, TokenSecret
from tokens.services import rename_token, revoke_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(org_admin):
    return issue(org_admin, name="CI deploy", role="member").token


def url(token, action=""):
    return f"/o/acme/tokens/{token.pk}/{action}"


def triggers(response):
    return json.loads(response.headers["HX-Trigger"])


def test_a_new_organization_keeps_tokens_permissions_as_issued(as_alice, token, world):
    policy = world.acme.security_policy
    assert not policy.organization_tokens.permission_edits_allowed
    assert not policy.group_tokens.permission_edits_allowed
    assert not policy.personal_tokens.permission_edits_allowed
    assert b">Edit permissions</a>" not in as_alice.get(url(token)).content
    response = as_alice.post(
        url(token, "permissions/"), {"version": token.version, "role": "admin"}, **HTMX
    )
    assert b"does not allow editing the permissions" in response.content


@pytest.mark.usefixtures("permission_edits_allowed")
def test_each_action_opens_as_a_dialog_fragment(as_alice, token):
    for action in ("permissions/", "regenerate/", "revoke/", "delete/"):
        content = as_alice.get(url(token, action) + "?version=1", **HTMX).content.decode()
        assert content.strip().startswith("<dialog"), action
        assert 'name="version" value="1"' in content


def test_revoking_with_a_reason_updates_the_page_in_place(as_alice, token):
    response = as_alice.post(
        url(token, "revoke/"), {"version": token.version, "reason": "leaked in a log"}, **HTMX
    )
    assert response.status_code == 204
    assert {"token-changed", "close-dialog"} <= set(triggers(response))
    # The message comes with the response, for the page's live region; the refresh has none.
    assert triggers(response)["messages"] == {
        "messages": [
            {"text": "CI deploy is revoked: requests with it now fail.", "level": "success"}
        ]
    }
    token.refresh_from_db()
    assert token.status == "revoked" and token.revoked_reason == "leaked in a log"
    refreshed = as_alice.get(url(token), **HTMX).content.decode()
    assert "leaked in a log" in refreshed
    assert "is revoked: requests with it now fail" not in refreshed


def test_without_javascript_revoke_redirects_to_the_detail(as_alice, token):
    response = as_alice.post(url(token, "revoke/"), {"version": token.version})
    assert response.status_code == 302
    assert response.headers["Location"] == url(token)


def test_a_stale_page_changes_nothing_and_says_so(as_alice, org_admin, token):
    loaded_version = token.version
    rename_token(actor=org_admin, token=token, name="CI deploy v2")
    response = as_alice.post(
        url(token, "revoke/"), {"version": loaded_version, "reason": "x"}, **HTMX
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert "This token was changed since you loaded it" in content
    assert "Nothing was saved." in content
    token.refresh_from_db()
    assert token.status == "active"


def test_opening_an_action_from_a_stale_page_warns_at_once(as_alice, org_admin, token):
    rename_token(actor=org_admin, token=token, name="Renamed")
    content = as_alice.get(url(token, "revoke/") + "?version=1", **HTMX).content.decode()
    assert "This token was changed since you loaded it" in content


def test_restoring_a_revoked_token(as_alice, org_admin, token):
    revoke_token(actor=org_admin, token=token)
    token.refresh_from_db()
    response = as_alice.post(url(token, "restore/"), {"version": token.version}, **HTMX)
    assert response.status_code == 204
    token.refresh_from_db()
    assert token.status == "active"


def test_restore_on_an_active_token_explains_why_not(as_alice, token):
    content = as_alice.get(url(token, "restore/"), **HTMX).content.decode()
    assert "Only a revoked token can be restored" in content
    response = as_alice.post(url(token, "restore/"), {"version": token.version}, **HTMX)
    assert b"Only a revoked token can be restored; this one is active." in response.content
    token.refresh_from_db()
    assert token.status == "active"


def test_regenerating_without_grace_reveals_a_new_secret_and_ends_the_old(as_alice, token):
    old_partial = token.partial_token
    response = as_alice.post(
        url(token, "regenerate/"), {"version": token.version, "grace": "0"}, **HTMX
    )
    content = response.content.decode()
    assert 'id="revealed-token"' in content
    assert "no-store" in response.headers["Cache-Control"]
    assert "token-changed" in triggers(response)
    assert "The previous token stopped working just now." in content
    token.refresh_from_db()
    assert token.partial_token != old_partial
    assert TokenSecret.objects.filter(token=token).count() == 1


def test_regenerating_with_a_grace_period_keeps_the_old_secret_until_then(as_alice, token):
    response = as_alice.post(
        url(token, "regenerate/"), {"version": token.version, "grace": "1d"}, **HTMX
    )
    assert b"keeps working for 1 day" in response.content
    old = TokenSecret.objects.get(token=token, ends_at__isnull=False)
    assert old.ends_at - timezone.now() > timedelta(hours=23)


def test_grace_periods_over_the_policy_are_not_offered_and_refused(as_alice, token, world):
    policy = world.acme.security_policy.organization_tokens
    policy.max_grace = timedelta(hours=1)
    policy.save()
    content = as_alice.get(url(token, "regenerate/"), **HTMX).content.decode()
    assert 'value="7d" disabled' in content
    response = as_alice.post(
        url(token, "regenerate/"), {"version": token.version, "grace": "7d"}, **HTMX
    )
    assert b"grace period of at most" in response.content
    assert TokenSecret.objects.filter(token=token).count() == 1


def test_a_policy_without_regeneration_says_so(as_alice, token, world):
    policy = world.acme.security_policy.organization_tokens
    policy.regeneration_allowed = False
    policy.save()
    content = as_alice.get(url(token, "regenerate/"), **HTMX).content.decode()
    assert "does not allow regenerating organization tokens" in content
    response = as_alice.post(
        url(token, "regenerate/"), {"version": token.version, "grace": "0"}, **HTMX
    )
    assert b"does not allow regenerating" in response.content


def test_the_permission_editor_previews_what_is_added_and_removed(as_alice, token):
    response = as_alice.get(
        url(token, "permissions/preview/")
        + "?role=custom&permissions=api.api-tokens.read&permissions=api.api-tokens.write",
        **HTMX,
    )
    content = response.content.decode()
    assert "<strong>Added:</strong> <code>api.api-tokens.write</code>" in content
    assert "<strong>Removed:</strong>" in content and "api.usage.read" in content


def test_the_preview_reads_the_grid_rows(as_alice, token):
    response = as_alice.get(
        url(token, "permissions/preview/")
        + "?role=custom&access-api-tokens=api.api-tokens.read+api.api-tokens.write"
        + "&access-usage=api.usage.read",
        **HTMX,
    )
    content = response.content.decode()
    assert "<strong>Added:</strong> <code>api.api-tokens.write</code>" in content
    assert (
        "<strong>Removed:</strong> <code>api.groups.read</code>, <code>api.ip-filters.read</code>,"
        " <code>api.security-policies.read</code>"
    ) in content


@pytest.mark.usefixtures("permission_edits_allowed")
def test_saving_permissions_changes_the_token(as_alice, token):
    response = as_alice.post(
        url(token, "permissions/"),
        {"version": token.version, "role": "custom", "permissions": ["api.usage.read"]},
        **HTMX,
    )
    assert response.status_code == 204
    token.refresh_from_db()
    assert token.role == "custom" and token.permissions == ["api.usage.read"]


@pytest.mark.usefixtures("permission_edits_allowed")
def test_saving_custom_without_permissions_keeps_the_dialog_with_the_error(as_alice, token):
    response = as_alice.post(
        url(token, "permissions/"), {"version": token.version, "role": "custom"}, **HTMX
    )
    assert b"Choose at least one permission." in response.content
    assert b'id="permission-changes"' in response.content
    token.refresh_from_db()
    assert token.role == "member"


def test_a_policy_without_permission_edits_offers_no_editor(as_alice, token, world):
    policy = world.acme.security_policy.organization_tokens
    policy.permission_edits_allowed = False
    policy.save()
    assert b">Edit permissions</a>" not in as_alice.get(url(token)).content
    response = as_alice.post(
        url(token, "permissions/"), {"version": token.version, "role": "admin"}, **HTMX
    )
    assert b"does not allow editing the permissions" in response.content


def test_deleting_names_the_token_and_goes_back_to_the_list(as_alice, token):
    dialog = as_alice.get(url(token, "delete/"), **HTMX).content.decode()
    assert "Delete <strong>CI deploy</strong>" in dialog
    assert ">Delete CI deploy</button>" in dialog
    response = as_alice.post(url(token, "delete/"), {"version": token.version}, **HTMX)
    assert response.headers["HX-Redirect"] == "/o/acme/tokens/"
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    listed = as_alice.get("/o/acme/tokens/").content.decode()
    assert "CI deploy is deleted: requests with it now fail." in listed
    assert as_alice.get(url(token)).status_code == 404


def test_deleting_a_group_token_returns_to_the_group(as_bob, org_admin, world):
    token = issue(org_admin, name="G", scope="group", group=world.platform).token
    response = as_bob.post(url(token, "delete/"), {"version": token.version})
    assert response.headers["Location"] == "/o/acme/groups/platform/"


def test_a_missing_version_does_not_act(as_alice, token):
    response = as_alice.post(url(token, "revoke/"), {"reason": "x"}, **HTMX)
    assert b"The page is out of date" in response.content
    token.refresh_from_db()
    assert token.status == "active"


def test_a_token_of_another_organization_cannot_be_acted_on(client, world, other_org_admin):
    foreign = issue(other_org_admin, name="Globex backup").token
    client.force_login(world.alice)
    response = client.post(url(foreign, "delete/"), {"version": foreign.version})
    assert response.status_code == 404
    assert ApiToken.objects.filter(pk=foreign.pk).exists()


def test_a_member_deletes_their_own_personal_token(as_carol, member):
    own = issue(member, name="laptop", scope="personal", role="member").token
    response = as_carol.post(url(own, "delete/"), {"version": own.version})
    assert response.headers["Location"] == "/o/acme/me/tokens/"
    assert not ApiToken.objects.filter(pk=own.pk).exists()


def test_actions_answer_only_get_and_post(as_alice, token):
    assert as_alice.put(url(token, "revoke/")).status_code == 405


# IP filter and addresses --------------------------------------------------------------------


def test_a_tokens_filter_and_addresses_are_changed_in_a_dialog(as_alice, org_admin, token):
    from policies.services import create_ip_filter

    office = create_ip_filter(
        actor=org_admin, organization=org_admin.organization, name="Office", rules_text="allow all"
    )
    detail = as_alice.get(url(token)).content.decode()
    assert "Change addresses" in detail
    dialog = as_alice.get(url(token, "addresses/") + f"?version={token.version}", **HTMX)
    assert 'name="allowed_addresses"' in dialog.content.decode()
    response = as_alice.post(
        url(token, "addresses/"),
        {"version": token.version, "ip_filter": office.pk, "allowed_addresses": "10.0.0.0/8\n"},
        **HTMX,
    )
    assert response.status_code == 204
    token.refresh_from_db()
    assert token.ip_filter == office and token.allowed_addresses == ["10.0.0.0/8"]


def test_a_bad_address_is_shown_beside_the_field_and_nothing_changes(as_alice, token):
    response = as_alice.post(
        url(token, "addresses/"),
        {"version": token.version, "ip_filter": "", "allowed_addresses": "10.0.0.300"},
        **HTMX,
    )
    content = response.content.decode()
    assert 'id="addresses-error"' in content and 'aria-invalid="true"' in content
    token.refresh_from_db()
    assert token.allowed_addresses == []


def test_addresses_are_not_offered_where_the_policy_forbids_own_addresses(as_alice, world, token):
    policy = world.acme.security_policy.organization_tokens
    policy.custom_ip_allowed = False
    policy.save()
    assert "Change addresses" not in as_alice.get(url(token)).content.decode()
    response = as_alice.post(
        url(token, "addresses/"),
        {"version": token.version, "ip_filter": "", "allowed_addresses": "10.0.0.1"},
        **HTMX,
    )
    assert "does not let organization tokens carry their own" in response.content.decode()
    token.refresh_from_db()
    assert token.allowed_addresses == []


# Who sees what in the navigation -------------------------------------------------------------


def test_group_admins_reach_their_groups_audit_log_and_members_do_not(client, world):
    client.force_login(world.bob)
    assert "Audit log" in client.get("/o/acme/me/tokens/").content.decode()
    client.force_login(world.carol)
    page = client.get("/o/acme/me/tokens/").content.decode()
    assert "Audit log" not in page and "Organization tokens" not in page
    assert "Security policy" in page  # members read it
