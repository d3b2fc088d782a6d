"""The console in Chromium: create, copy, use, regenerate, edit, revoke, restore, delete."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from policies.models import IpFilter
from tests.browser.conftest import screenshot
from tests.factories import issue
from tokens.models import ApiToken, TokenUsage
from tokens.services import revoke_token

pytestmark = pytest.mark.django_db(transaction=True)


def call_me(page, secret):
    """GET /api/v1/me with the token, as a client would."""
    return page.request.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})


def access(dialog, resource, level):
    """Choose a level in the permission grid's row of one resource."""
    row = dialog.get_by_role("group", name=resource, exact=True)
    row.get_by_role("radio", name=level, exact=True).check()


def revealed_secret(page):
    field = page.locator("dialog #revealed-token")
    expect(field).to_be_visible()
    return field.input_value()


def test_an_admin_creates_a_custom_token_copies_it_once_and_uses_it(world, page, sign_in):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    org_admin = world.principal(world.alice)
    issue(org_admin, name="CI deploy", role="admin", expires_in=timedelta(days=90))
    issue(org_admin, name="Metrics reader", role="member", expires_at=None)
    auditor = issue(
        org_admin, name="Token auditor", role="custom", permissions=["api.audit-events.read"]
    ).token
    revoke_token(actor=org_admin, token=auditor, reason="Replaced")
    used = issue(org_admin, name="Nightly backup", role="member", expires_in=timedelta(days=12))
    ApiToken.objects.filter(pk=used.token.pk).update(
        last_used_at=timezone.now() - timedelta(minutes=3), last_used_address="203.0.113.7"
    )
    sign_in("alice")
    expect(page).to_have_url(re.compile(r"/o/acme/tokens/$"))
    screenshot(page, "tokens-list")
    page.evaluate("window.keywardMarker = 'same page'")

    page.get_by_role("button", name="Create token").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("textbox", name="Name", exact=True)).to_be_focused()
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Usage exporter")
    # The member role filled the grid in; three rows back to "No access" make it custom.
    for resource in ("Groups", "IP filters", "Security policies"):
        access(dialog, resource, "No access")
    expect(
        dialog.get_by_role("radio", name="Custom Choose the access to each resource below.")
    ).to_be_checked()
    dialog.locator("article").evaluate("article => article.scrollTo(0, 0)")
    screenshot(page, "create-dialog")
    dialog.get_by_role("button", name="Create token").click()

    secret = revealed_secret(page)
    assert secret.startswith("kwo_")
    expect(page.get_by_text("This is the only time Keyward shows this token.")).to_be_visible()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    screenshot(page, "reveal")

    page.get_by_role("button", name="Done, I copied it").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(page.get_by_role("link", name="Usage exporter")).to_be_visible()
    assert page.evaluate("window.keywardMarker") == "same page"  # no full reload
    assert secret not in page.content()

    page.reload()
    assert secret not in page.content()
    page.go_back()
    assert secret not in page.content()
    page.goto("/o/acme/tokens/")
    page.get_by_role("link", name="Usage exporter").click()
    expect(page.get_by_role("heading", name="Usage exporter")).to_be_visible()
    assert secret not in page.content()

    response = call_me(page, secret)
    assert response.status == 200
    assert response.json()["permissions"] == ["api.api-tokens.read", "api.usage.read"]


def test_the_detail_page(world, page, sign_in):
    org_admin = world.principal(world.alice)
    office = IpFilter.objects.create(
        organization=world.acme, name="Office network", rules_text="allow 10.0.0.0/8\ndeny all"
    )
    token = issue(
        org_admin,
        name="CI deploy",
        role="custom",
        permissions=["api.api-tokens.read", "api.api-tokens.write", "api.usage.read"],
        expires_in=timedelta(days=90),
        ip_filter=office,
        allowed_addresses=("10.20.0.0/16",),
    ).token
    today = timezone.now().date()
    for offset, count in enumerate([12, 30, 8, 0, 45, 60, 22, 0, 0, 14, 33, 51, 40, 9, 27]):
        TokenUsage.objects.create(token=token, day=today - timedelta(days=offset), count=count)
    ApiToken.objects.filter(pk=token.pk).update(
        last_used_at=timezone.now() - timedelta(minutes=2), last_used_address="10.20.3.4"
    )
    sign_in("alice")
    page.goto(f"/o/acme/tokens/{token.pk}/")
    expect(page.get_by_role("heading", name="Summary")).to_be_visible()
    expect(page.get_by_role("heading", name="Requests, last 30 days")).to_be_visible()
    screenshot(page, "token-detail")


def test_regenerating_with_and_without_grace(world, page, sign_in):
    org_admin = world.principal(world.alice)
    issued = issue(org_admin, name="Rolling", role="member")
    first = issued.secret
    sign_in("alice")
    page.goto(f"/o/acme/tokens/{issued.token.pk}/")

    page.get_by_role("button", name="Regenerate").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("1 day").check()
    dialog.get_by_role("button", name="Regenerate token").click()
    second = revealed_secret(page)
    expect(dialog.get_by_text("The previous token keeps working for 1 day")).to_be_visible()
    assert second != first
    assert call_me(page, first).status == 200
    assert call_me(page, second).status == 200
    page.get_by_role("button", name="Done, I copied it").click()
    expect(page.get_by_text(re.compile(r"The previous token .* still works"))).to_be_visible()

    page.get_by_role("button", name="Regenerate").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("None: the current token stops working now").check()
    dialog.get_by_role("button", name="Regenerate token").click()
    third = revealed_secret(page)
    assert call_me(page, third).status == 200
    assert call_me(page, second).status == 401
    assert call_me(page, first).status == 401


@pytest.mark.usefixtures("permission_edits_allowed")
def test_editing_permissions_previews_the_change_and_saves_it(world, page, sign_in):
    org_admin = world.principal(world.alice)
    issued = issue(org_admin, name="Reader", role="custom", permissions=["api.api-tokens.read"])
    sign_in("alice")
    page.goto(f"/o/acme/tokens/{issued.token.pk}/")
    page.get_by_role("button", name="Edit permissions").click()
    dialog = page.locator("dialog[open]")
    access(dialog, "Usage", "Read")
    expect(dialog.locator("#permission-changes")).to_contain_text("Added: api.usage.read")
    access(dialog, "API tokens", "No access")
    expect(dialog.locator("#permission-changes")).to_contain_text("Removed: api.api-tokens.read")
    dialog.get_by_role("button", name="Save permissions").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(page.get_by_text("Permissions of Reader saved.")).to_be_visible()
    assert call_me(page, issued.secret).json()["permissions"] == ["api.usage.read"]


def test_revoking_and_restoring(world, page, sign_in):
    org_admin = world.principal(world.alice)
    issued = issue(org_admin, name="Flaky", role="member")
    sign_in("alice")
    page.goto(f"/o/acme/tokens/{issued.token.pk}/")
    page.get_by_role("button", name="Revoke").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Reason (optional)").fill("found in a public log")
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("Flaky is revoked: requests with it now fail.")).to_be_visible()
    expect(page.locator("#token-detail .banner-error")).to_contain_text("found in a public log")
    assert call_me(page, issued.secret).status == 401

    page.get_by_role("button", name="Restore").click()
    page.locator("dialog[open]").get_by_role("button", name="Restore token").click()
    expect(page.get_by_text("Flaky is restored and works again.")).to_be_visible()
    assert call_me(page, issued.secret).status == 200


def test_a_stale_page_is_told_and_nothing_is_overwritten(world, page, sign_in):
    from tokens.services import rename_token

    org_admin = world.principal(world.alice)
    issued = issue(org_admin, name="Shared", role="member")
    sign_in("alice")
    page.goto(f"/o/acme/tokens/{issued.token.pk}/")
    rename_token(actor=org_admin, token=issued.token, name="Shared by two")
    page.get_by_role("button", name="Revoke").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_text("This token was changed since you loaded it")).to_be_visible()
    dialog.get_by_role("button", name="Revoke token").click()
    expect(dialog.get_by_text("Nothing was saved.")).to_be_visible()
    assert ApiToken.objects.get(pk=issued.token.pk).status == "active"


def test_deleting_asks_for_confirmation_naming_the_token(world, page, sign_in):
    org_admin = world.principal(world.alice)
    issued = issue(org_admin, name="Legacy sync", role="member")
    sign_in("alice")
    page.goto(f"/o/acme/tokens/{issued.token.pk}/")
    page.get_by_role("button", name="Delete").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("Delete Legacy sync")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("dialog")).to_have_count(0)
    assert ApiToken.objects.filter(pk=issued.token.pk).exists()

    page.get_by_role("button", name="Delete").click()
    page.locator("dialog[open]").get_by_role("button", name="Delete Legacy sync").click()
    expect(page).to_have_url(re.compile(r"/o/acme/tokens/$"))
    expect(page.get_by_text("Legacy sync is deleted: requests with it now fail.")).to_be_visible()
    expect(page.get_by_role("link", name="Legacy sync")).to_have_count(0)
    assert call_me(page, issued.secret).status == 401


def test_the_list_filters_as_you_type_and_the_url_follows(world, page, sign_in):
    org_admin = world.principal(world.alice)
    for name in ("CI deploy", "Metrics reader", "Metrics writer", "Backup"):
        issue(org_admin, name=name, role="member")
    sign_in("alice")
    page.get_by_label("Filter by name").press_sequentially("metr", delay=40)
    expect(page.get_by_role("link", name="CI deploy")).to_have_count(0)
    expect(page.get_by_role("link", name="Metrics reader")).to_be_visible()
    expect(page.get_by_role("link", name="Metrics writer")).to_be_visible()
    expect(page).to_have_url(re.compile(r"\?q=metr"))
    page.reload()
    expect(page.get_by_label("Filter by name")).to_have_value("metr")
    expect(page.get_by_role("link", name="Backup")).to_have_count(0)
    page.get_by_label("Status").select_option("expired")
    # The list says so (a screen reader hears it through #messages' hidden echo as well).
    expect(page.locator("#token-results").get_by_text("No token matches “metr”")).to_be_visible()


def test_an_expired_session_sends_an_htmx_request_to_the_sign_in_page(world, page, sign_in):
    issue(world.principal(world.alice), name="CI deploy", role="member")
    sign_in("alice")
    page.context.clear_cookies()
    page.get_by_label("Filter by name").fill("ci")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    expect(page.get_by_role("heading", name="Sign in to Keyward")).to_be_visible()
    assert page.locator("#token-results").count() == 0


def test_a_group_admin_manages_group_tokens_but_not_organization_tokens(world, page, sign_in):
    org_admin = world.principal(world.alice)
    issue(org_admin, name="Org wide", role="member")
    issue(org_admin, name="Platform deployer", scope="group", group=world.platform)
    sign_in("bob")
    expect(page).to_have_url(re.compile(r"/o/acme/me/tokens/$"))
    expect(page.get_by_role("link", name="Organization tokens")).to_have_count(0)
    page.goto("/o/acme/tokens/")
    expect(page.get_by_role("heading", name="You may not open this page")).to_be_visible()
    page.get_by_role("link", name="Groups").click()
    page.get_by_role("link", name="Platform").click()
    expect(page.get_by_role("link", name="Platform deployer")).to_be_visible()
    expect(page.get_by_text("Org wide")).to_have_count(0)
    page.get_by_role("button", name="Create token").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Platform reader")
    dialog.get_by_role("radio", name="Member Read-only").check()
    dialog.get_by_role("button", name="Create token").click()
    secret = revealed_secret(page)
    assert secret.startswith("kwg_")
    page.keyboard.press("Escape")
    expect(page.get_by_role("link", name="Platform reader")).to_be_visible()


def test_a_member_only_sees_their_personal_tokens(world, page, sign_in):
    org_admin = world.principal(world.alice)
    org_token = issue(org_admin, name="Org wide", role="member").token
    issue(org_admin, name="Alice laptop", scope="personal", role="member")
    sign_in("carol")
    expect(page.get_by_role("heading", name="My API tokens")).to_be_visible()
    expect(page.get_by_text("No personal tokens yet")).to_be_visible()
    page.get_by_role("button", name="Create token").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Carol laptop")
    expect(dialog.get_by_label("30 days")).to_be_checked()
    expect(dialog.get_by_label("No expiry")).to_have_count(0)
    dialog.get_by_role("button", name="Create token").click()
    secret = revealed_secret(page)
    assert secret.startswith("kwu_")
    dialog.get_by_role("button", name="Done, I copied it").click()
    expect(page.get_by_role("link", name="Carol laptop")).to_be_visible()
    expect(page.get_by_text("Alice laptop")).to_have_count(0)
    expect(page.get_by_text("Org wide")).to_have_count(0)
    page.goto(f"/o/acme/tokens/{org_token.pk}/")
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()


def test_times_show_in_the_viewers_zone_with_utc_on_hover(world, browser, live_server):
    from tests.factories import PASSWORD

    issue(world.principal(world.alice), name="CI deploy", expires_in=timedelta(days=30))
    context = browser.new_context(base_url=live_server.url, timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expiry = page.locator("#token-results time").first
    expect(expiry).to_contain_text("GMT+9")
    assert expiry.get_attribute("title").endswith(" UTC")
    context.close()
