"""In Chromium: the IP filter tester and the security policy preview, then apply."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from policies.models import SecurityPolicy
from policies.services import create_ip_filter
from tests.browser.conftest import screenshot
from tests.factories import issue
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def corporate(world):
    alice = world.principal(world.alice)
    return create_ip_filter(
        actor=alice,
        organization=world.acme,
        name="Corporate",
        rules_text="# corporate network\ndeny 10.6.6.6\nallow 10.0.0.0/8",
    )


def test_the_tester_says_allowed_or_denied_and_which_line_decided(world, page, sign_in, corporate):
    sign_in("alice")
    page.goto(f"/o/acme/ip-filters/{corporate.pk}/")
    address = page.get_by_label("Address to test")
    result = page.locator("#test-result")

    address.fill("10.1.2.3")
    page.get_by_role("button", name="Test").click()
    expect(result).to_contain_text("Allowed")
    expect(result).to_contain_text("line 3 decided: allow 10.0.0.0/8")

    address.fill("10.6.6.6")
    page.get_by_role("button", name="Test").click()
    expect(result).to_contain_text("Denied")
    expect(result).to_contain_text("line 2 decided: deny 10.6.6.6")

    # Typing alone updates the answer (htmx), without leaving the page.
    address.fill("192.0.2.1")
    expect(result).to_contain_text("no rule matches")
    assert page.url.endswith(f"/o/acme/ip-filters/{corporate.pk}/")

    address.fill("not an address")
    expect(result).to_contain_text("is not an IPv4 or IPv6 address")
    screenshot(page, "ip-filter-tester")


def test_the_rule_editor_marks_a_bad_line_as_it_is_typed(world, page, sign_in):
    sign_in("alice")
    page.goto("/o/acme/ip-filters/new/")
    page.get_by_label("Name").fill("VPN")
    page.get_by_label("Rules").fill("allow 198.51.100.0/24\npermit all")
    check = page.locator("#rule-check")
    expect(check).to_contain_text("Line 2: starts with 'permit'")
    screenshot(page, "ip-filter-rule-editor")
    page.get_by_label("Rules").fill("allow 198.51.100.0/24\ndeny all")
    expect(check).to_contain_text("2 rules, all valid.")
    page.get_by_role("button", name="Create IP filter").click()
    expect(page.get_by_role("heading", name="VPN", level=1)).to_be_visible()


def test_an_admin_previews_90_day_tokens_in_10_slash_8_then_applies(
    world, page, sign_in, corporate
):
    alice = world.principal(world.alice)
    issue(alice, name="Legacy exporter", expires_at=None)
    issue(alice, name="Nightly backup", expires_in=timedelta(days=400))
    issue(alice, name="Short job", expires_in=timedelta(days=3))
    sign_in("alice")
    page.goto("/o/acme/policy/")

    organization = page.get_by_role("group", name="Organization tokens")
    organization.get_by_label("Maximum lifetime").fill("90d")
    organization.get_by_label("Require an expiry").check()
    organization.get_by_label("Enforced IP filter").select_option(label="Corporate")

    impact = page.locator("#impact")
    expect(impact).to_contain_text("2 tokens would have their expiry shortened")
    expect(impact).to_contain_text("3 tokens would get the enforced IP filter")
    expect(impact).to_contain_text("Legacy exporter")
    expect(impact).to_contain_text("Nightly backup")
    impact.scroll_into_view_if_needed()
    screenshot(page, "security-policy-preview")
    # Nothing has changed yet.
    assert ApiToken.objects.get(name="Legacy exporter").expires_at is None

    page.get_by_role("button", name="Apply these changes").click()
    expect(page.get_by_text("Security policy saved.")).to_be_visible()
    expect(
        page.get_by_role("group", name="Organization tokens").get_by_label("Maximum lifetime")
    ).to_have_value("90d")
    legacy = ApiToken.objects.select_related("ip_filter").get(name="Legacy exporter")
    assert legacy.expires_at is not None and legacy.ip_filter.name == "Corporate"
    policy = SecurityPolicy.objects.get(organization=world.acme)
    assert policy.organization_tokens.max_lifetime == timedelta(days=90)
