"""Development error pages (DEBUG) show styled and working under the Content-Security-Policy."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def refusals(page) -> list[str]:
    messages: list[str] = []
    page.on(
        "console",
        lambda message: messages.append(message.text) if "Content Security" in message.text else 0,
    )
    return messages


def test_the_development_404_page_is_styled(page, settings):
    settings.DEBUG = True
    refused = refusals(page)
    page.goto("/no-such-page/")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(238, 238, 238)"
    assert refused == []


def test_the_development_500_page_is_styled_and_its_buttons_work(page, settings):
    settings.DEBUG = True
    settings.ROOT_URLCONF = "tests.browser.broken_urls"
    refused = refusals(page)
    page.goto("/broken/")
    summary = page.locator("#summary")
    expect(summary).to_contain_text("a bug, on purpose")
    assert summary.evaluate("element => getComputedStyle(element).backgroundColor") == (
        "rgb(255, 255, 204)"
    )
    page.get_by_role("button", name="Switch to copy-and-paste view").click()
    expect(page.get_by_role("button", name="Switch back to interactive view")).to_be_visible()
    expect(page.locator("#pastebinTraceback")).to_be_visible()
    assert refused == []
