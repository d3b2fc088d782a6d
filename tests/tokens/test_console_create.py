import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from policies.models import IpFilter
from tests.factories import HTMX
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def custom(**fields):
    data = {
        "name": "Deployer",
        "role": "custom",
        "permissions": ["api.api-tokens.read", "api.usage.read"],
        "expiry": "30d",
        "expiry_unit": "days",
    }
    data.update(fields)
    return data


def organization_policy(world):
    return world.acme.security_policy.organization_tokens


def test_the_create_dialog_is_a_fragment_with_a_real_dialog(as_alice):
    response = as_alice.get("/o/acme/tokens/new/", **HTMX)
    content = response.content.decode()
    assert "<html" not in content
    assert content.strip().startswith("<dialog")
    assert 'aria-labelledby="dialog-title"' in content
    assert '<label for="id_name">Name</label>' in content


def test_without_javascript_create_is_a_page_of_its_own(as_alice):
    content = as_alice.get("/o/acme/tokens/new/").content.decode()
    assert "<html" in content and "<dialog" not in content
    assert 'action="/o/acme/tokens/new/"' in content


def test_the_permission_grid_offers_a_row_of_access_levels_per_resource(as_alice):
    content = as_alice.get("/o/acme/tokens/new/", **HTMX).content.decode()
    assert "<legend>API tokens</legend>" in content
    assert (
        '<input type="radio" name="access-api-tokens" '
        'value="api.api-tokens.read api.api-tokens.write api.api-tokens.delete">'
        " Read, write and delete</label>"
    ) in content
    # The audit log is only ever read: no write level to offer.
    assert 'name="access-audit-events" value="api.audit-events.read">' in content
    assert 'name="access-audit-events" value="api.audit-events.read api.audit' not in content


def test_the_grid_starts_with_the_default_role_filled_in_and_names_what_it_grants(as_alice):
    content = as_alice.get("/o/acme/tokens/new/", **HTMX).content.decode()
    assert 'name="access-api-tokens" value="api.api-tokens.read" checked>' in content
    assert 'name="access-audit-events" value="" checked>' in content
    assert (
        'id="access-api-tokens-names" data-permission-names><code>api.api-tokens.read</code>'
    ) in content


def test_a_token_created_from_the_grid_gets_the_levels_chosen(as_alice):
    data = custom(permissions=[])
    data["access-groups"] = "api.groups.read api.groups.write"
    data["access-usage"] = "api.usage.read"
    data["access-webhooks"] = ""
    response = as_alice.post("/o/acme/tokens/new/", data, **HTMX)
    assert b'id="revealed-token"' in response.content
    token = ApiToken.objects.get(name="Deployer")
    assert token.permissions == ["api.groups.read", "api.groups.write", "api.usage.read"]


def test_a_grid_value_outside_the_catalog_is_refused_on_the_permissions(as_alice):
    data = custom(permissions=[])
    data["access-groups"] = "api.groups.read api.groups.own"
    content = as_alice.post("/o/acme/tokens/new/", data, **HTMX).content.decode()
    assert 'id="permissions-error"' in content and "api.groups.own" in content
    assert not ApiToken.objects.exists()


def test_a_group_token_offers_only_permissions_valid_for_groups(as_bob, world):
    content = as_bob.get("/o/acme/groups/platform/tokens/new/", **HTMX).content.decode()
    assert 'value="api.api-tokens.read"' in content
    assert 'value="api.organizations.write"' not in content


def test_creating_reveals_the_secret_once_uncached_and_refreshes_the_list(as_alice):
    response = as_alice.post("/o/acme/tokens/new/", custom(), **HTMX)
    content = response.content.decode()
    token = ApiToken.objects.get(name="Deployer")
    assert response.status_code == 200
    assert 'id="revealed-token"' in content
    assert "This is the only time Keyward shows this token." in content
    assert "no-store" in response.headers["Cache-Control"]
    assert "token-changed" in json.loads(response.headers["HX-Trigger"])
    assert token.role == "custom"
    assert token.permissions == ["api.api-tokens.read", "api.usage.read"]
    secret = content.split('id="revealed-token" class="secret" value="')[1].split('"')[0]
    assert secret.startswith("kwo_") and secret.endswith(token.partial_token[-4:])
    assert secret not in str(dict(as_alice.session))


def test_the_reveal_offers_show_to_unmask_the_secret_and_keeps_the_warning(as_alice):
    content = as_alice.post("/o/acme/tokens/new/", custom(), **HTMX).content.decode()
    # Masked by the script, which unhides Show; without it the secret stays copyable text.
    assert 'aria-describedby="copy-status" data-masked>' in content
    assert (
        '<button type="button" class="secondary" data-show-secret="revealed-token" '
        'aria-controls="revealed-token" hidden>Show</button>'
    ) in content
    assert "This is the only time Keyward shows this token." in content


def test_the_secret_is_never_shown_again(as_alice):
    response = as_alice.post("/o/acme/tokens/new/", custom(), **HTMX)
    secret = response.content.decode().split('class="secret" value="')[1].split('"')[0]
    token = ApiToken.objects.get(name="Deployer")
    for url in ("/o/acme/tokens/", f"/o/acme/tokens/{token.pk}/"):
        assert secret.encode() not in as_alice.get(url).content


def test_without_javascript_the_reveal_is_a_full_uncached_page(as_alice):
    response = as_alice.post("/o/acme/tokens/new/", custom())
    assert b"<html" in response.content
    assert b'id="revealed-token"' in response.content
    assert "no-store" in response.headers["Cache-Control"]


def test_a_missing_name_is_shown_beside_the_field_and_nothing_is_created(as_alice):
    response = as_alice.post("/o/acme/tokens/new/", custom(name="  "), **HTMX)
    content = response.content.decode()
    assert 'id="name-error"' in content
    assert 'aria-invalid="true"' in content
    assert 'id="revealed-token"' not in content
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert not ApiToken.objects.exists()


def test_custom_without_permissions_says_to_choose_some(as_alice):
    content = as_alice.post("/o/acme/tokens/new/", custom(permissions=[]), **HTMX).content.decode()
    assert 'id="permissions-error"' in content
    assert "Choose at least one permission." in content
    assert not ApiToken.objects.exists()


def test_a_taken_name_is_reported_on_the_name(as_alice, org_admin):
    as_alice.post("/o/acme/tokens/new/", custom(), **HTMX)
    content = as_alice.post("/o/acme/tokens/new/", custom(name="deployer"), **HTMX).content
    assert b"An organization token named &#x27;deployer&#x27; already exists." in content
    assert ApiToken.objects.count() == 1


def test_the_form_keeps_what_was_typed_after_an_error(as_alice):
    content = as_alice.post(
        "/o/acme/tokens/new/",
        custom(name="", allowed_addresses="10.0.0.0/8"),
        **HTMX,
    ).content.decode()
    assert ">10.0.0.0/8</textarea>" in content
    assert 'value="api.usage.read" checked' in content


def test_a_custom_duration_sets_the_expiry(as_alice):
    with time_machine.travel(NOW, tick=False):
        as_alice.post(
            "/o/acme/tokens/new/",
            custom(expiry="duration", expiry_amount="12", expiry_unit="hours"),
            **HTMX,
        )
    assert ApiToken.objects.get().expires_at == NOW + timedelta(hours=12)


def test_a_date_expires_at_the_end_of_that_day(as_alice):
    with time_machine.travel(NOW, tick=False):
        as_alice.post(
            "/o/acme/tokens/new/", custom(expiry="date", expiry_date="2026-12-24"), **HTMX
        )
    assert ApiToken.objects.get().expires_at == datetime(2026, 12, 24, 23, 59, 59, tzinfo=UTC)


def test_a_duration_without_a_number_is_an_error_on_the_expiry(as_alice):
    content = as_alice.post(
        "/o/acme/tokens/new/", custom(expiry="duration", expiry_amount=""), **HTMX
    ).content.decode()
    assert 'id="expiry-error"' in content
    assert "Enter how many minutes, hours or days." in content


def test_the_policy_limit_is_shown_and_longer_presets_are_not_offered(as_alice, world):
    policy = organization_policy(world)
    policy.max_lifetime = timedelta(days=30)
    policy.save()
    content = as_alice.get("/o/acme/tokens/new/", **HTMX).content.decode()
    assert "Security policy: at most 30 days" in content
    assert 'value="30d" checked' in content
    assert 'value="90d"' not in content
    assert 'value="never"' not in content


def test_an_expiry_beyond_the_policy_is_refused_beside_the_expiry(as_alice, world):
    policy = organization_policy(world)
    policy.max_lifetime = timedelta(days=30)
    policy.save()
    content = as_alice.post(
        "/o/acme/tokens/new/",
        custom(expiry="duration", expiry_amount="40", expiry_unit="days"),
        **HTMX,
    ).content.decode()
    assert 'id="expiry-error"' in content
    assert "The security policy allows at most 30 days" in content
    assert not ApiToken.objects.exists()


def test_no_expiry_is_offered_only_where_the_policy_allows_it(as_alice, world):
    assert b'value="never"' in as_alice.get("/o/acme/tokens/new/", **HTMX).content
    policy = organization_policy(world)
    policy.expiry_required = True
    policy.save()
    assert b'value="never"' not in as_alice.get("/o/acme/tokens/new/", **HTMX).content
    content = as_alice.post("/o/acme/tokens/new/", custom(expiry="never"), **HTMX).content
    assert b"The security policy requires these tokens to expire." in content
    assert not ApiToken.objects.exists()


def test_a_named_ip_filter_can_be_chosen(as_alice, world):
    office = IpFilter.objects.create(
        organization=world.acme, name="Office", rules_text="allow 10.0.0.0/8"
    )
    content = as_alice.get("/o/acme/tokens/new/", **HTMX).content.decode()
    assert f'<option value="{office.pk}">Office</option>' in content
    as_alice.post("/o/acme/tokens/new/", custom(ip_filter=office.pk), **HTMX)
    assert ApiToken.objects.get().ip_filter == office


def test_the_policy_enforced_ip_filter_is_shown_read_only_and_applied(as_alice, world):
    office = IpFilter.objects.create(
        organization=world.acme, name="Office", rules_text="allow 10.0.0.0/8"
    )
    policy = organization_policy(world)
    policy.enforced_ip_filter = office
    policy.save()
    content = as_alice.get("/o/acme/tokens/new/", **HTMX).content.decode()
    assert "(enforced by the security policy)" in content
    assert 'name="ip_filter"' not in content
    as_alice.post("/o/acme/tokens/new/", custom(), **HTMX)
    assert ApiToken.objects.get().ip_filter == office


def test_allowed_addresses_are_one_per_line(as_alice):
    as_alice.post(
        "/o/acme/tokens/new/",
        custom(allowed_addresses="203.0.113.7\r\n\r\n10.0.0.0/8\r\n"),
        **HTMX,
    )
    assert ApiToken.objects.get().allowed_addresses == ["203.0.113.7/32", "10.0.0.0/8"]


def test_a_bad_address_is_reported_beside_the_addresses(as_alice):
    content = as_alice.post(
        "/o/acme/tokens/new/", custom(allowed_addresses="10.0.0.0/8\nnot-an-ip"), **HTMX
    ).content.decode()
    assert 'id="addresses-error"' in content
    assert "line 2" in content
    assert not ApiToken.objects.exists()


def test_a_policy_that_forbids_custom_addresses_hides_the_fields(as_alice, world):
    policy = organization_policy(world)
    policy.custom_ip_allowed = False
    policy.save()
    content = as_alice.get("/o/acme/tokens/new/", **HTMX).content.decode()
    assert 'name="allowed_addresses"' not in content
    assert "does not let these tokens carry their own IP filter" in content


def test_a_policy_that_forbids_the_scope_offers_no_form(as_alice, world):
    policy = organization_policy(world)
    policy.allowed = False
    policy.save()
    assert b"Create token" not in as_alice.get("/o/acme/tokens/").content
    response = as_alice.post("/o/acme/tokens/new/", custom(), **HTMX)
    assert b"does not allow organization tokens" in response.content
    assert not ApiToken.objects.exists()


def test_members_cannot_create_organization_tokens(as_carol):
    assert as_carol.post("/o/acme/tokens/new/", custom(), **HTMX).status_code == 403
    assert not ApiToken.objects.exists()


def test_the_form_refuses_a_post_without_a_csrf_token(client, world):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(world.alice)
    response = csrf_client.post("/o/acme/tokens/new/", custom(), **HTMX)
    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_an_htmx_post_with_the_csrf_header_is_accepted(world):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(world.alice)
    page = csrf_client.get("/o/acme/tokens/").content.decode()
    token = page.split('{"X-CSRFToken": "')[1].split('"')[0]
    response = csrf_client.post("/o/acme/tokens/new/", custom(), HTTP_X_CSRFTOKEN=token, **HTMX)
    assert response.status_code == 200
    assert ApiToken.objects.filter(name="Deployer").exists()


def test_personal_tokens_default_to_30_days(as_carol):
    content = as_carol.get("/o/acme/me/tokens/new/", **HTMX).content.decode()
    assert 'value="30d" checked' in content
    assert 'value="never"' not in content
    with time_machine.travel(NOW, tick=False):
        as_carol.post(
            "/o/acme/me/tokens/new/",
            {"name": "laptop", "role": "member", "expiry": "30d"},
            **HTMX,
        )
    token = ApiToken.objects.get()
    assert token.scope == "personal"
    assert token.expires_at == NOW + timedelta(days=30)


def test_personal_tokens_are_capped_by_a_shorter_policy(as_carol, world):
    policy = world.acme.security_policy.personal_tokens
    policy.max_lifetime = timedelta(days=7)
    policy.save()
    content = as_carol.get("/o/acme/me/tokens/new/", **HTMX).content.decode()
    assert 'value="duration" checked' in content
    assert 'name="expiry_amount" min="1" value="7"' in content
    response = as_carol.post(
        "/o/acme/me/tokens/new/", {"name": "laptop", "role": "member", "expiry": "30d"}, **HTMX
    )
    assert b"at most 7 days" in response.content
    assert not ApiToken.objects.exists()


def test_a_member_cannot_grant_a_permission_they_do_not_hold(as_carol):
    content = as_carol.get("/o/acme/me/tokens/new/", **HTMX).content.decode()
    assert (
        'name="access-audit-events" value="api.audit-events.read" disabled '
        'aria-describedby="access-audit-events-held"'
    ) in content
    assert 'id="access-audit-events-held">You cannot grant what you do not hold.' in content
    response = as_carol.post(
        "/o/acme/me/tokens/new/",
        {"name": "x", "role": "custom", "permissions": ["api.audit-events.read"], "expiry": "30d"},
        **HTMX,
    )
    assert b"You cannot grant permissions you do not hold" in response.content
    assert not ApiToken.objects.exists()


def test_group_admins_create_tokens_for_their_group(as_bob, world):
    response = as_bob.post("/o/acme/groups/platform/tokens/new/", custom(), **HTMX)
    assert b'id="revealed-token"' in response.content
    token = ApiToken.objects.get()
    assert token.scope == "group" and token.group == world.platform


def test_a_group_the_person_does_not_administer_is_not_there(as_bob):
    assert as_bob.get("/o/acme/groups/data/tokens/new/").status_code == 404


def test_a_group_member_who_is_not_its_admin_is_refused(as_carol):
    assert as_carol.post("/o/acme/groups/platform/tokens/new/", custom()).status_code == 403
    assert not ApiToken.objects.exists()
