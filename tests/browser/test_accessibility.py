"""axe-core on every console page, in the light and the dark theme: no critical or serious
WCAG 2.1 AA violation (colour contrast included).

Each page is one row of PAGES: a name, who looks at it, and how to get there from a signed-in
browser. A new page is one more row, for instance::

    ConsolePage("webhooks", "alice", lambda page, world: page.goto("/o/acme/webhooks/")),

The reach function may build what the page needs with tests.factories, and must leave the page
in the state to check (a dialog open, a preview shown).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from policies.services import create_ip_filter
from tests.browser.accessibility import broken_references, describe, violations
from tests.browser.conftest import new_page
from tests.factories import World, add_member, allow_permission_edits, issue
from tokens.models import ApiToken, TokenUsage
from tokens.services import regenerate_token, revoke_token

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class ConsolePage:
    name: str
    user: str | None  # who is signed in; None for pages seen signed out
    reach: Callable[..., None]  # (page, world) -> None


def wait_for_htmx(page) -> None:
    """Wait until no htmx request is in flight and every swap has settled."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


def open_dialog(page, button: str) -> None:
    page.get_by_role("button", name=button, exact=True).first.click()
    page.locator("dialog[open]").wait_for()
    wait_for_htmx(page)


# Data the pages show ----------------------------------------------------------------------------


def tokens_of_every_status(world: World) -> None:
    """Active, expiring soon, revoked and just-expired organization tokens, with use."""
    alice = world.principal(world.alice)
    issue(alice, name="CI deploy", role="admin", expires_in=timedelta(days=90))
    issue(alice, name="Metrics reader", role="member", expires_at=None)
    issue(alice, name="Nightly backup", role="member", expires_in=timedelta(days=2))
    revoked = issue(alice, name="Old exporter", role="member").token
    revoke_token(actor=alice, token=revoked, reason="Replaced")
    expired = issue(alice, name="Short job", role="member", expires_in=timedelta(days=1)).token
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))


def detailed_token(world: World) -> ApiToken:
    """A token with an IP filter, usage, a regenerated secret in grace and recent events."""
    alice = world.principal(world.alice)
    office = create_ip_filter(
        actor=alice,
        organization=world.acme,
        name="Office",
        rules_text="allow 10.0.0.0/8\ndeny all",
    )
    token = issue(
        alice,
        name="CI deploy",
        role="custom",
        permissions=["api.api-tokens.read", "api.usage.read"],
        expires_in=timedelta(days=90),
        ip_filter=office,
        allowed_addresses=("10.20.0.0/16",),
    ).token
    token = regenerate_token(actor=alice, token=token, grace=timedelta(days=1)).token
    today = timezone.now().date()
    for offset, count in enumerate([12, 30, 0, 45, 9]):
        TokenUsage.objects.create(token=token, day=today - timedelta(days=offset), count=count)
    return token


def revoked_token(world: World) -> ApiToken:
    alice = world.principal(world.alice)
    token = issue(alice, name="Flaky", role="member").token
    return revoke_token(actor=alice, token=token, reason="Seen in a public log")


def corporate_filter(world: World):
    return create_ip_filter(
        actor=world.principal(world.alice),
        organization=world.acme,
        name="Corporate",
        rules_text="# corporate network\ndeny 10.6.6.6\nallow 10.0.0.0/8",
        description="Offices and VPN",
    )


# How to reach each page -------------------------------------------------------------------------


def sign_in_refused(page, world) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").wait_for()


def organizations(page, world) -> None:
    add_member(world.globex, world.alice)
    page.goto("/")


def organization_tokens(page, world) -> None:
    tokens_of_every_status(world)
    page.goto("/o/acme/tokens/")


def create_dialog(page, world) -> None:
    page.goto("/o/acme/tokens/")
    open_dialog(page, "Create token")


def create_dialog_custom(page, world) -> None:
    create_dialog(page, world)
    page.get_by_role("radio", name="Custom Choose the access to each resource below.").check()


def create_dialog_errors(page, world) -> None:
    create_dialog(page, world)
    page.locator("dialog[open]").get_by_role("button", name="Create token").click()
    page.locator("dialog[open] [aria-invalid=true]").first.wait_for()
    wait_for_htmx(page)


def personal_create_dialog_custom(page, world) -> None:
    """A member sees the permissions they do not hold, greyed out."""
    page.goto("/o/acme/me/tokens/")
    open_dialog(page, "Create token")
    page.get_by_role("radio", name="Custom Choose the access to each resource below.").check()


def reveal(page, world) -> None:
    create_dialog(page, world)
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Usage exporter")
    dialog.get_by_role("button", name="Create token").click()
    page.locator("#revealed-token").wait_for()
    wait_for_htmx(page)


def token_detail(page, world) -> None:
    page.goto(f"/o/acme/tokens/{detailed_token(world).pk}/")


def revoked_token_detail(page, world) -> None:
    page.goto(f"/o/acme/tokens/{revoked_token(world).pk}/")


def leaked_token(world: World) -> ApiToken:
    from tokens import leaks

    issued = issue(world.principal(world.alice), name="Leaked deploy", role="member")
    leaks.process_report(
        leaks.LeakReport(token=issued.secret, url="https://github.com/octo/app/blob/abc/.env"),
        reporter_address=None,
    )
    return ApiToken.objects.get(pk=issued.token.pk)


def leaked_token_detail(page, world) -> None:
    page.goto(f"/o/acme/tokens/{leaked_token(world).pk}/")


def replacement_form(page, world) -> None:
    page.goto(f"/o/acme/tokens/new/?replace={leaked_token(world).pk}")


def action_dialog(button: str, token_of: Callable[[World], ApiToken] = detailed_token):
    def reach(page, world) -> None:
        allow_permission_edits(world.acme)
        page.goto(f"/o/acme/tokens/{token_of(world).pk}/")
        open_dialog(page, button)

    return reach


def group_detail(page, world) -> None:
    issue(world.principal(world.bob), name="Platform deployer", scope="group", group=world.platform)
    page.goto("/o/acme/groups/platform/")


def my_tokens(page, world) -> None:
    issue(world.principal(world.carol), name="Carol laptop", scope="personal", role="member")
    page.goto("/o/acme/me/tokens/")


def ip_filters(page, world) -> None:
    corporate_filter(world)
    page.goto("/o/acme/ip-filters/")


def ip_filter_detail(page, world) -> None:
    page.goto(f"/o/acme/ip-filters/{corporate_filter(world).pk}/")
    page.get_by_label("Address to test").fill("10.6.6.6")
    page.get_by_role("button", name="Test").click()
    page.locator("#test-result .badge").wait_for()
    wait_for_htmx(page)


def ip_filter_form(page, world) -> None:
    page.goto("/o/acme/ip-filters/new/")
    page.get_by_label("Rules").fill("allow 198.51.100.0/24\npermit all")
    expect(page.locator("#rule-check")).to_contain_text("Line 2: starts with 'permit'")
    wait_for_htmx(page)


def ip_filter_delete(page, world) -> None:
    ip_filter = corporate_filter(world)
    issue(world.principal(world.alice), name="Office job", ip_filter=ip_filter)
    page.goto(f"/o/acme/ip-filters/{ip_filter.pk}/delete/")


def policy_preview(page, world) -> None:
    tokens_of_every_status(world)
    corporate_filter(world)
    page.goto("/o/acme/policy/")
    organization = page.get_by_role("group", name="Organization tokens")
    organization.get_by_label("Maximum lifetime").fill("30d")
    organization.get_by_label("Enforced IP filter").select_option(label="Corporate")
    page.locator("#impact table").first.wait_for()
    wait_for_htmx(page)


def audit_log(page, world) -> None:
    tokens_of_every_status(world)
    revoked_token(world)
    page.goto("/o/acme/audit/")


def password_change_errors(page, world) -> None:
    page.goto("/password/")
    page.get_by_label("Old password").fill("not the password")
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password confirmation").fill("other")
    page.get_by_role("button", name="Change password").click()
    page.locator("[aria-invalid=true]").first.wait_for()


def inactive_tokens(page, world) -> None:
    tokens_of_every_status(world)
    revoked_token(world)
    page.goto("/o/acme/tokens/inactive/")


def sorted_tokens(page, world) -> None:
    tokens_of_every_status(world)
    page.goto("/o/acme/tokens/?sort=-expires")


def described_token_detail(page, world) -> None:
    token = issue(
        world.principal(world.alice),
        name="Billing backup",
        description="Nightly dump of the billing database.\nAsk the data team before revoking.",
        expires_in=timedelta(days=3),
    ).token
    page.goto(f"/o/acme/tokens/{token.pk}/")


def row_action_dialog(page, world) -> None:
    tokens_of_every_status(world)
    page.goto("/o/acme/tokens/")
    page.get_by_role("button", name="Revoke CI deploy").click()
    page.locator("dialog[open]").wait_for()
    wait_for_htmx(page)


def expiring_banner(page, world) -> None:
    carol = world.principal(world.carol)
    issue(carol, name="Laptop", scope="personal", role="member", expires_in=timedelta(days=2))
    issue(carol, name="Phone", scope="personal", role="member", expires_in=timedelta(hours=20))
    page.goto("/o/acme/me/tokens/")


def reveal_shown(page, world) -> None:
    reveal(page, world)
    page.locator("dialog[open]").get_by_role("button", name="Show").click()


def create_dialog_admin_role(page, world) -> None:
    """The grid filled in by the admin role."""
    create_dialog(page, world)
    page.locator("dialog[open]").get_by_role(
        "radio", name="Admin Every permission valid for this kind of token", exact=False
    ).check()


def ip_filter_form_errors(page, world) -> None:
    page.goto("/o/acme/ip-filters/new/")
    page.get_by_label("Name").fill("VPN")
    page.get_by_label("Rules").fill("allow 10.0.0.0/8\npermit all")
    wait_for_htmx(page)
    page.get_by_role("button", name="Create IP filter").click()
    page.locator("[aria-invalid=true]").first.wait_for()


def security_policy_errors(page, world) -> None:
    page.goto("/o/acme/policy/")
    organization = page.get_by_role("group", name="Organization tokens")
    organization.get_by_label("Maximum lifetime").fill("soon")
    page.get_by_role("button", name="Preview impact").click()
    page.locator("#impact [data-error-for]").wait_for()
    wait_for_htmx(page)


def people_errors(page, world) -> None:
    page.goto("/o/acme/people/")
    page.get_by_role("button", name="Send invitation").click()
    page.locator("[aria-invalid=true]").first.wait_for()


def webhook_form_errors(page, world) -> None:
    page.goto("/o/acme/webhooks/new/")
    page.get_by_label("URL").fill("the SIEM")
    page.get_by_role("button", name="Create endpoint").click()
    page.locator("[aria-invalid=true]").first.wait_for()


def goto(path: str):
    return lambda page, world: page.goto(path)


PAGES = [
    ConsolePage("sign-in", None, goto("/login/")),
    ConsolePage("sign-in refused", None, sign_in_refused),
    ConsolePage("organizations", "alice", organizations),
    ConsolePage("organization tokens", "alice", organization_tokens),
    ConsolePage("organization tokens empty", "alice", goto("/o/acme/tokens/")),
    ConsolePage("inactive tokens", "alice", inactive_tokens),
    ConsolePage("inactive tokens empty", "alice", goto("/o/acme/tokens/inactive/")),
    ConsolePage("organization tokens sorted", "alice", sorted_tokens),
    ConsolePage("row action dialog", "alice", row_action_dialog),
    ConsolePage("token detail with description", "alice", described_token_detail),
    ConsolePage("expiring tokens banner", "carol", expiring_banner),
    ConsolePage("create dialog", "alice", create_dialog),
    ConsolePage("create dialog custom", "alice", create_dialog_custom),
    ConsolePage("create dialog errors", "alice", create_dialog_errors),
    ConsolePage("create dialog, admin role", "alice", create_dialog_admin_role),
    ConsolePage("reveal", "alice", reveal),
    ConsolePage("reveal, shown", "alice", reveal_shown),
    ConsolePage("token detail", "alice", token_detail),
    ConsolePage("revoked token detail", "alice", revoked_token_detail),
    ConsolePage("edit permissions dialog", "alice", action_dialog("Edit permissions")),
    ConsolePage("regenerate dialog", "alice", action_dialog("Regenerate")),
    ConsolePage("revoke dialog", "alice", action_dialog("Revoke")),
    ConsolePage("restore dialog", "alice", action_dialog("Restore", revoked_token)),
    ConsolePage("leaked token detail", "alice", leaked_token_detail),
    ConsolePage("replacement form", "alice", replacement_form),
    ConsolePage("report a leaked token", "carol", goto("/leaked-tokens/report/")),
    ConsolePage("delete dialog", "alice", action_dialog("Delete")),
    ConsolePage(
        "edit name and description dialog", "alice", action_dialog("Edit name and description")
    ),
    ConsolePage("change addresses dialog", "alice", action_dialog("Change addresses")),
    ConsolePage("groups", "alice", goto("/o/acme/groups/")),
    ConsolePage("group detail", "bob", group_detail),
    ConsolePage("my tokens", "carol", my_tokens),
    ConsolePage("personal create dialog", "carol", personal_create_dialog_custom),
    ConsolePage("ip filters", "alice", ip_filters),
    ConsolePage("ip filter detail", "alice", ip_filter_detail),
    ConsolePage("ip filter form", "alice", ip_filter_form),
    ConsolePage("ip filter form errors", "alice", ip_filter_form_errors),
    ConsolePage("ip filter delete", "alice", ip_filter_delete),
    ConsolePage("security policy", "alice", goto("/o/acme/policy/")),
    ConsolePage("security policy preview", "alice", policy_preview),
    ConsolePage("security policy errors", "alice", security_policy_errors),
    ConsolePage("security policy, read only", "carol", goto("/o/acme/policy/")),
    ConsolePage("people", "alice", goto("/o/acme/people/")),
    ConsolePage("people, invitation errors", "alice", people_errors),
    ConsolePage("webhooks", "alice", goto("/o/acme/webhooks/")),
    ConsolePage("webhook form errors", "alice", webhook_form_errors),
    ConsolePage("group detail, organization admin", "alice", group_detail),
    ConsolePage("audit log", "alice", audit_log),
    ConsolePage("audit exports", "alice", goto("/o/acme/audit/exports/")),
    ConsolePage("audit log, bad filters", "alice", goto("/o/acme/audit/?since=May&until=1")),
    ConsolePage("password change", "alice", password_change_errors),
    ConsolePage("403", "bob", goto("/o/acme/tokens/")),
    ConsolePage("404", "alice", goto("/o/acme/tokens/999999/")),
]


@pytest.fixture(params=["light", "dark"])
def themed_page(request, browser, live_server):
    page = new_page(browser, live_server.url, color_scheme=request.param)
    yield page
    page.context.close()


@pytest.mark.parametrize("console_page", PAGES, ids=[entry.name for entry in PAGES])
def test_meets_wcag_2_1_aa(world, themed_page, log_in, console_page):
    page = themed_page
    if console_page.user:
        log_in(page, getattr(world, console_page.user))
    console_page.reach(page, world)
    found = violations(page)
    if found:
        pytest.fail(f"{console_page.name}:\n{describe(found)}", pytrace=False)
    broken = broken_references(page)
    assert not broken, "\n".join(broken)
