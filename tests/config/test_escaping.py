"""User-supplied strings are escaped in every page and neutralised in CSV exports."""

import csv
import io

import pytest

from orgs.principals import Principal
from people.services import create_group
from policies.services import create_ip_filter
from tests.factories import issue
from tokens.services import revoke_token

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://evil.example","x")'


def test_hostile_names_are_escaped_on_every_page(client, world, org_admin, member):
    hostile_filter = create_ip_filter(
        actor=org_admin,
        organization=world.acme,
        name=ATTRIBUTE,
        rules_text="allow all",
        description=SCRIPT,
    )
    group = create_group(
        actor=Principal.operator(organization=world.acme),
        organization=world.acme,
        slug="hostile",
        name=SCRIPT,
    )
    organization_token = issue(org_admin, name=SCRIPT, ip_filter=hostile_filter)
    issue(org_admin, name=ATTRIBUTE, scope="group", group=group)
    revoke_token(actor=org_admin, token=organization_token.token, reason=ATTRIBUTE)
    personal = issue(member, name=SCRIPT, scope="personal", role="member")
    client.force_login(world.alice)
    urls = [
        "/o/acme/tokens/",
        "/o/acme/tokens/?q=%3Cscript",
        f"/o/acme/tokens/{organization_token.token.pk}/",
        "/o/acme/groups/",
        "/o/acme/groups/hostile/",
        "/o/acme/ip-filters/",
        f"/o/acme/ip-filters/{hostile_filter.pk}/",
        "/o/acme/policy/",
        "/o/acme/audit/",
        f"/o/acme/tokens/{personal.token.pk}/",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert SCRIPT not in body, url
        assert ATTRIBUTE not in body, url
    client.force_login(world.carol)
    body = client.get("/o/acme/me/tokens/").content.decode()
    assert SCRIPT not in body and "&lt;script&gt;" in body


def test_csv_export_neutralises_formulas(client, world, org_admin):
    issue(org_admin, name=FORMULA)
    issue(org_admin, name="+cmd|' /C calc'!A0")
    client.force_login(world.alice)
    response = client.get("/o/acme/audit/export.csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@")]
    assert any(FORMULA in cell for cell in cells)
