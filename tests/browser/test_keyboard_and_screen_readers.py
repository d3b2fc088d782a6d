"""What axe cannot see: focus that shows on every control, a skip link, status changes read out
by a polite live region, and focus that lands somewhere sensible after each HTMX swap."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from policies.services import create_ip_filter
from tests.browser.accessibility import expect_announced, focus_walk, listen_for_announcements
from tests.browser.conftest import new_page
from tests.browser.test_accessibility import PAGES
from tests.factories import issue

pytestmark = pytest.mark.django_db(transaction=True)

# Pages whose controls between them cover every kind the console has: top bar, sidebar,
# filters, table links, buttons and button-links, dialogs with radios, checkboxes, chips,
# selects, text areas, the read-only token field, the policy form and the audit filters. The
# dark theme draws its rings in other colours: the pages with the most kinds of control again.
FOCUS_PAGES = [
    *[
        ("light", name)
        for name in (
            "sign-in",
            "organization tokens",
            "create dialog custom",
            "reveal",
            "token detail",
            "revoke dialog",
            "ip filter detail",
            "ip filter form",
            "security policy",
            "audit log",
            "404",
        )
    ],
    *[("dark", name) for name in ("organization tokens", "create dialog custom", "reveal")],
]


@pytest.mark.parametrize(("theme", "name"), FOCUS_PAGES, ids=[f"{t}-{n}" for t, n in FOCUS_PAGES])
def test_every_control_shows_when_it_has_keyboard_focus(
    world, browser, live_server, log_in, theme, name
):
    page = new_page(browser, live_server.url, color_scheme=theme)
    console_page = next(entry for entry in PAGES if entry.name == name)
    if console_page.user:
        log_in(page, getattr(world, console_page.user))
    console_page.reach(page, world)
    try:
        assert focus_walk(page) == []
    finally:
        page.context.close()


def test_the_first_tab_reaches_a_skip_link_to_the_main_content(world, page, log_in):
    issue(world.principal(world.alice), name="CI deploy")
    log_in(page, world.alice)
    page.goto("/o/acme/tokens/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    # The next Tab goes on from the main content, past the top bar and the sidebar.
    page.keyboard.press("Tab")
    expect(page.locator("main#content :focus")).to_have_count(1)


def test_revoking_and_restoring_are_announced_and_focus_goes_to_the_message(world, page, log_in):
    token = issue(world.principal(world.alice), name="Flaky", role="member").token
    log_in(page, world.alice)
    page.goto(f"/o/acme/tokens/{token.pk}/")
    listen_for_announcements(page)

    page.get_by_role("button", name="Revoke").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_label("Reason (optional)")).to_be_focused()
    dialog.get_by_role("button", name="Revoke token").click()
    expect_announced(page, "Flaky is revoked: requests with it now fail.")
    message = page.locator("#messages .banner", has_text="Flaky is revoked")
    expect(message).to_be_focused()
    # The page behind was refreshed without taking focus away from the message.
    expect(page.locator("#token-detail .banner-error")).to_contain_text("Revoked")
    expect(message).to_be_focused()

    page.get_by_role("button", name="Restore").click()
    expect(page.locator("dialog[open]").get_by_role("button", name="Cancel")).to_be_focused()
    page.locator("dialog[open]").get_by_role("button", name="Restore token").click()
    expect_announced(page, "Flaky is restored and works again.")
    expect(page.locator("#messages .banner", has_text="is restored")).to_be_focused()


@pytest.mark.usefixtures("permission_edits_allowed")
def test_saving_permissions_announces_the_preview_then_the_save(world, page, log_in):
    alice = world.principal(world.alice)
    token = issue(alice, name="Reader", role="custom", permissions=["api.api-tokens.read"]).token
    log_in(page, world.alice)
    page.goto(f"/o/acme/tokens/{token.pk}/")
    listen_for_announcements(page)
    page.get_by_role("button", name="Edit permissions").click()
    dialog = page.locator("dialog[open]")
    # No field asks for focus: the first one takes it, the current choice of its radio group.
    expect(
        dialog.get_by_role("radio", name="Custom Choose the access to each resource below.")
    ).to_be_focused()
    dialog.get_by_role("group", name="Usage").get_by_role("radio", name="Read", exact=True).check()
    expect_announced(page, "Added: api.usage.read")
    dialog.get_by_role("button", name="Save permissions").click()
    expect_announced(page, "Permissions of Reader saved.")
    expect(
        page.locator("#messages .banner", has_text="Permissions of Reader saved.")
    ).to_be_focused()


def test_creating_announces_the_copy_and_returns_focus_to_the_new_row(world, page, log_in):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    issue(world.principal(world.alice), name="Existing")
    log_in(page, world.alice)
    page.goto("/o/acme/tokens/")
    listen_for_announcements(page)
    page.get_by_role("button", name="Create token").click()
    dialog = page.locator("dialog[open]")
    name = dialog.get_by_role("textbox", name="Name", exact=True)
    expect(name).to_be_focused()

    # A refused form puts focus on the field to fix.
    dialog.get_by_role("button", name="Create token").click()
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_be_focused()

    name.fill("Usage exporter")
    dialog.get_by_role("button", name="Create token").click()
    copy = dialog.get_by_role("button", name="Copy")
    expect(copy).to_be_focused()
    page.keyboard.press("Enter")
    expect_announced(page, "Copied to the clipboard.")

    dialog.get_by_role("button", name="Done, I copied it").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(page.get_by_role("link", name="Usage exporter")).to_be_focused()


def test_regenerating_from_the_detail_returns_focus_to_the_token(world, page, log_in):
    token = issue(world.principal(world.alice), name="Rolling", role="member").token
    log_in(page, world.alice)
    page.goto(f"/o/acme/tokens/{token.pk}/")
    page.get_by_role("button", name="Regenerate").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("radio").first).to_be_focused()
    dialog.get_by_role("button", name="Regenerate token").click()
    expect(dialog.get_by_role("button", name="Copy")).to_be_focused()
    # The page behind was refreshed while the token was shown: the opener is gone.
    page.keyboard.press("Escape")
    expect(page.locator("dialog")).to_have_count(0)
    expect(page.get_by_role("heading", name=re.compile("^Rolling"), level=1)).to_be_focused()


def test_the_filter_tester_result_is_announced_and_focus_stays_in_the_field(world, page, log_in):
    corporate = create_ip_filter(
        actor=world.principal(world.alice),
        organization=world.acme,
        name="Corporate",
        rules_text="deny 10.6.6.6\nallow 10.0.0.0/8",
    )
    log_in(page, world.alice)
    page.goto(f"/o/acme/ip-filters/{corporate.pk}/")
    listen_for_announcements(page)
    address = page.get_by_label("Address to test")
    address.fill("10.6.6.6")
    expect_announced(page, "Denied — line 1 decided: deny 10.6.6.6")
    expect(address).to_be_focused()
    address.press("Enter")
    address.fill("10.1.2.3")
    expect_announced(page, "Allowed — line 2 decided: allow 10.0.0.0/8")
    expect(address).to_be_focused()


def test_filtering_the_list_announces_how_many_tokens_match(world, page, log_in):
    for name in ("CI deploy", "Metrics reader", "Metrics writer"):
        issue(world.principal(world.alice), name=name)
    log_in(page, world.alice)
    page.goto("/o/acme/tokens/")
    listen_for_announcements(page)
    page.get_by_label("Filter by name").fill("metr")
    expect_announced(page, "2 tokens")
    expect(page.get_by_label("Filter by name")).to_be_focused()
    page.get_by_label("Filter by name").fill("nothing like it")
    expect_announced(page, "No token matches “nothing like it”.")


def test_paging_keeps_focus_in_the_list(world, page, log_in):
    alice = world.principal(world.alice)
    for number in range(51):
        issue(alice, name=f"Job {number:02}", role="member")
    log_in(page, world.alice)
    page.goto("/o/acme/tokens/")
    page.get_by_role("link", name="Next").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.locator("#token-results")).to_contain_text("51–51 of 51 tokens")
    expect(page.locator("#token-results")).to_be_focused()


def test_a_saved_policy_page_starts_on_its_message(world, page, log_in):
    log_in(page, world.alice)
    page.goto("/o/acme/policy/")
    page.get_by_role("group", name="Organization tokens").get_by_label("Maximum lifetime").fill(
        "90d"
    )
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Apply these changes").click()
    message = page.locator("#messages[role=status][aria-live=polite] .banner")
    expect(message).to_contain_text("Security policy saved.")
    expect(message).to_be_focused()
