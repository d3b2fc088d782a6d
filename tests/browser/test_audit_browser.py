"""The audit log in Chromium: filter, page older and newer by cursor with the URL following,
and the count of matches arriving on its own."""

import re

import pytest
from playwright.sync_api import expect

from orgs import audit
from orgs.principals import Principal

pytestmark = pytest.mark.django_db(transaction=True)


def test_paging_the_audit_log_by_cursor_keeps_the_filter_in_the_url(world, page, sign_in):
    for index in range(60):
        audit.record(
            actor=Principal.operator(label=f"op {index:02d}"),
            action="browser.event",
            organization=world.acme,
            object_type="thing",
        )
    sign_in("alice")
    page.goto("/o/acme/audit/")
    page.get_by_label("Action").select_option("browser.event")
    expect(page).to_have_url(re.compile(r"action=browser\.event"))
    expect(page.get_by_text("60 events match")).to_be_visible()
    expect(page.locator(".actor").first).to_have_text("op 59")
    page.get_by_role("link", name="Older events").click()
    expect(page).to_have_url(re.compile(r"action=browser\.event.*before=|before=.*action="))
    expect(page.locator(".actor").first).to_have_text("op 09")
    expect(page.locator(".actor")).to_have_count(10)
    page.go_back()
    expect(page.locator(".actor").first).to_have_text("op 59")
    page.go_forward()
    expect(page.locator(".actor").first).to_have_text("op 09")
    page.get_by_role("link", name="Newer events").click()
    expect(page.locator(".actor").first).to_have_text("op 59")
    expect(page.get_by_role("link", name="Newer events")).to_have_count(0)


def test_a_group_admin_reaches_the_groups_audit_log_from_the_navigation(world, page, log_in):
    log_in(page, world.bob)
    page.goto("/o/acme/groups/")
    page.get_by_role("navigation", name="Acme Corp").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    page.goto("/o/acme/groups/platform/")
    page.get_by_role("link", name="Audit log of Platform").click()
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/o/acme/audit/\?group={world.platform.pk}$"))
