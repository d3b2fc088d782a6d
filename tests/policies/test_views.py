"""Console pages for IP filters and the security policy, through the Django test client."""

from datetime import timedelta

import pytest
from django.urls import reverse

from policies.models import IpFilter, SecurityPolicy
from policies.services import create_ip_filter, update_security_policy
from tests.factories import issue
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name, *args, org="acme"):
    return reverse(f"policies:{name}", args=[org, *args])


@pytest.fixture
def admin_client(client, world):
    client.force_login(world.alice)
    return client


@pytest.fixture
def member_client(client, world):
    client.force_login(world.carol)
    return client


@pytest.fixture
def office(org_admin):
    return create_ip_filter(
        actor=org_admin,
        organization=org_admin.organization,
        name="Office",
        rules_text="# headquarters\ndeny 10.0.0.66\nallow 10.0.0.0/8",
        description="Head office network",
    )


def policy_form(policy, **overrides):
    """The policy form as the page submits it, with ``scope-setting`` overrides."""
    data = {}
    for scope in ("organization", "group", "personal"):
        scope_policy = policy.for_scope(scope)
        for setting in (
            "allowed",
            "expiry_required",
            "custom_ip_allowed",
            "permission_edits_allowed",
            "regeneration_allowed",
        ):
            if getattr(scope_policy, setting):
                data[f"{scope}-{setting}"] = "on"
        lifetime = scope_policy.max_lifetime
        data[f"{scope}-max_lifetime"] = f"{lifetime.days}d" if lifetime else ""
        data[f"{scope}-max_grace"] = f"{scope_policy.max_grace.days}d"
        data[f"{scope}-enforced_ip_filter"] = scope_policy.enforced_ip_filter_id or ""
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


# IP filter list and detail ------------------------------------------------------------------


def test_the_list_shows_each_filter_and_what_uses_it(admin_client, org_admin, office):
    issue(org_admin, name="Deploy bot", ip_filter=office)
    response = admin_client.get(url("ip-filter-list"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Office" in page and "Head office network" in page and "1 token" in page
    assert url("ip-filter-create") in page


def test_the_list_says_which_kinds_of_token_a_policy_enforces_a_filter_on(
    admin_client, org_admin, office
):
    create_ip_filter(
        actor=org_admin,
        organization=org_admin.organization,
        name="Lab",
        rules_text="allow 192.0.2.0/24",
    )
    update_security_policy(
        actor=org_admin,
        organization=org_admin.organization,
        changes={"personal": {"enforced_ip_filter": office}},
    )
    page = " ".join(admin_client.get(url("ip-filter-list")).content.decode().split())
    assert "enforced on personal tokens" in page
    assert "not used" in page  # Lab


def test_a_member_reads_filters_but_is_not_offered_to_create_one(member_client, office):
    response = member_client.get(url("ip-filter-list"))
    assert response.status_code == 200
    assert "Office" in response.content.decode()
    assert url("ip-filter-create") not in response.content.decode()
    assert member_client.get(url("ip-filter-create")).status_code == 403


def test_someone_outside_the_organization_gets_404(client, world, office):
    client.force_login(world.dave)
    assert client.get(url("ip-filter-list")).status_code == 404
    assert client.get(url("policy")).status_code == 404


def test_another_organizations_filter_is_a_404(client, world, office):
    client.force_login(world.dave)
    assert client.get(url("ip-filter-detail", office.pk, org="globex")).status_code == 404
    assert client.get(url("ip-filter-test", office.pk, org="globex")).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, db, world):
    response = client.get(url("ip-filter-list"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_detail_page_numbers_the_rules_and_lists_the_users(admin_client, org_admin, office):
    issue(org_admin, name="Deploy bot", ip_filter=office)
    page = admin_client.get(url("ip-filter-detail", office.pk)).content.decode()
    assert '<li value="2" id="line-2"><code>deny 10.0.0.66</code></li>' in page
    assert "Deploy bot" in page
    assert 'action="' + url("ip-filter-test", office.pk) + '"' in page


# Tester ---------------------------------------------------------------------------------------


def test_the_tester_answers_allowed_with_the_deciding_line(admin_client, office):
    response = admin_client.get(url("ip-filter-test", office.pk), {"address": "10.1.2.3"}, **HTMX)
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page
    assert "Allowed" in page and "line 3 decided" in page and "allow 10.0.0.0/8" in page


def test_the_tester_answers_denied_by_a_rule_or_by_no_match(admin_client, office):
    page = admin_client.get(
        url("ip-filter-test", office.pk), {"address": "10.0.0.66"}, **HTMX
    ).content.decode()
    assert "Denied" in page and "line 2 decided" in page
    page = admin_client.get(
        url("ip-filter-test", office.pk), {"address": "2001:db8::1"}, **HTMX
    ).content.decode()
    assert "Denied" in page and "no rule matches" in page


def test_the_tester_works_without_javascript_as_a_whole_page(admin_client, office):
    response = admin_client.get(url("ip-filter-test", office.pk), {"address": "10.1.2.3"})
    page = response.content.decode()
    assert "<html" in page and "Allowed" in page
    assert 'class="deciding" aria-current="true"' in page


@pytest.mark.parametrize("address", ["nonsense", "10.0.0.0/8", "1" * 500, "10.0.0.1\x00"])
def test_the_tester_explains_what_is_not_an_address(admin_client, office, address):
    response = admin_client.get(url("ip-filter-test", office.pk), {"address": address}, **HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert '<p class="field-error">' in page and "Allowed" not in page


# Create and edit --------------------------------------------------------------------------------


def test_creating_a_filter_redirects_to_it(admin_client, world):
    response = admin_client.post(
        url("ip-filter-create"),
        {"name": "VPN", "description": "", "rules_text": "allow 198.51.100.0/24\r\ndeny all"},
    )
    ip_filter = IpFilter.objects.get(name="VPN")
    assert response.status_code == 302
    assert response["Location"] == url("ip-filter-detail", ip_filter.pk)
    assert ip_filter.rules_text == "allow 198.51.100.0/24\ndeny all"
    page = admin_client.get(response["Location"]).content.decode()
    assert "IP filter VPN created." in page


def test_bad_rules_are_shown_line_by_line_and_nothing_is_saved(admin_client):
    response = admin_client.post(
        url("ip-filter-create"),
        {"name": "VPN", "rules_text": "allow 10.0.0.0/8\npermit all\nallow 10.0.0.1/8"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "2 lines are not valid rules" in page
    assert "Line 2: starts with &#x27;permit&#x27;" in page
    assert "Line 3: &#x27;10.0.0.1/8&#x27; has host bits set; did you mean 10.0.0.0/8?" in page
    assert 'aria-invalid="true"' in page
    assert "allow 10.0.0.1/8</textarea>" in page  # what was typed is kept
    assert "Line 2: Line 2" not in page and "Line 3: Line 3" not in page
    assert not IpFilter.objects.exists()


def test_a_taken_name_is_shown_beside_the_name(admin_client, office):
    response = admin_client.post(
        url("ip-filter-create"), {"name": "office", "rules_text": "allow all"}
    )
    assert "An IP filter named &#x27;office&#x27;, or one that looks the same, already exists." in (
        response.content.decode()
    )


def test_the_live_rule_check_marks_bad_lines_without_saving(admin_client):
    response = admin_client.post(
        url("ip-filter-check"), {"rules_text": "allow all\nallow nowhere"}, **HTMX
    )
    page = response.content.decode()
    assert "<html" not in page and 'id="rule-check"' in page
    assert "Line 2:" in page and "nowhere" in page
    good = admin_client.post(url("ip-filter-check"), {"rules_text": "allow all"}, **HTMX)
    assert "1 rule, all valid." in good.content.decode()
    assert not IpFilter.objects.exists()


def test_editing_saves_and_a_stale_form_is_refused(admin_client, org_admin, office):
    form = {
        "name": "Office",
        "description": "HQ",
        "rules_text": "allow 10.0.0.0/8",
        "expected_version": 1,
    }
    page = admin_client.get(url("ip-filter-edit", office.pk)).content.decode()
    assert 'name="expected_version" value="1"' in page
    response = admin_client.post(url("ip-filter-edit", office.pk), form)
    assert response.status_code == 302
    office.refresh_from_db()
    assert office.version == 2 and office.description == "HQ"
    stale = admin_client.post(url("ip-filter-edit", office.pk), {**form, "description": "Old"})
    assert "changed by someone else" in stale.content.decode()
    assert IpFilter.objects.get().description == "HQ"


def test_a_member_cannot_edit_or_delete(member_client, office):
    assert member_client.get(url("ip-filter-edit", office.pk)).status_code == 403
    assert member_client.post(url("ip-filter-delete", office.pk)).status_code == 403
    assert IpFilter.objects.exists()


# Delete -----------------------------------------------------------------------------------------


def test_an_unused_filter_is_deleted_after_confirmation(admin_client, office):
    page = admin_client.get(url("ip-filter-delete", office.pk)).content.decode()
    assert "Deleting it cannot be undone" in page
    response = admin_client.post(url("ip-filter-delete", office.pk))
    assert response.status_code == 302 and response["Location"] == url("ip-filter-list")
    assert not IpFilter.objects.exists()


def test_deleting_a_filter_in_use_is_refused_listing_what_uses_it(admin_client, org_admin, office):
    issue(org_admin, name="Deploy bot", ip_filter=office)
    update_security_policy(
        actor=org_admin,
        organization=org_admin.organization,
        changes={"personal": {"enforced_ip_filter": office}},
    )
    page = admin_client.get(url("ip-filter-delete", office.pk)).content.decode()
    assert "cannot be deleted while it is in use" in page
    assert "Deploy bot" in page and "personal tokens" in page
    response = admin_client.post(url("ip-filter-delete", office.pk))
    assert response.status_code == 200
    assert "is in use" in response.content.decode()
    assert IpFilter.objects.exists()


# Security policy ----------------------------------------------------------------------------


def test_the_policy_page_shows_the_settings_of_each_kind(admin_client, world):
    page = admin_client.get(url("policy")).content.decode()
    assert "Organization tokens" in page and "Personal tokens" in page
    assert 'name="personal-max_lifetime" id="id_personal-max_lifetime" value="30d"' in page
    assert 'name="organization-max_grace" id="id_organization-max_grace" value="7d"' in page


@pytest.mark.parametrize("user", ["bob", "carol"])
def test_members_read_the_policy_but_only_org_admins_change_it(client, world, user):
    client.force_login(getattr(world, user))
    page = client.get(url("policy"))
    assert page.status_code == 200
    content = page.content.decode()
    assert "the organization's admins change it" in content
    assert "<fieldset disabled>" in content
    assert "Preview impact" not in content
    policy = SecurityPolicy.objects.get(organization=world.acme)
    response = client.post(url("policy"), policy_form(policy, **{"group-allowed": None}))
    assert response.status_code == 403
    assert client.post(url("policy-preview"), policy_form(policy)).status_code == 403
    assert SecurityPolicy.objects.get(organization=world.acme).group_tokens.allowed


def test_the_preview_lists_the_tokens_a_change_touches(admin_client, world, org_admin, office):
    issue(org_admin, name="Forever", expires_at=None)
    issue(org_admin, name="Short", expires_in=timedelta(days=2))
    policy = SecurityPolicy.objects.get(organization=world.acme)
    data = policy_form(
        policy,
        **{
            "organization-max_lifetime": "90d",
            "organization-enforced_ip_filter": office.pk,
        },
    )
    response = admin_client.post(url("policy-preview"), data, **HTMX)
    page = response.content.decode()
    assert "<html" not in page and 'id="impact"' in page
    assert "1 token would have their expiry shortened" in page
    assert "2 tokens would get the enforced IP filter" in page
    assert "Forever" in page and "Short" in page
    assert "Apply these changes" in page
    # Nothing is saved by a preview.
    assert SecurityPolicy.objects.get(organization=world.acme).version == 1
    assert ApiToken.objects.get(name="Forever").expires_at is None


def test_a_preview_over_many_tokens_counts_them_all_and_lists_the_first_hundred(
    admin_client, world, office
):
    from tests.factories import bulk_tokens

    bulk_tokens(world.acme, 130, prefix="many", with_secrets=False)
    policy = SecurityPolicy.objects.get(organization=world.acme)
    data = policy_form(policy, **{"organization-enforced_ip_filter": office.pk})
    page = admin_client.post(url("policy-preview"), data, **HTMX).content.decode()
    assert "130 tokens would get the enforced IP filter" in page
    assert "Get the enforced IP filter: 130 tokens, the first 100 by name" in page
    assert page.count("</code></td><td>none</td><td>Office</td>") == 100


def test_applying_the_previewed_change_saves_it_and_says_what_it_did(
    admin_client, world, org_admin, office
):
    issue(org_admin, name="Forever", expires_at=None)
    policy = SecurityPolicy.objects.get(organization=world.acme)
    data = policy_form(
        policy,
        **{"organization-max_lifetime": "90d", "organization-enforced_ip_filter": office.pk},
    )
    preview = admin_client.post(url("policy-preview"), data, **HTMX).content.decode()
    fingerprint = preview.split('name="expected_impact" value="')[1].split('"')[0]
    response = admin_client.post(
        url("policy"), {**data, "expected_version": 1, "expected_impact": fingerprint}
    )
    assert response.status_code == 302
    token = ApiToken.objects.get(name="Forever")
    assert token.expires_at is not None and token.ip_filter == office
    page = admin_client.get(url("policy")).content.decode()
    assert "Security policy saved. 1 token had its expiry shortened" in page
    assert "1 token got the enforced IP filter." in page


def test_applying_after_tokens_changed_shows_the_new_preview_instead(
    admin_client, world, org_admin
):
    policy = SecurityPolicy.objects.get(organization=world.acme)
    data = policy_form(policy, **{"organization-max_lifetime": "30d"})
    preview = admin_client.post(url("policy-preview"), data, **HTMX).content.decode()
    fingerprint = preview.split('name="expected_impact" value="')[1].split('"')[0]
    issue(org_admin, name="Newcomer", expires_at=None)
    response = admin_client.post(
        url("policy"), {**data, "expected_version": 1, "expected_impact": fingerprint}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Tokens changed since the preview" in page and "Newcomer" in page
    assert SecurityPolicy.objects.get(organization=world.acme).version == 1


def test_a_bad_duration_is_shown_beside_its_field(admin_client, world):
    policy = SecurityPolicy.objects.get(organization=world.acme)
    data = policy_form(policy, **{"group-max_lifetime": "forever", "group-max_grace": "9d"})
    page = admin_client.post(url("policy-preview"), data).content.decode()
    assert "&#x27;forever&#x27; is not a duration" in page
    assert "A grace period is between 0 and 7 days." in page
    assert 'id="id_group-max_lifetime" value="forever"' in page
    response = admin_client.post(url("policy"), {**data, "expected_version": "x"})
    assert response.status_code == 200
    assert SecurityPolicy.objects.get(organization=world.acme).version == 1


def test_a_policy_save_without_its_version_changes_nothing_and_says_why(admin_client, world):
    """Without the version the page was read at, a save could undo a change made meanwhile."""
    policy = SecurityPolicy.objects.get(organization=world.acme)
    data = policy_form(policy, **{"group-allowed": None})
    response = admin_client.post(url("policy"), data)
    assert response.status_code == 200
    assert "did not say which version of the policy" in response.content.decode()
    policy = SecurityPolicy.objects.get(organization=world.acme)
    assert policy.version == 1 and policy.group_tokens.allowed


def test_an_enforced_filter_of_another_organization_is_refused(
    admin_client, world, other_org_admin
):
    theirs = create_ip_filter(
        actor=other_org_admin, organization=world.globex, name="Theirs", rules_text="allow all"
    )
    policy = SecurityPolicy.objects.get(organization=world.acme)
    data = policy_form(policy, **{"group-enforced_ip_filter": theirs.pk})
    response = admin_client.post(url("policy"), {**data, "expected_version": 1})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert (
        SecurityPolicy.objects.get(organization=world.acme).group_tokens.enforced_ip_filter is None
    )


def test_unchecking_allowed_revokes_and_the_page_says_so(admin_client, world, group_admin):
    issue(group_admin, name="CI", scope="group", group=world.platform)
    policy = SecurityPolicy.objects.get(organization=world.acme)
    data = policy_form(policy, **{"group-allowed": None})
    preview = admin_client.post(url("policy-preview"), data).content.decode()
    assert "<html" in preview  # works without htmx: the whole page with its impact
    assert "1 token of a disallowed kind would be revoked" in preview
    fingerprint = preview.split('name="expected_impact" value="')[1].split('"')[0]
    admin_client.post(
        url("policy"), {**data, "expected_version": 1, "expected_impact": fingerprint}
    )
    assert ApiToken.objects.get(name="CI").status == "revoked"


GARBAGE = ["", "x" * 3000, "\x00", "-1", "1e9", "💥", "<script>", "../../etc", "None"]


@pytest.mark.parametrize("value", GARBAGE)
def test_no_input_makes_any_page_fail_with_a_server_error(admin_client, world, office, value):
    policy = SecurityPolicy.objects.get(organization=world.acme)
    posts = {
        url("ip-filter-create"): {"name": value, "description": value, "rules_text": value},
        url("ip-filter-check"): {"rules_text": value},
        url("ip-filter-edit", office.pk): {
            "name": value,
            "rules_text": value,
            "expected_version": value,
        },
        url("policy-preview"): policy_form(
            policy,
            **{
                "group-max_lifetime": value,
                "group-max_grace": value,
                "group-enforced_ip_filter": value,
            },
        ),
        url("policy"): {
            **policy_form(policy, **{"personal-max_lifetime": value}),
            "expected_version": value,
            "expected_impact": value,
        },
    }
    for target, data in posts.items():
        assert admin_client.post(target, data).status_code < 500, target
        assert admin_client.post(target, data, **HTMX).status_code < 500, target
    assert admin_client.get(url("ip-filter-test", office.pk), {"address": value}).status_code == 200
    assert admin_client.get(url("ip-filter-detail", 999999)).status_code == 404


def test_a_filters_page_names_only_the_tokens_the_viewer_may_see(client, world, org_admin, member):
    ip_filter = create_ip_filter(
        actor=org_admin, organization=world.acme, name="Shared", rules_text="allow all"
    )
    issue(org_admin, name="Org deploy", ip_filter=ip_filter)
    issue(org_admin, name="Data sync", scope="group", group=world.data, ip_filter=ip_filter)
    issue(member, name="Carol laptop", scope="personal", role="member", ip_filter=ip_filter)
    client.force_login(world.bob)
    page = client.get(url("ip-filter-detail", ip_filter.pk)).content.decode()
    assert "Org deploy" not in page and "Data sync" not in page and "Carol laptop" not in page
    assert "3 other tokens you cannot see use this filter." in page
    client.force_login(world.carol)
    page = client.get(url("ip-filter-detail", ip_filter.pk)).content.decode()
    assert "Carol laptop" in page and "Org deploy" not in page
    assert "2 other tokens you cannot see use this filter." in page


def test_an_edit_without_its_version_changes_nothing_and_says_why(admin_client, world, org_admin):
    ip_filter = create_ip_filter(
        actor=org_admin, organization=world.acme, name="Office", rules_text="allow all"
    )
    response = admin_client.post(
        url("ip-filter-edit", ip_filter.pk), {"name": "Office", "rules_text": "deny all"}
    )
    assert response.status_code == 200
    assert "did not say which version" in response.content.decode()
    assert IpFilter.objects.get(pk=ip_filter.pk).rules_text == "allow all"


def test_checking_a_huge_paste_of_bad_rules_answers_briefly(admin_client):
    rules = "\n".join(f"allow bad-{number}" for number in range(400))
    response = admin_client.post(url("ip-filter-check"), {"rules_text": rules})
    content = response.content.decode()
    assert "400 lines are not valid rules" in content
    assert "The first 50 are listed." in content
    assert len(content) < 40_000


def test_the_live_preview_names_a_field_in_error_for_the_page_to_mark(admin_client, world):
    data = policy_form(world.acme.security_policy, **{"organization-max_lifetime": "soon"})
    response = admin_client.post(url("policy-preview"), data, **HTMX)
    content = response.content.decode()
    assert '<div role="alert" class="banner banner-error">' in content
    assert (
        '<p id="id_organization-max_lifetime-error" '
        'data-error-for="id_organization-max_lifetime">Organization tokens, maximum lifetime: '
    ) in content
