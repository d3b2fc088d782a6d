"""Accessibility checks for the browser suite: axe-core's WCAG 2.0/2.1 A and AA rules with a
readable report, and ARIA references that name nothing.

axe-core comes bundled in ``axe-playwright-python``; it and the other scripts run through
``page.evaluate``, which the page's Content-Security-Policy does not govern.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

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
