"""Every console form answers an error the same way: focus on the first field in error, which
is marked aria-invalid and names its message through aria-describedby."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.test_accessibility import open_dialog, wait_for_htmx
from tests.factories import allow_permission_edits, issue

pytestmark = pytest.mark.django_db(transaction=True)


def expect_focus_on_error(page, message: str) -> None:
    focused = page.locator(":focus")
    expect(focused).to_have_attribute("aria-invalid", "true")
    described = focused.get_attribute("aria-describedby") or ""
    text = page.evaluate(
        """ids => ids.split(/\\s+/).filter(Boolean)
             .map((id) => (document.getElementById(id) || {}).textContent || "").join(" ")""",
        described,
    )
    assert message in text, f"{focused.evaluate('e => e.outerHTML')} is described by {text!r}"


def test_create_dialog_focuses_the_expiry_date_over_the_name(world, page, log_in):
    log_in(page, world.alice)
    page.goto("/o/acme/tokens/")
    open_dialog(page, "Create token")
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Dated")
    dialog.get_by_role("radio", name="On a date").check()
    dialog.get_by_role("button", name="Create token").click()
    wait_for_htmx(page)
    expect(dialog.get_by_label("Expires on (end of the day, UTC)")).to_be_focused()
    expect_focus_on_error(page, "Pick the day the token expires.")


def test_create_dialog_with_a_taken_name_says_an_organization_token(world, page, log_in):
    issue(world.principal(world.alice), name="Deployer")
    log_in(page, world.alice)
    page.goto("/o/acme/tokens/")
    open_dialog(page, "Create token")
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("deployer")
    dialog.get_by_role("button", name="Create token").click()
    wait_for_htmx(page)
    expect_focus_on_error(page, "An organization token named 'deployer' already exists.")


def test_edit_permissions_focuses_the_grid_when_nothing_is_granted(world, page, log_in):
    allow_permission_edits(world.acme)
    alice = world.principal(world.alice)
    token = issue(alice, name="Reader", role="custom", permissions=["api.api-tokens.read"]).token
    log_in(page, world.alice)
    page.goto(f"/o/acme/tokens/{token.pk}/")
    open_dialog(page, "Edit permissions")
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("group", name="API tokens", exact=True).get_by_role(
        "radio", name="No access"
    ).check()
    wait_for_htmx(page)
    dialog.get_by_role("button", name="Save permissions").click()
    wait_for_htmx(page)
    expect_focus_on_error(page, "Choose at least one permission.")


def test_change_addresses_focuses_the_address_that_is_not_one(world, page, log_in):
    token = issue(world.principal(world.alice), name="Pinned").token
    log_in(page, world.alice)
    page.goto(f"/o/acme/tokens/{token.pk}/")
    open_dialog(page, "Change addresses")
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Allowed addresses").fill("10.0.0.0/8\nthe office")
    dialog.get_by_role("button", name="Save addresses").click()
    wait_for_htmx(page)
    expect(dialog.get_by_label("Allowed addresses")).to_be_focused()
    expect_focus_on_error(page, "the office")


def test_ip_filter_form_focuses_the_rules_and_numbers_each_bad_line_once(world, page, log_in):
    log_in(page, world.alice)
    page.goto("/o/acme/ip-filters/new/")
    page.get_by_label("Name").fill("VPN")
    page.get_by_label("Rules").fill("allow 10.0.0.0/8\npermit all")
    wait_for_htmx(page)
    page.get_by_role("button", name="Create IP filter").click()
    page.wait_for_load_state()
    expect(page.get_by_label("Rules")).to_be_focused()
    expect_focus_on_error(page, "Line 2: starts with 'permit'")
    expect(page.get_by_text("Line 2: Line 2")).to_have_count(0)


def test_security_policy_preview_marks_and_focuses_a_bad_lifetime(world, page, log_in):
    log_in(page, world.alice)
    page.goto("/o/acme/policy/")
    organization = page.get_by_role("group", name="Organization tokens")
    organization.get_by_label("Maximum lifetime").fill("soon")
    page.get_by_role("button", name="Preview impact").click()
    wait_for_htmx(page)
    expect(organization.get_by_label("Maximum lifetime")).to_be_focused()
    expect_focus_on_error(page, "Organization tokens, maximum lifetime:")


def test_webhook_form_focuses_an_address_that_is_not_one(world, page, log_in):
    log_in(page, world.alice)
    page.goto("/o/acme/webhooks/new/")
    page.get_by_label("URL").fill("the SIEM")
    page.get_by_role("checkbox", name="Every event").check()
    page.get_by_role("button", name="Create endpoint").click()
    page.wait_for_load_state()
    expect(page.get_by_label("URL")).to_be_focused()
    expect_focus_on_error(page, "A URL cannot contain spaces or control characters.")


def test_inviting_nobody_focuses_the_addressee(world, page, log_in):
    log_in(page, world.alice)
    page.goto("/o/acme/people/")
    page.get_by_role("button", name="Send invitation").click()
    page.wait_for_load_state()
    expect_focus_on_error(page, "")
    expect(page.locator(":focus")).to_have_attribute("id", "id_addressee")


def test_a_dialog_without_errors_marks_nothing_invalid(world, page, log_in):
    token = issue(world.principal(world.alice), name="Rolling", expires_in=timedelta(days=30))
    log_in(page, world.alice)
    page.goto(f"/o/acme/tokens/{token.token.pk}/")
    open_dialog(page, "Regenerate")
    expect(page.locator("dialog[open] [aria-invalid=true]")).to_have_count(0)
