"""Every "may" question is answered in access/: nothing else reads a principal's permissions,
role or reach to decide. A rule written a second time elsewhere fails this test."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "orgs", "people", "policies", "tokens", "templates")
# Reading a principal's facts to decide something: its permission set, its role, its reach.
CHECK = re.compile(
    r"\.holds\(|has_permission|is_org_admin|administers_group|\.organization_wide"
    r"|manages_group|human_rights|principal\.permissions|\.org_role\s*[=!]="
    r"|administered_group_ids|member_group_ids"
)


def test_no_role_or_permission_check_lives_outside_the_access_layer():
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*")):
            if path.suffix not in (".py", ".html") or "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if CHECK.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "Ask access.rules instead:\n" + "\n".join(found)


def test_the_apps_never_import_the_composition_root():
    """config/ composes settings, URLs and the API; the apps are composed, never the reverse."""
    pattern = re.compile(r"^\s*(from config\b|import config\b)")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for app in ("access", "api", "orgs", "people", "policies", "tokens")
        for path in sorted((ROOT / app).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.match(line)
    ]
    assert found == []


def test_orgs_does_not_import_tokens_or_people():
    """orgs/ lies beneath tokens/ and people/: removing a person revokes tokens from above."""
    pattern = re.compile(r"^\s*(from|import) (tokens|people)\b")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "orgs").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.match(line)
    ]
    assert found == []
