"""GET /audit-events by cursor: newest first for people, oldest first for SIEM pulls that resume
where they stopped; offsets capped; counts capped; cursors confined to the caller's view."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from orgs import audit, audit_log
from orgs.audit_log import Position, encode_cursor
from orgs.principals import Principal

pytestmark = pytest.mark.django_db

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def record(organization, label, *, action="siem.event", group_id=None):
    return audit.record(
        actor=Principal.operator(label=label),
        action=action,
        organization=organization,
        object_type="thing",
        group_id=group_id,
    )


def names(body):
    return [item["actor"]["name"] for item in body["items"]]


def fields_of(response):
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


def pull(api, cursor=None, **query):
    """One SIEM pull: oldest first from ``cursor``; the names read and the cursor to keep."""
    if cursor is not None:
        query["cursor"] = cursor
    response = api.get("/audit-events", order="asc", action="siem.event", limit=7, **query)
    assert response.status_code == 200, response.content
    body = response.json()
    return names(body), body["nextCursor"]


def test_newest_first_by_cursor_walks_equal_instants_without_loss_or_repeat(admin_api, world):
    with time_machine.travel(START, tick=False):
        for index in range(23):
            record(world.acme, f"e {index:02d}")
    seen, cursor = [], None
    while True:
        query = {"action": "siem.event", "limit": 10}
        if cursor:
            query["cursor"] = cursor
        body = admin_api.get("/audit-events", **query).json()
        seen += names(body)
        cursor = body["nextCursor"]
        assert (body["count"] is None) == ("cursor" in query)
        if cursor is None:
            break
    assert seen == [f"e {i:02d}" for i in reversed(range(23))]


def test_a_siem_pull_resumes_after_the_last_event_even_while_events_arrive(admin_api, world):
    with time_machine.travel(START, tick=False):
        for index in range(10):
            record(world.acme, f"old {index:02d}")
    seen: list[str] = []
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        batch, cursor = pull(admin_api)
        seen += batch
        record(world.acme, "arrived while paging")  # younger than the settle window
        batch, cursor = pull(admin_api, cursor)
        seen += batch
        assert seen == [f"old {i:02d}" for i in range(10)]
        batch, same = pull(admin_api, cursor)
        assert batch == [] and same == cursor  # caught up: keep the cursor, ask again later
    with time_machine.travel(START + timedelta(minutes=1, seconds=6), tick=False):
        batch, cursor = pull(admin_api, cursor)
        assert batch == ["arrived while paging"]
        assert pull(admin_api, cursor) == ([], cursor)


def test_events_younger_than_the_settle_window_wait_for_the_next_pull(admin_api, world):
    with time_machine.travel(START, tick=False):
        record(world.acme, "settled")
    with time_machine.travel(START + audit_log.SETTLE + timedelta(seconds=1), tick=False):
        record(world.acme, "fresh")
        batch, cursor = pull(admin_api)
        assert batch == ["settled"]
    with time_machine.travel(START + 3 * audit_log.SETTLE, tick=False):
        assert pull(admin_api, cursor)[0] == ["fresh"]


def test_an_event_committed_late_with_an_earlier_time_is_not_lost(admin_api, world):
    """A change records its event at 10 s and commits at 13 s; another, recorded at 11 s,
    commits at once. A reader at 12 s that handed out the 11 s event would move its cursor
    past 10 s and never see the late one; waiting out the settle window, it sees both."""
    with time_machine.travel(START, tick=False):
        record(world.acme, "first")
    with time_machine.travel(START + timedelta(seconds=11), tick=False):
        record(world.acme, "on time")
    with time_machine.travel(START + timedelta(seconds=12), tick=False):
        batch, cursor = pull(admin_api)
        assert batch == ["first"]
    with time_machine.travel(START + timedelta(seconds=10), tick=False):
        record(world.acme, "committed late")  # written only now, with its earlier time
    with time_machine.travel(START + timedelta(seconds=17), tick=False):
        assert pull(admin_api, cursor)[0] == ["committed late", "on time"]


def test_a_cursor_never_reaches_outside_the_caller_s_view(callers, world):
    with time_machine.travel(START, tick=False):
        for index in range(5):
            record(world.acme, f"acme {index}")
            record(world.acme, f"platform {index}", group_id=world.platform.pk)
            record(world.globex, f"globex {index}")
    far = encode_cursor(Position(START + timedelta(days=3650), 2**62))
    globex = callers.api("other_org").get("/audit-events", cursor=far, limit=200).json()
    assert {item["action"] for item in globex["items"]} >= {"siem.event"}
    assert not [n for n in names(globex) if n.startswith(("acme", "platform"))]
    group = callers.api("group").get("/audit-events", cursor=far, limit=200).json()
    assert {item["groupId"] for item in group["items"]} == {world.platform.pk}
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        asc = callers.api("group").get("/audit-events", order="asc", cursor=far, limit=200)
        assert asc.json()["items"] == []  # nothing is newer than a cursor in the far future
        asc = callers.api("group").get("/audit-events", order="asc", limit=200).json()
    assert {item["groupId"] for item in asc["items"]} == {world.platform.pk}


def test_offsets_stop_at_ten_thousand_and_do_not_mix_with_cursors(admin_api, world):
    record(world.acme, "one")
    assert "offset" in fields_of(admin_api.get("/audit-events", offset=10_001))
    assert admin_api.get("/audit-events", offset=10_000).status_code == 200
    cursor = encode_cursor(Position(START, 1))
    assert "offset" in fields_of(admin_api.get("/audit-events", offset=5, cursor=cursor))
    assert "offset" in fields_of(admin_api.get("/audit-events", offset=5, order="asc"))


@pytest.mark.parametrize("cursor", ["nonsense", "MTox.AAAA", "", "ä" * 10])
def test_a_malformed_cursor_is_a_400_naming_the_cursor(admin_api, cursor):
    assert "cursor" in fields_of(admin_api.get("/audit-events", cursor=cursor))


def test_offset_pages_carry_a_capped_count_and_a_cursor_to_go_on(admin_api, world, monkeypatch):
    for index in range(12):
        record(world.acme, f"c {index:02d}")
    body = admin_api.get("/audit-events", action="siem.event", limit=5, offset=5).json()
    assert body["count"] == 12 and body["countIsCapped"] is False
    assert names(body) == [f"c {i:02d}" for i in (6, 5, 4, 3, 2)]
    rest = admin_api.get("/audit-events", action="siem.event", cursor=body["nextCursor"]).json()
    assert names(rest) == ["c 01", "c 00"] and rest["nextCursor"] is None
    monkeypatch.setattr("orgs.api.MAX_AUDIT_COUNT", 10)
    capped = admin_api.get("/audit-events", action="siem.event").json()
    assert capped["count"] == 10 and capped["countIsCapped"] is True


def test_filters_by_group_and_by_object(admin_api, world):
    record(world.acme, "in platform", group_id=world.platform.pk)
    record(world.acme, "in data", group_id=world.data.pk)
    by_group = admin_api.get("/audit-events", groupId=world.platform.pk).json()
    assert {item["groupId"] for item in by_group["items"]} == {world.platform.pk}
    assert "in platform" in names(by_group) and "in data" not in names(by_group)
    group_id = str(world.platform.pk)
    by_object = admin_api.get("/audit-events", objectType="group", objectId=group_id).json()
    assert {item["objectId"] for item in by_object["items"]} == {group_id}
    assert {item["action"] for item in by_object["items"]} == {"group.created"}
    assert "objectType" in fields_of(admin_api.get("/audit-events", objectId="3"))
    assert "objectId" in fields_of(admin_api.get("/audit-events", objectType="group"))


def test_the_schema_documents_cursors_and_the_offset_cap(client):
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/audit-events"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["offset"]["schema"]["maximum"] == 10_000
    assert "nextCursor" in parameters["offset"]["description"]
    assert {"cursor", "order"} <= set(parameters)
    assert "SIEM" in operation["description"] and "seconds" in operation["description"]
    page = schema["components"]["schemas"]["AuditEventPage"]["properties"]
    assert {"nextCursor", "count", "countIsCapped"} <= set(page)
