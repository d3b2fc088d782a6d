"""A phone (390 x 844): no console page scrolls sideways, and every control of the create
dialog can be reached.

Every page of the accessibility table (tests/browser/test_accessibility.py, PAGES) is checked,
so a page added there is checked here too. Wide tables scroll inside their own container.
"""

from __future__ import annotations

import pytest

from tests.browser.test_accessibility import PAGES, create_dialog, open_dialog

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        viewport=PHONE,
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
        timezone_id="UTC",
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def overflowing(page) -> list[str]:
    """What sticks out past the right edge of the viewport, for the failure message."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const out = [];
          for (const element of document.querySelectorAll("body *")) {
            const box = element.getBoundingClientRect();
            if (box.width && box.right > width + 1) {
              let inside = element.parentElement, clipped = false;
              while (inside && inside !== document.body) {
                const style = getComputedStyle(inside);
                if (/(auto|scroll|hidden|clip)/.test(style.overflowX)) { clipped = true; break; }
                inside = inside.parentElement;
              }
              const name = element.tagName.toLowerCase() + (element.id ? "#" + element.id : "");
              const classes = [...element.classList].join(".");
              if (!clipped) out.push(`${name}.${classes} right=${Math.round(box.right)}`);
            }
          }
          return out.slice(0, 8);
        }"""
    )


@pytest.mark.parametrize("console_page", PAGES, ids=[entry.name for entry in PAGES])
def test_no_page_scrolls_sideways_on_a_phone(world, phone, log_in, console_page):
    if console_page.user:
        log_in(phone, getattr(world, console_page.user))
    console_page.reach(phone, world)
    scroll_width = phone.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"], (
        f"{console_page.name} is {scroll_width}px wide: {overflowing(phone)}"
    )


def test_every_control_of_the_create_dialog_is_reachable_on_a_phone(world, phone, log_in):
    log_in(phone, world.alice)
    create_dialog(phone, world)
    dialog = phone.locator("dialog[open]")
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    controls = dialog.locator(
        "input:not([type=hidden]):not([disabled]), select, textarea, button, a[href]"
    )
    assert controls.count() > 20
    for index in range(controls.count()):
        control = controls.nth(index)
        if not control.is_visible():
            continue
        control.scroll_into_view_if_needed()
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control.evaluate(
            "element => element.outerHTML.slice(0, 120)"
        )
        assert box["y"] >= 0 and box["y"] + min(box["height"], 40) <= PHONE["height"]
        # Nothing covers it: a tap at its centre lands on it (or its label).
        hit = control.evaluate(
            """element => {
              const box = element.getBoundingClientRect();
              const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
              return !!hit && (hit === element || element.contains(hit) || hit.contains(element)
                || (element.labels && [...element.labels].some((label) => label.contains(hit))));
            }"""
        )
        assert hit, control.evaluate("element => element.outerHTML.slice(0, 120)")
    # The last control, Create token, can be pressed.
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Phone token")
    dialog.get_by_role("button", name="Create token").click()
    phone.locator("#revealed-token").wait_for()


def test_the_reveal_fits_a_phone(world, phone, log_in):
    log_in(phone, world.alice)
    phone.goto("/o/acme/tokens/")
    open_dialog(phone, "Create token")
    dialog = phone.locator("dialog[open]")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Phone token")
    dialog.get_by_role("button", name="Create token").click()
    for name in ("Show", "Copy", "Done, I copied it"):
        button = dialog.get_by_role("button", name=name)
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], name
