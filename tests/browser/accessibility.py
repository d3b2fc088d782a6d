"""Accessibility checks for the browser suite: axe-core's WCAG 2.0/2.1 A and AA rules with a
readable report, ARIA references that name nothing, a walk of the keyboard focus, and a
recorder of what live regions announce.

axe-core comes bundled in ``axe-playwright-python``; it and the other scripts run through
``page.evaluate``, which the page's Content-Security-Policy does not govern.
"""

from __future__ import annotations

import re
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import FloatRect, Page, expect

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = {"critical", "serious"}
_AXE = Axe()


def violations(page: Page) -> list[dict[str, Any]]:
    """The critical and serious WCAG 2.1 AA violations axe finds on the page as it is now."""
    results = _AXE.run(
        page,
        options={
            "runOnly": {"type": "tag", "values": WCAG_TAGS},
            "resultTypes": ["violations"],
        },
    )
    return [
        violation
        for violation in results.response["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]


# Every id an aria-describedby or aria-labelledby names must be in the page, and a description
# must have text, except a live region or a [data-announce] result, empty until there is one.
_BROKEN_REFERENCES = """() => {
  const broken = [];
  for (const attribute of ["aria-describedby", "aria-labelledby"]) {
    for (const element of document.querySelectorAll(`[${attribute}]`)) {
      for (const id of element.getAttribute(attribute).split(/\\s+/).filter(Boolean)) {
        const target = document.getElementById(id);
        const live = target
          && target.matches("[aria-live], [role=status], [role=alert], output, [data-announce]");
        if (!target) broken.push(`${element.id || element.tagName} ${attribute} #${id}: missing`);
        else if (!live && !target.textContent.trim()) broken.push(`${attribute} #${id}: empty`);
      }
    }
  }
  return broken;
}"""


def broken_references(page: Page) -> list[str]:
    """aria-describedby/-labelledby ids that name nothing, or a description with no text."""
    return page.evaluate(_BROKEN_REFERENCES)


def describe(found: list[dict[str, Any]]) -> str:
    """One line per failing element: rule, impact, CSS target and, for contrast, the figures."""
    lines = []
    for violation in found:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node["target"])
            lines.append(f"  {target}{_contrast(node)}")
            if violation["id"] != "color-contrast":
                lines.append(f"    {node['failureSummary'].splitlines()[-1].strip()}")
    return "\n".join(lines)


def _contrast(node: dict[str, Any]) -> str:
    for check in node.get("any", []):
        data = check.get("data") or {}
        if isinstance(data, dict) and "contrastRatio" in data:
            return (
                f"  {data['contrastRatio']}:1 (needs {data['expectedContrastRatio']}),"
                f" {data['fgColor']} on {data['bgColor']}, {data['fontSize']}"
                f" {data['fontWeight']}"
            )
    return ""


# Keyboard focus ---------------------------------------------------------------------------------

_FROM_THE_TOP = """() => {
  const start = document.querySelector("dialog[open] article") || document.body;
  start.setAttribute("tabindex", "-1");
  start.focus();
  start.removeAttribute("tabindex");
  window.__kwVisited = new WeakSet();
}"""

# The element Tab just reached (kept as window.__kwFocused), or null once it comes round again.
_FOCUSED = """() => {
  const element = document.activeElement;
  if (!element || element === document.body || window.__kwVisited.has(element)) return null;
  window.__kwVisited.add(element);
  window.__kwFocused = element;
  const box = element.getBoundingClientRect();
  const name = (element.getAttribute("aria-label") || element.labels?.[0]?.textContent
    || element.textContent || element.value || element.name || "").replace(/\\s+/g, " ").trim();
  const path = element.id ? `#${element.id}` : element.tagName.toLowerCase()
    + (element.type ? `[type=${element.type}]` : "")
    + (element.name ? `[name=${element.name}]` : "");
  return {
    label: `${path} "${name.slice(0, 40)}"`,
    focusVisible: element.matches(":focus-visible"),
    x: box.x, y: box.y, width: box.width, height: box.height,
    viewportWidth: window.innerWidth, viewportHeight: window.innerHeight,
  };
}"""


def focus_walk(page: Page, limit: int = 150) -> list[str]:
    """Tab once round the page (or its open dialog) and return the controls whose focus
    changes nothing on screen: each is photographed focused, then blurred, and compared."""
    page.emulate_media(reduced_motion="reduce")  # Pico then draws focus rings without a transition
    page.evaluate(_FROM_THE_TOP)
    unmarked: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED)
        if focused is None:  # back where the walk began: every control seen
            return unmarked
        margin = 6  # room for a ring drawn outside the element
        left = max(focused["x"] - margin, 0)
        top = max(focused["y"] - margin, 0)
        right = min(focused["x"] + focused["width"] + margin, focused["viewportWidth"])
        bottom = min(focused["y"] + focused["height"] + margin, focused["viewportHeight"])
        if right <= left or bottom <= top:
            unmarked.append(f"{focused['label']} (outside the viewport)")
            continue
        if not focused["focusVisible"]:
            unmarked.append(f"{focused['label']} (not :focus-visible)")
        clip: FloatRect = {"x": left, "y": top, "width": right - left, "height": bottom - top}
        with_focus = page.screenshot(clip=clip)
        page.evaluate("window.__kwFocused.blur()")
        without_focus = page.screenshot(clip=clip)
        # Focused again from script right after a key press, it is still :focus-visible, and
        # the next Tab goes on from it.
        page.evaluate("window.__kwFocused.focus()")
        if with_focus == without_focus:
            unmarked.append(focused["label"])
    raise AssertionError(f"more than {limit} focusable elements; raise the limit")


# Live regions -----------------------------------------------------------------------------------

# What a screen reader would read out: text added to a live region that was already in the page
# (a region inserted along with its text is not announced), and, while a modal dialog is open,
# only inside it (the page behind leaves the accessibility tree). Each announcement becomes a
# line "polite: text" of <html data-announced>, for Playwright's expect to wait on.
_LISTEN = """() => {
  const LIVE = '[aria-live]:not([aria-live="off"]), [role=status], [role=alert], [role=log], '
    + 'output';
  const known = new WeakSet(document.querySelectorAll(LIVE));
  const politeness = (region) => region.getAttribute("aria-live")
    || (region.getAttribute("role") === "alert" ? "assertive" : "polite");
  const log = document.documentElement.dataset;
  log.announced = "";
  new MutationObserver((records) => {
    const dialog = document.querySelector("dialog[open]");
    for (const record of records) {
      const node = record.type === "characterData" ? record.target.parentElement : record.target;
      const region = node && node.closest && node.closest(LIVE);
      if (!region || !known.has(region) || (dialog && !dialog.contains(region))) continue;
      const added = record.type === "characterData"
        ? record.target.textContent
        : [...record.addedNodes].map((added) => added.textContent).join(" ");
      const text = added.replace(/\\s+/g, " ").trim();
      if (text) log.announced += `${politeness(region)}: ${text}\\n`;
    }
    document.querySelectorAll(LIVE).forEach((region) => known.add(region));
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def listen_for_announcements(page: Page) -> None:
    """Record from now on what live regions announce (again after each full page load)."""
    page.evaluate(_LISTEN)


def expect_announced(page: Page, text: str) -> None:
    """Wait until a polite live region has read out a line that contains ``text``."""
    line = re.compile(rf"(^|\n)polite: [^\n]*{re.escape(text)}")
    expect(page.locator("html")).to_have_attribute("data-announced", line)
