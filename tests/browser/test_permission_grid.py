"""The permission grid and the reveal, as a person uses them: by the names they read."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_accessibility import open_dialog, wait_for_htmx
from tests.factories import allow_permission_edits, issue
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOM = "Custom Choose the access to each resource below."


def row(dialog, resource):
    return dialog.get_by_role("group", name=resource, exact=True)


def level(dialog, resource, name):
    return row(dialog, resource).get_by_role("radio", name=name, exact=True)


def test_a_role_fills_the_grid_and_a_row_changed_makes_it_custom(world, page, log_in):
    log_in(page, world.alice)
    page.goto("/o/acme/tokens/")
    open_dialog(page, "Create token")
    dialog = page.locator("dialog[open]")
    # The member role is chosen: its reads are filled in, the rest is "No access".
    expect(level(dialog, "API tokens", "Read")).to_be_checked()
    expect(level(dialog, "Audit events", "No access")).to_be_checked()
    expect(row(dialog, "API tokens")).to_contain_text("api.api-tokens.read")

    dialog.get_by_role("radio", name="Admin Every permission", exact=False).check()
    expect(level(dialog, "API tokens", "Read, write and delete")).to_be_checked()
    expect(level(dialog, "Audit events", "Read")).to_be_checked()
    expect(row(dialog, "API tokens")).to_contain_text(
        "api.api-tokens.read api.api-tokens.write api.api-tokens.delete"
    )

    level(dialog, "Webhooks", "No access").check()
    expect(dialog.get_by_role("radio", name=CUSTOM)).to_be_checked()
    expect(row(dialog, "Webhooks")).to_contain_text("No permission")

    dialog.get_by_role("textbox", name="Name", exact=True).fill("Almost admin")
    dialog.get_by_role("button", name="Create token").click()
    page.locator("#revealed-token").wait_for()
    token = ApiToken.objects.get(name="Almost admin")
    assert token.role == "custom"
    assert not any(name.startswith("api.webhooks.") for name in token.permissions)
    assert "api.api-tokens.delete" in token.permissions


def test_a_member_sees_levels_they_cannot_grant_disabled(world, page, log_in):
    log_in(page, world.carol)
    page.goto("/o/acme/me/tokens/")
    open_dialog(page, "Create token")
    dialog = page.locator("dialog[open]")
    expect(level(dialog, "Audit events", "Read")).to_be_disabled()
    expect(level(dialog, "API tokens", "Read, write and delete")).to_be_enabled()
    expect(row(dialog, "Audit events")).to_contain_text("You cannot grant what you do not hold.")


def test_editing_shows_the_current_grant_and_previews_the_change(world, page, log_in):
    allow_permission_edits(world.acme)
    alice = world.principal(world.alice)
    token = issue(alice, name="Reader", role="custom", permissions=["api.groups.read"]).token
    log_in(page, world.alice)
    page.goto(f"/o/acme/tokens/{token.pk}/")
    open_dialog(page, "Edit permissions")
    dialog = page.locator("dialog[open]")
    expect(level(dialog, "Groups", "Read")).to_be_checked()
    level(dialog, "Groups", "Read and write").check()
    wait_for_htmx(page)
    expect(dialog.locator("#permission-changes")).to_contain_text("Added: api.groups.write")


def test_changing_a_row_of_a_role_token_previews_it_as_custom(world, page, log_in):
    allow_permission_edits(world.acme)
    token = issue(world.principal(world.alice), name="Member role", role="member").token
    log_in(page, world.alice)
    page.goto(f"/o/acme/tokens/{token.pk}/")
    open_dialog(page, "Edit permissions")
    dialog = page.locator("dialog[open]")
    level(dialog, "Usage", "No access").check()
    expect(dialog.get_by_role("radio", name=CUSTOM)).to_be_checked()
    wait_for_htmx(page)
    expect(dialog.locator("#permission-changes")).to_contain_text("Removed: api.usage.read")
    dialog.get_by_role("radio", name="Admin Every permission", exact=False).check()
    wait_for_htmx(page)
    expect(level(dialog, "Usage", "Read")).to_be_checked()
    expect(dialog.locator("#permission-changes")).to_contain_text("Added:")


def test_the_new_secret_is_masked_until_show_and_copies_either_way(world, page, log_in):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, world.alice)
    page.goto("/o/acme/tokens/")
    open_dialog(page, "Create token")
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Masked")
    dialog.get_by_role("button", name="Create token").click()
    secret_field = dialog.locator("#revealed-token")
    secret_field.wait_for()
    expect(dialog.get_by_text("This is the only time Keyward shows this token.")).to_be_visible()
    expect(secret_field).to_have_attribute("type", "password")
    secret = secret_field.input_value()
    assert secret.startswith("kwo_")

    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret

    dialog.get_by_role("button", name="Show").click()
    expect(secret_field).to_have_attribute("type", "text")
    dialog.get_by_role("button", name="Hide").click()
    expect(secret_field).to_have_attribute("type", "password")
    expect(dialog.get_by_role("button", name="Show")).to_be_visible()
