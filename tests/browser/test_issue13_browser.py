"""Issue 13 in Chromium: the Inactive list, descriptions, sorting, row actions, the summary's
expiry and the banner of tokens expiring soon."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.factories import issue
from tokens.models import ApiToken
from tokens.services import revoke_token, treat_pasted_as_leaked

pytestmark = pytest.mark.django_db(transaction=True)


def call_me(page, secret):
    return page.request.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})


def rows(page):
    return page.get_by_role("table").get_by_role("row")


def test_revoked_and_leaked_tokens_move_to_inactive_where_one_is_restored(world, page, sign_in):
    alice = world.principal(world.alice)
    issue(alice, name="CI deploy", role="member", expires_in=timedelta(days=30))
    rotated = issue(alice, name="Old exporter", role="member")
    revoke_token(actor=alice, token=rotated.token, reason="Replaced by CI deploy")
    pasted = issue(alice, name="Pasted", role="member")
    treat_pasted_as_leaked(actor=alice, secrets=[pasted.secret])
    sign_in("alice")
    expect(page.get_by_role("link", name="CI deploy")).to_be_visible()
    expect(page.get_by_role("link", name="Old exporter")).to_have_count(0)

    page.get_by_role("navigation", name="Organization tokens").get_by_role(
        "link", name="Inactive"
    ).click()
    expect(page).to_have_url(re.compile(r"/o/acme/tokens/inactive/$"))
    old_row = rows(page).filter(has_text="Old exporter")
    expect(old_row).to_contain_text("Revoked")
    expect(old_row).to_contain_text("by alice")
    expect(old_row).to_contain_text("“Replaced by CI deploy”")
    expect(rows(page).filter(has_text="Pasted")).to_contain_text("by leak report: “Leaked:")
    expect(page.get_by_role("columnheader", name="Why inactive")).to_be_visible()

    page.get_by_role("button", name="Restore Old exporter").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("button", name="Restore token").click()
    expect(page.get_by_text("Old exporter is restored and works again.")).to_be_visible()
    expect(page.get_by_role("link", name="Old exporter")).to_have_count(0)
    assert call_me(page, rotated.secret).status == 200
    page.get_by_role("link", name="Active", exact=True).click()
    expect(page.get_by_role("link", name="Old exporter")).to_be_visible()


def test_a_row_revokes_its_token_through_the_detail_page_s_dialog(world, page, sign_in):
    alice = world.principal(world.alice)
    issued = issue(alice, name="Flaky", role="member")
    issue(alice, name="Steady", role="member")
    sign_in("alice")
    expect(page.get_by_role("button", name="Revoke Steady")).to_be_visible()
    page.get_by_role("button", name="Revoke Flaky").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("heading", name="Revoke token")).to_be_visible()
    dialog.get_by_label("Reason (optional)").fill("seen in a log")
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("Flaky is revoked: requests with it now fail.")).to_be_visible()
    expect(page.get_by_role("link", name="Flaky")).to_have_count(0)
    assert call_me(page, issued.secret).status == 401


def test_a_member_s_revoked_by_admin_token_offers_delete_but_no_restore(world, page, sign_in):
    carol = world.principal(world.carol)
    token = issue(carol, scope="personal", role="member", name="Laptop").token
    revoke_token(actor=world.principal(world.alice), token=token, reason="Offboarding check")
    sign_in("carol")
    page.goto("/o/acme/me/tokens/inactive/")
    expect(page.get_by_role("button", name="Delete Laptop")).to_be_visible()
    expect(page.get_by_role("button", name="Restore Laptop")).to_have_count(0)
    expect(page.get_by_role("button", name="Revoke Laptop")).to_have_count(0)


def test_a_description_is_written_at_creation_edited_with_the_name_and_found(world, page, sign_in):
    sign_in("alice")
    page.get_by_role("button", name="Create token").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Backup job")
    dialog.get_by_label("Description (optional)").fill("Nightly dump of the billing database")
    dialog.get_by_role("button", name="Create token").click()
    expect(page.locator("dialog #revealed-token")).to_be_visible()
    page.get_by_role("button", name="Done, I copied it").click()
    expect(page.get_by_role("row").filter(has_text="Backup job")).to_contain_text(
        "Nightly dump of the billing database"
    )

    page.get_by_label("Filter by name or description").fill("billing")
    expect(page).to_have_url(re.compile(r"\?q=billing"))
    page.get_by_role("link", name="Backup job").click()
    expect(page.get_by_role("heading", name="Backup job")).to_be_visible()
    expect(page.get_by_role("definition").filter(has_text="Nightly dump")).to_be_visible()

    page.get_by_role("button", name="Edit name and description").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("textbox", name="Name")).to_be_focused()
    dialog.get_by_role("textbox", name="Name").fill("Billing backup")
    dialog.get_by_label("Description (optional)").fill("Nightly dump.\nAsk the data team first.")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Billing backup is saved.")).to_be_visible()
    expect(page.get_by_role("heading", name="Billing backup")).to_be_visible()
    expect(page.get_by_text("Ask the data team first.")).to_be_visible()
    token = ApiToken.objects.get(name="Billing backup")
    assert token.description == "Nightly dump.\nAsk the data team first."


def test_column_headers_sort_the_list_and_the_url_keeps_the_choice(world, page, sign_in):
    alice = world.principal(world.alice)
    issue(alice, name="beta", role="member", expires_in=timedelta(days=30))
    issue(alice, name="Alpha", role="member", expires_at=None)
    issue(alice, name="gamma", role="member", expires_in=timedelta(days=5))
    sign_in("alice")
    names = page.locator("table.tokens tbody tr td:first-child a")
    expect(names).to_have_text(["Alpha", "beta", "gamma"])
    expect(page.get_by_role("columnheader", name="Name")).to_have_attribute(
        "aria-sort", "ascending"
    )

    page.get_by_role("columnheader", name="Expires").get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"sort=expires"))
    expect(names).to_have_text(["gamma", "beta", "Alpha"])
    expires = page.get_by_role("columnheader", name="Expires")
    expect(expires).to_have_attribute("aria-sort", "ascending")
    expect(page.get_by_role("columnheader", name="Name")).to_have_attribute("aria-sort", "none")

    expires.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"sort=-expires"))
    expect(names).to_have_text(["beta", "gamma", "Alpha"])
    expect(page.get_by_role("columnheader", name="Expires")).to_have_attribute(
        "aria-sort", "descending"
    )

    page.reload()
    expect(names).to_have_text(["beta", "gamma", "Alpha"])
    page.get_by_label("Filter by name or description").fill("a")
    expect(page).to_have_url(re.compile(r"sort=-expires"))
    expect(names).to_have_text(["beta", "gamma", "Alpha"])


def test_the_summary_starts_with_the_expiry_as_a_duration_and_a_date(world, page, sign_in):
    token = issue(world.principal(world.alice), name="Three days", expires_in=timedelta(days=3))
    sign_in("alice")
    page.goto(f"/o/acme/tokens/{token.token.pk}/")
    summary = page.get_by_role("region", name="Summary")
    expect(summary.get_by_role("term").first).to_have_text("Expires")
    expect(summary.get_by_role("definition").first).to_contain_text("3 days after creation")
    expect(summary.get_by_role("definition").first).to_contain_text("in 3 days")


def test_a_banner_lists_the_viewer_s_tokens_expiring_within_7_days(world, page, sign_in):
    carol = world.principal(world.carol)
    soon = issue(
        carol, scope="personal", role="member", name="Laptop", expires_in=timedelta(days=2)
    )
    issue(carol, scope="personal", role="member", name="Desktop", expires_in=timedelta(days=20))
    sign_in("carol")
    banner = page.get_by_role("region", name="A token expires within 7 days")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("in 2 days")
    expect(banner.get_by_role("link", name="Desktop")).to_have_count(0)
    banner.get_by_role("link", name="Laptop").click()
    expect(page).to_have_url(re.compile(rf"/o/acme/tokens/{soon.token.pk}/$"))
    expect(page.get_by_role("heading", name="Laptop")).to_be_visible()
