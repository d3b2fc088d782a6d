"""Issue 13 in the console: the Inactive list, descriptions, sorting, row actions, the detail
summary's expiry and the banner of tokens expiring soon."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from orgs.models import AuditEvent
from tests.factories import HTMX, issue
from tokens.models import ApiToken
from tokens.services import revoke_token, treat_pasted_as_leaked
from tokens.templatetags.token_format import relative_text

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def names_in_order(content: str) -> list[str]:
    return re.findall(r'<tr id="token-\d+">\s*<td><a href="[^"]+">([^<]+)</a>', content)


# Inactive -------------------------------------------------------------------------------------


def test_the_inactive_list_shows_revoked_leaked_and_long_expired_tokens_with_why(
    as_alice, org_admin
):
    with time_machine.travel(timezone.now() - timedelta(days=10), tick=False):
        issue(org_admin, name="Expired long ago", expires_in=timedelta(days=2))
        revoked = issue(org_admin, name="Rotated", expires_in=timedelta(days=60))
        revoke_token(actor=org_admin, token=revoked.token, reason="Replaced by a new one")
    leaked = issue(org_admin, name="Pasted", expires_in=timedelta(days=60))
    treat_pasted_as_leaked(actor=org_admin, secrets=[leaked.secret])
    issue(org_admin, name="Working", expires_in=timedelta(days=60))
    content = as_alice.get("/o/acme/tokens/inactive/").content.decode()
    assert set(names_in_order(content)) == {"Expired long ago", "Rotated", "Pasted"}
    assert "Revoked 10 days ago" in content and "by alice" in content
    assert "“Replaced by a new one”" in content
    assert "by leak report: “Leaked: pasted into a form" in content  # one leak path (issue 14)
    assert "Expired 8 days ago" in content
    assert 'aria-current="page">Inactive<' in content


def test_the_main_list_keeps_active_tokens_and_those_expired_for_five_minutes(as_alice, org_admin):
    with time_machine.travel(NOW, tick=False):
        issue(org_admin, name="Just expired", expires_in=timedelta(minutes=1))
        issue(org_admin, name="Expired an hour ago", expires_in=timedelta(minutes=1))
        revoked = issue(org_admin, name="Revoked", expires_in=timedelta(days=60))
        revoke_token(actor=org_admin, token=revoked.token)
    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):
        ApiToken.objects.filter(name="Expired an hour ago").update(
            expires_at=NOW - timedelta(hours=1)
        )
        content = as_alice.get("/o/acme/tokens/").content.decode()
    assert names_in_order(content) == ["Just expired"]


def test_an_empty_main_list_points_to_the_inactive_one(as_alice, org_admin):
    token = issue(org_admin, name="Only one").token
    revoke_token(actor=org_admin, token=token)
    content = as_alice.get("/o/acme/tokens/").content.decode()
    assert "No active tokens" in content
    assert '<a href="/o/acme/tokens/inactive/">Inactive</a>' in content


def test_a_filtered_inactive_list_shows_only_leaked_tokens(as_alice, org_admin):
    leaked = issue(org_admin, name="Pasted")
    treat_pasted_as_leaked(actor=org_admin, secrets=[leaked.secret])
    other = issue(org_admin, name="Rotated")
    revoke_token(actor=org_admin, token=other.token)
    content = as_alice.get("/o/acme/tokens/inactive/?status=leaked", **HTMX).content.decode()
    assert names_in_order(content) == ["Pasted"]


def test_a_person_s_inactive_list_holds_only_their_own_tokens(as_carol, member, org_admin):
    mine = issue(member, scope="personal", role="member", name="Old laptop")
    revoke_token(actor=member, token=mine.token)
    theirs = issue(org_admin, scope="personal", role="member", name="Alice's")
    revoke_token(actor=org_admin, token=theirs.token)
    content = as_carol.get("/o/acme/me/tokens/inactive/").content.decode()
    assert names_in_order(content) == ["Old laptop"]


def test_a_group_s_inactive_list_is_for_its_admins(as_bob, world, group_admin):
    token = issue(group_admin, scope="group", group=world.platform, name="Old CI", role="member")
    revoke_token(actor=group_admin, token=token.token)
    content = as_bob.get(f"/o/acme/groups/{world.platform.slug}/inactive/").content.decode()
    assert names_in_order(content) == ["Old CI"]


# Description ----------------------------------------------------------------------------------


def test_a_token_is_created_with_a_description(as_alice):
    response = as_alice.post(
        "/o/acme/tokens/new/",
        {
            "name": "CI deploy",
            "description": "Deploys main.\nOwner: platform",
            "role": "member",
            "expiry": "30d",
        },
        **HTMX,
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="CI deploy")
    assert token.description == "Deploys main.\nOwner: platform"


def test_a_token_shaped_description_is_refused_beside_the_field(as_alice, org_admin):
    victim = issue(org_admin, name="Victim")
    response = as_alice.post(
        "/o/acme/tokens/new/",
        {"name": "Paste", "description": victim.secret, "role": "member", "expiry": "30d"},
        **HTMX,
    )
    content = response.content.decode()
    assert 'id="description-error"' in content and "cannot contain an API token" in content
    assert not ApiToken.objects.filter(name="Paste").exists()


def test_the_detail_shows_the_description_with_its_lines(as_alice, org_admin):
    token = issue(org_admin, name="CI", description="First line\n<b>second</b>").token
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert "First line<br>&lt;b&gt;second&lt;/b&gt;" in content


def test_name_and_description_are_edited_together_with_the_version(as_alice, org_admin):
    token = issue(org_admin, name="CI", description="old").token
    response = as_alice.post(
        f"/o/acme/tokens/{token.pk}/edit/",
        {"version": token.version, "name": "CI deploy", "description": "new"},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert (token.name, token.description) == ("CI deploy", "new")
    assert set(
        AuditEvent.objects.filter(object_id=str(token.pk)).values_list("action", flat=True)
    ) >= {"token.renamed", "token.described"}


def test_editing_with_a_stale_version_changes_nothing_and_says_so(as_alice, org_admin):
    token = issue(org_admin, name="CI", description="old").token
    response = as_alice.post(
        f"/o/acme/tokens/{token.pk}/edit/",
        {"version": token.version + 1, "name": "CI deploy", "description": "new"},
        **HTMX,
    )
    assert "This token was changed since you loaded it" in response.content.decode()
    token.refresh_from_db()
    assert (token.name, token.description) == ("CI", "old")


def test_the_filter_finds_tokens_by_their_description(as_alice, org_admin):
    issue(org_admin, name="Alpha", description="Nightly billing backup")
    issue(org_admin, name="Beta", description="Deploys")
    content = as_alice.get("/o/acme/tokens/?q=BILLING", **HTMX).content.decode()
    assert names_in_order(content) == ["Alpha"]


# Sorting -----------------------------------------------------------------------------------


@pytest.fixture
def three(org_admin):
    with time_machine.travel(NOW - timedelta(days=3), tick=False):
        a = issue(org_admin, name="beta", expires_in=timedelta(days=30)).token
    with time_machine.travel(NOW - timedelta(days=2), tick=False):
        b = issue(org_admin, name="Alpha", expires_at=None).token
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        c = issue(org_admin, name="gamma", expires_in=timedelta(days=5)).token
    ApiToken.objects.filter(pk=a.pk).update(last_used_at=NOW - timedelta(hours=1))
    ApiToken.objects.filter(pk=c.pk).update(last_used_at=NOW - timedelta(hours=5))
    return a, b, c


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["Alpha", "beta", "gamma"]),  # by name, whatever the case
        ("name", ["Alpha", "beta", "gamma"]),
        ("-name", ["gamma", "beta", "Alpha"]),
        ("-created", ["gamma", "Alpha", "beta"]),
        ("created", ["beta", "Alpha", "gamma"]),
        ("expires", ["gamma", "beta", "Alpha"]),  # no expiry last
        ("-expires", ["beta", "gamma", "Alpha"]),
        ("-last_used", ["beta", "gamma", "Alpha"]),  # never used last
        ("last_used", ["gamma", "beta", "Alpha"]),
    ],
)
def test_the_list_sorts_by_the_column_in_the_url(as_alice, three, sort, expected):
    with time_machine.travel(NOW, tick=False):
        content = as_alice.get(f"/o/acme/tokens/?sort={sort}", **HTMX).content.decode()
    assert names_in_order(content) == expected


def test_sortable_headers_say_their_state_and_link_to_the_other_direction(as_alice, three):
    with time_machine.travel(NOW, tick=False):
        content = as_alice.get("/o/acme/tokens/?q=a&sort=-created").content.decode()
    assert re.search(
        r'<th scope="col" aria-sort="descending"><a href="\?q=a&amp;sort=created"', content
    )
    assert re.search(r'<th scope="col" aria-sort="none"><a href="\?q=a&amp;sort=name"', content)
    assert re.search(
        r'<th scope="col" aria-sort="none"><a href="\?q=a&amp;sort=-last_used"', content
    )
    # The filter form keeps the sort when the filter changes.
    assert '<input type="hidden" name="sort" value="-created" form="token-filters">' in content


def test_an_unknown_sort_falls_back_to_the_name(as_alice, three):
    with time_machine.travel(NOW, tick=False):
        response = as_alice.get("/o/acme/tokens/?sort=secret_digest", **HTMX)
    assert response.status_code == 200
    assert names_in_order(response.content.decode()) == ["Alpha", "beta", "gamma"]


# Row actions -------------------------------------------------------------------------------


def row_actions(content: str, token: ApiToken) -> set[str]:
    found = re.search(rf'<tr id="token-{token.pk}">(.*?)</tr>', content, re.S)
    assert found is not None, f"no row for {token.name}"
    return set(re.findall(rf'aria-label="(\w+) {re.escape(token.name)}"', found.group(1)))


def test_an_active_token_s_row_offers_revoke_regenerate_and_delete(as_alice, org_admin):
    token = issue(org_admin, name="CI", role="member").token
    content = as_alice.get("/o/acme/tokens/").content.decode()
    assert row_actions(content, token) == {"Revoke", "Regenerate", "Delete"}
    assert f"/o/acme/tokens/{token.pk}/revoke/?version={token.version}" in content


def test_a_revoked_token_s_row_offers_restore_and_delete(as_alice, org_admin):
    token = issue(org_admin, name="CI", role="member").token
    revoke_token(actor=org_admin, token=token)
    content = as_alice.get("/o/acme/tokens/inactive/").content.decode()
    assert row_actions(content, token) == {"Restore", "Delete"}


def test_an_expired_token_s_row_offers_no_regeneration(as_alice, org_admin):
    with time_machine.travel(NOW - timedelta(days=3), tick=False):
        token = issue(org_admin, name="Old", role="member", expires_in=timedelta(days=1)).token
    content = as_alice.get("/o/acme/tokens/inactive/").content.decode()
    assert row_actions(content, token) == {"Revoke", "Delete"}


def test_rows_offer_only_what_the_access_layer_allows(as_carol, member, org_admin):
    """A personal token an admin revoked is not its owner's to restore: they may delete it."""
    own = issue(member, scope="personal", role="member", name="Revoked by me")
    revoke_token(actor=member, token=own.token)
    stopped = issue(member, scope="personal", role="member", name="Stopped by admin")
    revoke_token(actor=org_admin, token=stopped.token, reason="Offboarding check")
    content = as_carol.get("/o/acme/me/tokens/inactive/").content.decode()
    assert row_actions(content, own.token) == {"Restore", "Delete"}
    assert row_actions(content, stopped.token) == {"Delete"}


def test_a_group_admin_s_rows_offer_the_actions_on_the_group_s_tokens(as_bob, world, group_admin):
    token = issue(group_admin, scope="group", group=world.platform, name="Bob CI", role="member")
    content = as_bob.get(f"/o/acme/groups/{world.platform.slug}/").content.decode()
    assert row_actions(content, token.token) == {"Revoke", "Regenerate", "Delete"}


def test_a_row_action_opens_the_same_dialog_as_the_detail_page(as_alice, org_admin):
    token = issue(org_admin, name="CI", role="member").token
    dialog = as_alice.get(
        f"/o/acme/tokens/{token.pk}/revoke/?version={token.version}", **HTMX
    ).content.decode()
    assert "<dialog" in dialog and "Revoke token" in dialog


# Detail summary and relative times ------------------------------------------------------


def test_the_summary_starts_with_the_expiry_as_a_duration_and_a_date(as_alice, org_admin):
    token = issue(org_admin, name="CI", expires_in=timedelta(days=3)).token
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    summary = content[content.index('id="summary-title"') :]
    first_term = re.search(r"<dt>([^<]+)</dt>", summary).group(1)
    assert first_term == "Expires"
    assert "<strong>3 days</strong> after creation: in 3 days · <time" in summary


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=3) - timedelta(seconds=5), "in 3 days"),
        (timedelta(days=2, hours=13), "in 3 days"),
        (timedelta(days=2, hours=11), "in 2 days"),
        (timedelta(hours=23, minutes=59), "in 1 day"),
        (timedelta(hours=5), "in 5 hours"),
        (timedelta(minutes=59, seconds=30), "in 1 hour"),
        (timedelta(minutes=3), "in 3 min"),
        (timedelta(seconds=20), "in less than a minute"),
        (-timedelta(minutes=2, seconds=50), "3 min ago"),
        (-timedelta(seconds=10), "just now"),
    ],
)
def test_relative_times_round_to_the_nearest_unit(delta, text):
    assert relative_text(NOW + delta, NOW) == text


# Banner ------------------------------------------------------------------------------------


def test_the_banner_lists_the_viewer_s_tokens_expiring_within_7_days(as_carol, member, org_admin):
    soon = issue(
        member, scope="personal", role="member", name="Laptop", expires_in=timedelta(days=2)
    )
    issue(member, scope="personal", role="member", name="Later", expires_in=timedelta(days=20))
    issue(org_admin, name="Org soon", expires_in=timedelta(days=1))
    issue(
        org_admin, scope="personal", role="member", name="Alice soon", expires_in=timedelta(days=1)
    )
    content = as_carol.get("/o/acme/me/tokens/").content.decode()
    banner = content[
        content.index("expiring-banner") : content.index(
            "</section>", content.index("expiring-banner")
        )
    ]
    assert f'href="/o/acme/tokens/{soon.token.pk}/">Laptop</a>' in banner
    assert "Later" not in banner and "Org soon" not in banner and "Alice soon" not in banner


def test_admins_also_see_their_scope_s_tokens_but_not_others_personal_ones(
    as_alice, org_admin, member, world
):
    issue(org_admin, name="Org soon", expires_in=timedelta(days=1))
    issue(
        org_admin,
        scope="group",
        group=world.platform,
        name="Group soon",
        expires_in=timedelta(days=6),
    )
    issue(member, scope="personal", role="member", name="Carol soon", expires_in=timedelta(days=1))
    content = as_alice.get("/o/acme/groups/").content.decode()
    assert "expiring-banner" in content
    banner = content[
        content.index("expiring-banner") : content.index(
            "</section>", content.index("expiring-banner")
        )
    ]
    assert "Org soon" in banner and "Group soon" in banner and "Carol soon" not in banner


def test_no_banner_when_nothing_expires_soon(as_alice, org_admin):
    issue(org_admin, name="Far", expires_in=timedelta(days=30))
    assert "expiring-banner" not in as_alice.get("/o/acme/tokens/").content.decode()
