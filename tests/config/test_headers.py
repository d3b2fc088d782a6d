"""Every kind of page carries the security headers: console, sign-in, API, admin, errors."""

import pytest

from tests.factories import issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def pages(client, world, org_admin):
    token = issue(org_admin, name="Headers")
    client.force_login(world.alice)
    return [
        client.get("/o/acme/tokens/"),
        client.get(f"/o/acme/tokens/{token.token.pk}/"),
        client.get("/o/acme/tokens/", HTTP_HX_REQUEST="true"),
        client.get("/o/acme/ip-filters/"),
        client.get("/o/acme/audit/"),
        client.get("/o/globex/tokens/"),  # 404 page
        client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token.secret}"),
        client.get("/api/v1/me"),  # 401
        client.get("/admin/login/"),
    ]


def test_every_response_carries_the_security_headers(pages, client):
    client.logout()
    for response in [*pages, client.get("/login/")]:
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_script(pages):
    for response in pages:
        if response["Content-Type"].startswith("text/html"):
            body = response.content.decode()
            assert "<script>" not in body and " onclick=" not in body
