from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.factories import HTMX, issue
from tokens.services import revoke_token

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def test_admins_see_each_token_with_what_matters(as_alice, org_admin):
    with time_machine.travel(NOW, tick=False):
        issued = issue(org_admin, name="CI deploy", role="admin", expires_in=timedelta(days=30))
        issue(
            org_admin,
            name="Reader",
            role="custom",
            permissions=["api.api-tokens.read", "api.usage.read"],
            expires_at=None,
        )
        content = as_alice.get("/o/acme/tokens/").content.decode()
    assert "CI deploy" in content
    assert issued.token.partial_token in content
    assert "in 30 days · " in content
    assert '<time datetime="2026-12-23T14:00:00Z" title="2026-12-23 14:00 UTC">' in content
    assert "2 permissions" in content and "Admin" in content
    assert "never" in content
    assert 'class="badge badge-active">Active<' in content
    assert "2 tokens" in content


def test_the_list_never_shows_a_secret(as_alice, org_admin):
    issued = issue(org_admin, name="CI deploy")
    assert issued.secret.encode() not in as_alice.get("/o/acme/tokens/").content


def test_last_use_shows_when_and_from_where(as_alice, org_admin):
    issued = issue(org_admin, name="Used")
    issued.token.last_used_at = timezone.now() - timedelta(minutes=3)
    issued.token.last_used_address = "203.0.113.7"
    issued.token.save()
    content = as_alice.get("/o/acme/tokens/").content.decode()
    assert "3 min ago</span> from" in content
    assert "203.0.113.7" in content


def test_typing_a_filter_returns_only_the_table_fragment(as_alice, org_admin):
    issue(org_admin, name="CI deploy")
    issue(org_admin, name="Metrics reader")
    response = as_alice.get("/o/acme/tokens/?q=metr", **HTMX)
    content = response.content.decode()
    assert "<html" not in content
    assert 'id="token-results"' in content
    assert "Metrics reader" in content and "CI deploy" not in content


def test_a_filter_in_the_url_works_as_a_plain_page(as_alice, org_admin):
    issue(org_admin, name="CI deploy")
    issue(org_admin, name="Metrics reader")
    content = as_alice.get("/o/acme/tokens/?q=deploy").content.decode()
    assert "<html" in content
    assert 'value="deploy"' in content
    assert "CI deploy" in content and "Metrics reader" not in content


def test_a_history_restore_gets_the_whole_page(as_alice, org_admin):
    response = as_alice.get("/o/acme/tokens/?q=x", HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)
    assert b"<html" in response.content


def test_revoked_tokens_leave_the_list_for_the_inactive_one(as_alice, org_admin):
    kept = issue(org_admin, name="Kept")
    revoked = issue(org_admin, name="Gone")
    revoke_token(actor=org_admin, token=revoked.token, reason="leaked")
    listed = as_alice.get("/o/acme/tokens/", **HTMX).content.decode()
    assert "Kept" in listed and "Gone" not in listed
    content = as_alice.get("/o/acme/tokens/inactive/?status=revoked", **HTMX).content.decode()
    assert "Gone" in content and kept.token.name not in content
    assert 'badge-revoked">Revoked<' in content


def test_an_unknown_status_is_ignored_rather_than_failing(as_alice, org_admin):
    issue(org_admin, name="Kept")
    response = as_alice.get("/o/acme/tokens/?status=bogus&page=zzz")
    assert response.status_code == 200
    assert b"Kept" in response.content


def test_expired_tokens_stay_listed_for_five_minutes_marked_expired(as_alice, org_admin):
    with time_machine.travel(NOW, tick=False):
        issue(org_admin, name="Short lived", expires_in=timedelta(minutes=10))
    with time_machine.travel(NOW + timedelta(minutes=14), tick=False):
        content = as_alice.get("/o/acme/tokens/").content.decode()
        assert "Short lived" in content
        assert 'badge-expired">Expired<' in content
        assert "expired 4 min ago" in content
        assert "Short lived" in as_alice.get("/o/acme/tokens/?status=expired").content.decode()
    with time_machine.travel(NOW + timedelta(minutes=16), tick=False):
        assert b"Short lived" not in as_alice.get("/o/acme/tokens/").content


def test_fifty_tokens_a_page_with_the_total(as_alice, org_admin):
    for number in range(51):
        issue(org_admin, name=f"token {number:02d}", role="member")
    first = as_alice.get("/o/acme/tokens/").content.decode()
    assert "1–50 of 51 tokens" in first
    assert "Page 1 of 2" in first
    assert "token 49" in first and "token 50" not in first
    second = as_alice.get("/o/acme/tokens/?page=2", **HTMX).content.decode()
    assert "51–51 of 51 tokens" in second
    assert "token 50" in second and "token 49" not in second


def test_pagination_links_keep_the_filter(as_alice, org_admin):
    for number in range(55):
        issue(org_admin, name=f"batch {number:02d}", role="member")
    content = as_alice.get("/o/acme/tokens/?q=batch").content.decode()
    assert 'href="?q=batch&amp;page=2"' in content


def test_an_empty_list_explains_tokens_and_offers_to_create_one(as_alice):
    content = as_alice.get("/o/acme/tokens/").content.decode()
    assert "No tokens yet" in content
    assert "lets a script, a CI job or another service call the Keyward API" in content
    assert "Create your first token" in content


def test_a_filter_without_matches_offers_to_clear_it(as_alice, org_admin):
    issue(org_admin, name="CI deploy")
    content = as_alice.get("/o/acme/tokens/?q=zzz", **HTMX).content.decode()
    assert "No token matches “zzz”" in content
    assert "Clear the filter" in content


def test_the_list_refreshes_itself_when_a_token_changes(as_alice, org_admin):
    issue(org_admin, name="CI deploy")
    content = as_alice.get("/o/acme/tokens/?q=ci").content.decode()
    assert 'hx-get="/o/acme/tokens/?q=ci" hx-trigger="token-changed from:body"' in content


def test_group_tokens_and_personal_tokens_are_not_in_the_organization_list(
    as_alice, org_admin, world
):
    issue(org_admin, name="Group one", scope="group", group=world.platform)
    issue(org_admin, name="Alice own", scope="personal", role="member")
    content = as_alice.get("/o/acme/tokens/").content.decode()
    assert "Group one" not in content and "Alice own" not in content


def test_members_get_a_403_page_in_the_console_look(as_carol):
    response = as_carol.get("/o/acme/tokens/")
    content = response.content.decode()
    assert response.status_code == 403
    assert "Organization tokens are managed by the organization&#x27;s admins." in content
    assert "My API tokens" in content  # the console's navigation is there
    assert 'class="brand"' in content


def test_a_group_admin_cannot_open_the_organization_tokens(as_bob):
    assert as_bob.get("/o/acme/tokens/").status_code == 403
    assert as_bob.get("/o/acme/tokens/new/").status_code == 403


def test_the_navigation_hides_organization_tokens_from_members(as_carol):
    content = as_carol.get("/o/acme/me/tokens/").content.decode()
    assert "Organization tokens" not in content
    assert 'aria-current="page">My API tokens' in content


def test_the_list_costs_the_same_queries_for_many_tokens(
    as_alice, org_admin, django_assert_max_num_queries
):
    for number in range(30):
        issue(org_admin, name=f"bulk {number:02d}", role="custom", permissions=["api.usage.read"])
    with django_assert_max_num_queries(12):
        response = as_alice.get("/o/acme/tokens/")
    assert b"30 tokens" in response.content


def test_page_and_fragment_are_cached_apart(as_alice):
    assert "HX-Request" in as_alice.get("/o/acme/tokens/").headers["Vary"]


def test_a_huge_list_counts_up_to_a_cap_and_says_there_are_more(as_alice, org_admin, monkeypatch):
    monkeypatch.setattr("tokens.views.COUNT_CAP", 3)
    for index in range(5):
        issue(org_admin, name=f"many {index}")
    content = as_alice.get("/o/acme/tokens/").content.decode()
    assert "of more than 3 tokens; narrow the filter" in content
    assert "many 4" in content
    narrowed = as_alice.get("/o/acme/tokens/?q=many+4", **HTMX).content.decode()
    assert "1 token" in narrowed and "more than" not in narrowed


def test_a_filtered_list_shows_its_page_first_and_counts_the_matches_after(
    as_alice, org_admin, django_assert_max_num_queries
):
    for number in range(55):
        issue(org_admin, name=f"batch {number:02d}", role="member")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        content = as_alice.get("/o/acme/tokens/?q=batch", **HTMX).content.decode()
    assert not any("COUNT(" in query["sql"].upper() for query in queries.captured_queries)
    assert "batch 49" in content and "batch 50" not in content
    assert "1–50 of more than 50 tokens" in content
    assert 'hx-get="?q=batch&amp;page=1&amp;count=1" hx-trigger="load"' in content
    counted = as_alice.get("/o/acme/tokens/?q=batch&page=1&count=1", **HTMX).content.decode()
    assert counted.strip().startswith('<p class="result-count" id="token-count"')
    assert "1–50 of 55 tokens" in counted and "batch" not in counted
    second = as_alice.get("/o/acme/tokens/?q=batch&page=2", **HTMX).content.decode()
    assert "51–55 of 55 tokens" in second and "Page 2 of 2" in second
    # Without JavaScript the link to the count is a whole page that says it.
    whole = as_alice.get("/o/acme/tokens/?q=batch&page=1&count=1").content.decode()
    assert "<html" in whole and "1–50 of 55 tokens" in whole and "Page 1 of 2" in whole


def test_a_page_number_past_the_end_or_nonsense_shows_a_real_page(as_alice, org_admin):
    for number in range(3):
        issue(org_admin, name=f"token {number}", role="member")
    for page in ("9", "0", "x", "9" * 40):
        content = as_alice.get(f"/o/acme/tokens/?page={page}").content.decode()
        assert "token 2" in content and "3 tokens" in content


# A token's secret typed into the filter box -----------------------------------------------------


def test_a_secret_typed_into_the_filter_is_not_searched_shown_or_kept_live(as_alice, org_admin):
    """Typed into the filter, a secret went into the URL and came back in the page (the box's
    value, "no tokens match ..."), and stayed live."""
    from tokens.models import ApiToken

    pasted = issue(org_admin, name="Searched for")
    response = as_alice.get(f"/o/acme/tokens/?q={pasted.secret}&status=all")
    assert response.status_code == 302
    assert pasted.secret not in response["Location"]
    assert response["Location"] == "/o/acme/tokens/?status=all"
    page = as_alice.get(response["Location"]).content.decode()
    assert pasted.secret not in page
    assert "That was an API token, not a search" in page
    assert ApiToken.objects.get(pk=pasted.token.pk).leaked_at is not None


def test_typed_while_filtering_as_you_type_the_browser_is_sent_to_the_list_without_it(
    as_alice, org_admin
):
    from tokens.models import ApiToken

    pasted = issue(org_admin, name="Searched for")
    response = as_alice.get(f"/o/acme/tokens/?q=ci+{pasted.secret}", **HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/o/acme/tokens/"
    assert pasted.secret not in response.content.decode()
    assert ApiToken.objects.get(pk=pasted.token.pk).leaked_at is not None


def test_a_made_up_secret_is_refused_alike_and_short_token_like_text_still_filters(
    as_alice, org_admin
):
    issue(org_admin, name="kwo_ deploy key")
    made_up = "kwo_" + "A" * 46
    response = as_alice.get(f"/o/acme/tokens/?q={made_up}")
    assert response.status_code == 302 and made_up not in response["Location"]
    response = as_alice.get("/o/acme/tokens/?q=kwo_+deploy")
    assert response.status_code == 200 and "kwo_ deploy key" in response.content.decode()


def test_a_secret_in_any_parameter_of_the_list_is_never_shown_back_or_redirected_to(
    as_alice, org_admin
):
    """Only the last ``q`` was checked: a secret in an earlier ``q``, or in ``sort`` or
    ``status``, went back into every link of the page (and into the redirect's Location)."""
    from tokens.models import ApiToken

    for number, query in enumerate(("q={}&q=deploy", "q=deploy&sort={}", "q={}&status={}")):
        pasted = issue(org_admin, name=f"Searched for {number}")
        response = as_alice.get("/o/acme/tokens/?" + query.format(pasted.secret, pasted.secret))
        assert response.status_code == 302, query
        assert pasted.secret not in response["Location"]
        assert pasted.secret not in as_alice.get(response["Location"]).content.decode()
        assert ApiToken.objects.get(pk=pasted.token.pk).leaked_at is not None


def test_a_signed_out_visitor_s_secret_is_not_carried_to_the_sign_in_page(client, org_admin):
    """The sign-in redirect's ``next`` carried the whole URL: the secret went into the
    Location, the sign-in page's hidden field and every log of the next request."""
    pasted = issue(org_admin, name="Searched for")
    for headers in ({}, HTMX):
        response = client.get(f"/o/acme/tokens/?q={pasted.secret}&status=all", **headers)
        location = response.get("Location") or response["HX-Redirect"]
        assert pasted.secret not in location
        assert location == "/login/?next=/o/acme/tokens/%3Fstatus%3Dall"
    page = client.get(f"/login/?next=/o/acme/tokens/%3Fq%3D{pasted.secret}").content.decode()
    assert pasted.secret not in page
    response = client.get(f"/o/{pasted.secret}/tokens/")
    assert pasted.secret not in response["Location"]


def test_a_secret_typed_with_more_letters_after_it_is_still_treated_as_leaked(as_alice, org_admin):
    """``<secret>x`` is one token-shaped run of 54 characters: it matched no secret, so the
    secret it begins with, disclosed in the URL all the same, stayed live."""
    from tokens.models import ApiToken

    pasted = issue(org_admin, name="Typed on")
    response = as_alice.get(f"/o/acme/tokens/?q={pasted.secret}abc")
    assert response.status_code == 302 and pasted.secret not in response["Location"]
    assert ApiToken.objects.get(pk=pasted.token.pk).leaked_at is not None
