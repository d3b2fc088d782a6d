"""Playwright for Python driving Debian's Chromium against pytest-django's live server.

Browser tests skip on a machine without /usr/bin/chromium, except where
KEYWARD_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.
"""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("KEYWARD_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
# Screenshots land in test-artifacts/ (git-ignored); KEYWARD_SCREENSHOTS=1 refreshes the
# README's copies in docs/screenshots.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("KEYWARD_SCREENSHOTS") == "1"
    else ROOT / "test-artifacts" / "screenshots"
)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("KEYWARD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and KEYWARD_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_page(browser, base_url: str, color_scheme: str = "light"):
    """A page in a fresh context; ``color_scheme="dark"`` emulates a dark-themed system."""
    context = browser.new_context(
        base_url=base_url,
        viewport={"width": 1280, "height": 900},
        timezone_id="UTC",
        color_scheme=color_scheme,
    )
    context.set_default_timeout(10_000)
    return context.new_page()


@pytest.fixture
def page(browser, live_server):
    page = new_page(browser, live_server.url)
    yield page
    page.context.close()


@pytest.fixture
def log_in(live_server):
    """Sign a person in without the form (a session cookie): ``log_in(page, world.alice)``."""
    from django.conf import settings
    from django.test import Client

    def log_in_as(page, user) -> None:
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        page.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
        )

    return log_in_as


@pytest.fixture
def sign_in(page):
    """Sign a person in through the real form: ``sign_in("alice")``."""
    from tests.factories import PASSWORD

    def sign_in_as(username: str, password: str = PASSWORD):
        page.goto("/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state("networkidle")
        return page

    return sign_in_as


def screenshot(page, name: str) -> None:
    """Keep a screenshot of a main page for the README (docs/screenshots/<name>.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)
