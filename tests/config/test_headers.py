"""Every kind of page carries the security headers: console, sign-in, API, admin, errors."""

import base64
import hashlib
import sys

import pytest
from django.views.debug import technical_500_response

from config.middleware import SecurityHeadersMiddleware
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


def test_the_development_404_page_may_use_exactly_its_own_inline_style(client, settings):
    settings.DEBUG = True
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    csp = response["Content-Security-Policy"]
    style = response.content.split(b"<style>")[1].split(b"</style>")[0]
    digest = base64.b64encode(hashlib.sha256(style).digest()).decode()
    assert f"style-src 'self' 'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp


def test_the_development_500_page_may_run_its_own_script_and_handlers(rf, settings):
    settings.DEBUG = True
    request = rf.get("/broken/")
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        page = technical_500_response(request, *sys.exc_info())
    response = SecurityHeadersMiddleware(lambda request: page)(request)
    csp = response["Content-Security-Policy"]
    handler = b"return switchPastebinFriendly(this);"
    digest = base64.b64encode(hashlib.sha256(handler).digest()).decode()
    assert "'unsafe-hashes'" in csp and f"'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp


def test_production_error_pages_keep_the_strict_policy(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Security-Policy"] == settings.KEYWARD_CONTENT_SECURITY_POLICY
    assert b'<link rel="stylesheet" href="/static/keyward.css">' in response.content


def test_admin_pages_name_the_favicon_and_favicon_ico_leads_to_it(client):
    page = client.get("/admin/login/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
