"""The console audit page at its page boundaries: cursors by (occurred_at, id), ties, events
arriving while paging, empty and last pages, filters with cursors, and cursors that never see
past the reader's visibility."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from orgs import audit, audit_log, audit_views
from orgs.audit_log import Position, decode_cursor, encode_cursor
from orgs.models import AuditEvent
from orgs.principals import Principal
from tests.factories import issue

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def log_url(slug="acme"):
    return reverse("audit:log", kwargs={"org_slug": slug})


def record(organization, label, *, action="test.event", group_id=None):
    return audit.record(
        actor=Principal.operator(label=label),
        action=action,
        organization=organization,
        object_type="thing",
        group_id=group_id,
    )


def record_many(organization, count, *, prefix="op", start=0, at=None, **kwargs):
    """``count`` events labelled ``prefix 000``...; all at one instant when ``at`` is given."""
    if at is None:
        return [record(organization, f"{prefix} {start + i:03d}", **kwargs) for i in range(count)]
    with time_machine.travel(at, tick=False):
        return [record(organization, f"{prefix} {start + i:03d}", **kwargs) for i in range(count)]


def actors(page):
    return re.findall(r'<span class="actor">([^<]+)</span>', page)


def link(page, rel):
    match = re.search(rf'<a href="([^"]+)"[^>]*rel="{rel}"', page)
    return html.unescape(match.group(1)) if match else None


def walk(client, url, rel="next", base=None):
    """Every page from ``url`` following ``rel`` links; the actors of each page."""
    pages = []
    while url is not None:
        page = client.get((base or log_url()) + url if url.startswith("?") else url)
        assert page.status_code == 200
        text = page.content.decode()
        pages.append(actors(text))
        url = link(text, rel)
    return pages


@pytest.fixture
def as_alice(client, world):
    client.force_login(world.alice)
    return client


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(audit_views, "PAGE_SIZE", 7)


# Ties, arrivals, ends -------------------------------------------------------------------------


def test_events_sharing_one_instant_are_paged_by_id_none_lost_none_repeated(as_alice, world):
    record_many(world.acme, 130, at=MOMENT)
    pages = walk(as_alice, "?action=test.event")
    assert [len(page) for page in pages] == [50, 50, 30]
    assert sum(pages, []) == [f"op {i:03d}" for i in reversed(range(130))]


def test_going_back_to_newer_pages_shows_the_same_pages(as_alice, world, small_pages):
    record_many(world.acme, 30, at=MOMENT)
    forward = walk(as_alice, "?action=test.event")
    last = as_alice.get(log_url(), {"action": "test.event"}).content.decode()
    while link(last, "next"):
        last = as_alice.get(log_url() + link(last, "next")).content.decode()
    backward = walk(as_alice, link(last, "prev"), rel="prev")
    # Going back from the last page shows full pages just newer than it, then the newest page.
    assert backward[0] == sum(forward, [])[-7 - len(forward[-1]) : -len(forward[-1])]
    assert backward[-1] == forward[0]


def test_events_arriving_while_paging_are_neither_repeated_nor_skipped(as_alice, world):
    record_many(world.acme, 120, at=MOMENT)
    first = as_alice.get(log_url(), {"action": "test.event"}).content.decode()
    with time_machine.travel(MOMENT + timedelta(minutes=5), tick=False):
        record_many(world.acme, 30, prefix="new")
    rest = walk(as_alice, link(first, "next"))
    seen = actors(first) + sum(rest, [])
    assert seen == [f"op {i:03d}" for i in reversed(range(120))]
    newest = as_alice.get(log_url(), {"action": "test.event"}).content.decode()
    assert actors(newest)[:30] == [f"new {i:03d}" for i in reversed(range(30))]


def test_the_last_page_ends_with_the_oldest_event_and_offers_no_older_page(as_alice, world):
    record_many(world.acme, 55)
    pages = walk(as_alice, "?action=test.event")
    assert pages[-1][-1] == "op 000" and len(pages[-1]) == 5
    last = as_alice.get(log_url(), {"action": "test.event"}).content.decode()
    last = as_alice.get(log_url() + link(last, "next")).content.decode()
    assert "Older events" not in last and "Newer events" in last and "Newest events" in last


def test_a_filter_that_matches_nothing_says_so_without_page_links(as_alice, world):
    record_many(world.acme, 3)
    page = as_alice.get(log_url(), {"action": "test.event", "since": "2999-01-01"})
    text = page.content.decode()
    assert page.status_code == 200 and "No events match these filters." in text
    assert "Older events" not in text and "Newer events" not in text


def test_a_cursor_past_the_oldest_event_is_an_empty_page_with_a_way_back(as_alice, world):
    oldest = record_many(world.acme, 3)[0]
    cursor = encode_cursor(Position.of(oldest))
    text = as_alice.get(log_url(), {"action": "test.event", "before": cursor}).content.decode()
    assert "No older events match these filters." in text
    assert actors(text) == [] and "Older events" not in text and "Newest events" in text


def test_newer_from_the_second_page_returns_to_a_full_newest_page(as_alice, world, small_pages):
    record_many(world.acme, 10)
    first = as_alice.get(log_url(), {"action": "test.event"}).content.decode()
    second = as_alice.get(log_url() + link(first, "next")).content.decode()
    assert len(actors(second)) == 3
    back = as_alice.get(log_url() + link(second, "prev")).content.decode()
    assert actors(back) == actors(first) and "Newer events" not in back


# Filters and cursors --------------------------------------------------------------------------


def test_filters_stay_in_every_page_link_and_narrow_every_page(as_alice, world, small_pages):
    for index in range(20):
        record(world.acme, f"a {index:03d}", action="alpha.event")
        record(world.acme, f"b {index:03d}", action="beta.event")
    pages = walk(as_alice, "?action=alpha.event")
    assert sum(pages, []) == [f"a {i:03d}" for i in reversed(range(20))]
    first = as_alice.get(log_url(), {"action": "alpha.event"}).content.decode()
    assert "action=alpha.event" in link(first, "next")
    family = walk(as_alice, "?action=alpha.")
    assert sum(family, []) == [f"a {i:03d}" for i in reversed(range(20))]


def test_a_token_name_matching_several_tokens_pages_each_event_once(
    as_alice, world, org_admin, small_pages
):
    from tokens.auth import authenticate
    from tokens.services import rename_token

    one = issue(org_admin, name="Robot one", role="admin")
    two = issue(org_admin, name="Robot two", role="admin")
    robot = authenticate(f"Bearer {one.secret}", "192.0.2.1").principal
    target = two.token
    for index in range(6):
        # Done through one robot to the other: the event matches both tokens' branches.
        target = rename_token(actor=robot, token=target, name=f"Robot two v{index}")
    events = AuditEvent.objects.filter(organization=world.acme).for_token(one.token.pk)
    expected = events | AuditEvent.objects.filter(organization=world.acme).for_token(two.token.pk)
    pages = walk(as_alice, "?token=robot")
    seen = sum(pages, [])
    assert len(seen) == expected.count() == 2 + 6  # two creations, six renamings
    rows = as_alice.get(log_url(), {"token": "robot"}).content.decode()
    assert "Robot two v5" in rows
    counted = as_alice.get(log_url(), {"token": "robot", "count": "1"}, HTTP_HX_REQUEST="true")
    assert "8 events match" in counted.content.decode()


def test_a_deleted_token_is_still_found_by_its_name(as_alice, world, org_admin):
    from tokens.services import delete_token

    token = issue(org_admin, name="Gone soon").token
    delete_token(actor=org_admin, token=token)
    text = as_alice.get(log_url(), {"token": "gone soon"}).content.decode()
    assert "token.created" in text and "token.deleted" in text


def test_a_name_matching_too_many_tokens_says_which_are_shown(as_alice, world, org_admin):
    for index in range(audit_views.RESOLVE_CAP + 2):
        issue(org_admin, name=f"Fleet {index:02d}")
    text = as_alice.get(log_url(), {"token": "fleet"}).content.decode()
    assert f"matches more than {audit_views.RESOLVE_CAP} tokens" in text
    assert "Fleet 00" in text


def test_a_name_matching_no_token_says_so(as_alice, world):
    text = as_alice.get(log_url(), {"token": "nothing like it"}).content.decode()
    assert "No token of this organization is named like" in text
    assert actors(text) == []


def test_the_actor_box_finds_people_token_users_and_operators(as_alice, world, org_admin):
    from tokens.auth import authenticate
    from tokens.services import revoke_token

    issued = issue(org_admin, name="Deployer", role="admin")
    robot = authenticate(f"Bearer {issued.secret}", "192.0.2.1").principal
    victim = issue(org_admin, name="Victim").token
    revoke_token(actor=robot, token=victim)
    record(world.acme, "night shift")
    by_robot = as_alice.get(log_url(), {"actor": "deploy"}).content.decode()
    assert actors(by_robot) == ["Deployer"]
    by_person = as_alice.get(log_url(), {"actor": "alice"}).content.decode()
    assert set(actors(by_person)) == {"alice"}
    by_operator = as_alice.get(log_url(), {"actor": "night"}).content.decode()
    assert actors(by_operator) == ["night shift"]


def test_the_group_filter_shows_that_group_s_events(as_alice, world, small_pages):
    record_many(world.acme, 10, prefix="platform", group_id=world.platform.pk)
    record_many(world.acme, 10, prefix="data", group_id=world.data.pk)
    pages = walk(as_alice, f"?group={world.platform.pk}&action=test.event")
    assert sum(pages, []) == [f"platform {i:03d}" for i in reversed(range(10))]


# Cursors and visibility -----------------------------------------------------------------------


def test_a_cursor_from_another_organization_shows_only_the_reader_s_events(client, world):
    acme_events = record_many(world.acme, 20, prefix="acme")
    record_many(world.globex, 20, prefix="globex")
    newest_acme = encode_cursor(
        Position(acme_events[-1].occurred_at + timedelta(days=1), acme_events[-1].pk + 10**6)
    )
    client.force_login(world.dave)
    pages = walk(client, f"?before={newest_acme}", base=log_url("globex"))
    seen = sum(pages, [])
    assert seen and not [name for name in seen if name.startswith("acme")]


def test_a_group_admin_with_an_admin_s_cursor_sees_only_their_groups(client, world, group_admin):
    record_many(world.acme, 10, prefix="org")
    record_many(world.acme, 10, prefix="platform", group_id=world.platform.pk)
    record_many(world.acme, 10, prefix="data", group_id=world.data.pk)
    cursor = encode_cursor(Position(MOMENT + timedelta(days=3650), 2**62))
    client.force_login(world.bob)
    seen = sum(walk(client, f"?before={cursor}&action=test.event"), [])
    assert seen == [f"platform {i:03d}" for i in reversed(range(10))]


def test_a_cursor_from_another_filter_shows_only_this_filter_s_events(as_alice, world):
    for index in range(10):
        record(world.acme, f"a {index:03d}", action="alpha.event")
        record(world.acme, f"b {index:03d}", action="beta.event")
    alpha = as_alice.get(log_url(), {"action": "alpha.event"}).content.decode()
    middle = AuditEvent.objects.get(actor_name="a 005")
    cursor = encode_cursor(Position.of(middle))
    text = as_alice.get(log_url(), {"action": "beta.event", "before": cursor}).content.decode()
    assert actors(text) == [f"b {i:03d}" for i in reversed(range(5))]
    assert actors(alpha)[0] == "a 009"


@pytest.mark.parametrize(
    "query",
    [
        {"before": "garbage"},
        {"after": ""},
        {"before": "x" * 500},
        {"before": "MTox.AAAA"},
        {"after": "%00%ff"},
    ],
)
def test_a_malformed_cursor_is_a_clear_400_never_a_500(as_alice, world, query):
    record_many(world.acme, 3)
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = as_alice.get(log_url(), query, **headers)
        assert response.status_code == 400
        text = response.content.decode()
        assert "This page link is not valid" in text and "Start again from the newest" in text


def test_an_altered_cursor_is_refused_and_both_directions_at_once_too(as_alice, world):
    event = record_many(world.acme, 3)[1]
    cursor = encode_cursor(Position.of(event))
    payload, signature = cursor.rsplit(".", 1)
    forged = encode_cursor(Position(event.occurred_at, event.pk + 1)).rsplit(".", 1)[0]
    altered = f"{forged}.{signature}"
    assert as_alice.get(log_url(), {"before": altered}).status_code == 400
    both = as_alice.get(log_url(), {"before": cursor, "after": cursor})
    assert both.status_code == 400 and "either before or after" in both.content.decode()
    assert as_alice.get(log_url(), {"before": cursor}).status_code == 200


def test_cursors_are_stable_and_round_trip():
    position = Position(datetime(2026, 5, 1, 9, 30, 0, 123456, tzinfo=UTC), 42)
    assert encode_cursor(position) == encode_cursor(position)
    assert decode_cursor(encode_cursor(position)) == position
    early = Position(datetime(1971, 1, 1, tzinfo=UTC), 1)
    assert decode_cursor(encode_cursor(early)) == early
    with pytest.raises(audit_log.InvalidCursor):
        decode_cursor(encode_cursor(position) + "x")


# The count ------------------------------------------------------------------------------------


def test_the_page_counts_nothing_and_offers_a_capped_count_apart(as_alice, world, monkeypatch):
    record_many(world.acme, 8)
    page = as_alice.get(log_url(), {"action": "test.event"}).content.decode()
    assert "Count the matching events" in page and "count=1" in page
    assert "events match" not in page
    counted = as_alice.get(
        log_url(), {"action": "test.event", "count": "1"}, HTTP_HX_REQUEST="true"
    )
    assert counted.content.decode().strip().endswith("8 events match</p>")
    assert "<table" not in counted.content.decode()
    monkeypatch.setattr(audit_views, "COUNT_CAP", 5)
    capped = as_alice.get(log_url(), {"action": "test.event", "count": "1"}).content.decode()
    assert "More than 5 events match" in capped and "op 007" in capped
