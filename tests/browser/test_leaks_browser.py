"""Leaked tokens in Chromium: a person reports one from their menu, an admin sees it marked
Leaked with where it was seen, and creates its replacement through the usual create flow."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import issue
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)

URL = "https://github.com/octo/app/blob/abc123/.env"


def test_a_reported_token_is_marked_leaked_and_replaced(world, page, sign_in):
    leaked = issue(
        world.principal(world.alice),
        name="CI deploy",
        role="custom",
        permissions=["api.api-tokens.read"],
    )
    sign_in("carol")
    page.locator("details.user-menu summary").click()
    page.get_by_role("link", name="Report a leaked token").click()
    page.get_by_label("Tokens").fill(leaked.secret)
    page.get_by_label("Where did you find it?").fill(URL)
    page.get_by_role("button", name="Report").click()
    expect(page.get_by_text("Received 1 token.")).to_be_visible()
    expect(page.get_by_label("Tokens")).to_have_value("")

    page.locator("details.user-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    sign_in("alice")
    page.goto("/o/acme/tokens/inactive/")  # revoked tokens are listed as inactive
    row = page.get_by_role("row", name=re.compile("CI deploy"))
    expect(row.get_by_text("Leaked", exact=True)).to_be_visible()
    expect(row.get_by_role("link", name=URL)).to_be_visible()
    row.get_by_role("link", name="CI deploy").click()
    expect(page.get_by_text("It can never be restored")).to_be_visible()
    expect(page.get_by_role("button", name="Restore")).to_have_count(0)
    page.get_by_role("button", name="Create a replacement").click()
    expect(page.get_by_label("Name")).to_have_value("CI deploy (replacement)")
    page.get_by_role("button", name="Create token").click()
    revealed = page.locator("#revealed-token")
    expect(revealed).to_be_visible()
    secret = revealed.input_value()
    assert secret.startswith("kwo_") and secret != leaked.secret
    replacement = ApiToken.objects.get(name="CI deploy (replacement)")
    assert replacement.permissions == ["api.api-tokens.read"]
    assert ApiToken.objects.get(pk=leaked.token.pk).status == "revoked"
