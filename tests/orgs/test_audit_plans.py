"""Every filter of the audit log is served by an index that starts with the organization: the
plans PostgreSQL chooses on a seeded, analyzed table never read the organization's events
sequentially."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from orgs import audit_log
from orgs.audit_log import AuditLog, EventFilter, Position
from orgs.audit_views import TOKEN_NAMING_ACTIONS
from orgs.models import AuditEvent

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="checks PostgreSQL's query plans (EXPLAIN); SQLite's planner is checked by "
        "bench/audit_log.py's timings instead",
    ),
]

EVENTS = 10_000
# Other organizations' events: Acme holds a quarter of the table, as one tenant of many would.
OTHERS = 30_000
ACTIONS = [
    "token.created",
    "token.revoked",
    "token.regenerated",
    "token.restored",
    "token.renamed",
    "member.added",
    "group.updated",
    "ip_filter.changed",
    "security_policy.changed",
    "token.policy_applied",
]


@pytest.fixture
def seeded(world):
    """10,000 events of Acme among 40,000, with statistics, as a live table has."""
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (occurred_at, organization_id, organization_name, group_id,
                actor_id, actor_name, actor_kind, via_token_id, via_token_name,
                via_token_partial, action, object_type, object_id, object_repr, changes)
            SELECT now() - make_interval(secs => i), %s, 'Acme',
                   CASE WHEN i %% 5 = 0 THEN %s END,
                   CASE WHEN i %% 3 = 0 THEN %s END, 'someone',
                   (ARRAY['human', 'technical', 'technical', 'operator'])[i %% 4 + 1],
                   1000 + i %% 200, 'bot ' || i %% 200, 'kwo_…bulk',
                   (%s::varchar[])[i %% 10 + 1], 'api_token', (1000 + i %% 200)::text,
                   'bot ' || i %% 200, '{{}}'::jsonb
            FROM generate_series(1, %s) AS i
            UNION ALL
            SELECT now() - make_interval(secs => i), %s, 'Globex', NULL, NULL, 'x', 'human',
                   NULL, '', '', 'token.revoked', 'api_token', '1', 'x', '{{}}'::jsonb
            FROM generate_series(1, %s) AS i
            """,
            [
                world.acme.pk,
                world.platform.pk,
                world.alice.pk,
                ACTIONS,
                EVENTS,
                world.globex.pk,
                OTHERS,
            ],
        )
        cursor.execute(f"ANALYZE {table}")
    return world


def statements(work):
    """Every (sql, params) that ``work`` runs against the audit table."""
    captured = []

    def capture(execute, sql, params, many, context):
        if AuditEvent._meta.db_table in sql:
            captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        work()
    assert captured
    return captured


def plans(work):
    result = []
    with connection.cursor() as cursor:
        for sql, params in statements(work):
            cursor.execute("EXPLAIN " + sql, params)
            result.append("\n".join(row[0] for row in cursor.fetchall()))
    return result


def assert_indexed(work, index=None):
    """No plan of ``work`` reads the table sequentially; each walks an index. ``index`` names
    the one built for the filter: PostgreSQL may prefer another that serves the same order
    (the plain occurred_at or action index, when one organization holds much of the table),
    which costs the same, so it is not required, only shown when the check fails."""
    for plan in plans(work):
        assert "Seq Scan on orgs_auditevent" not in plan, f"expected {index}:\n{plan}"
        assert "Index" in plan and "on orgs_auditevent" in plan, plan


def events_of(world, **filters):
    visible = AuditEvent.objects.filter(organization=world.acme)
    return AuditLog(visible, EventFilter(**filters))


FILTERS = {
    "none": ({}, "audit_org_time_id"),
    "actor": ({"actors": "alice"}, "audit_org_actor"),
    "kind of actor": ({"actor_kinds": audit_log.by_actor_kind("operator")}, "audit_org_kind"),
    "token": ({"tokens": audit_log.by_token_ids([1007])}, None),
    "action": ({"actions": audit_log.by_actions(["token.revoked"])}, "audit_org_action"),
    "action prefix": ({"actions": "token."}, "audit_org_action"),
    "object": ({"objects": audit_log.by_objects([("api_token", "1007")])}, "audit_org_object"),
    "group": ({"groups": "platform"}, "audit_org_group"),
    "time range": ({"since": "-2h", "until": "-1h"}, "audit_org_time_id"),
    "action and group": (
        {"actions": audit_log.by_actions(["token.revoked"]), "groups": "platform"},
        None,
    ),
}


def _resolve(world, spec):
    now = timezone.now()
    resolved = {}
    for name, value in spec.items():
        if value == "alice":
            value = audit_log.by_actor_ids([world.alice.pk])
        elif value == "platform":
            value = audit_log.by_group_ids([world.platform.pk])
        elif value == "token.":
            value = audit_log.by_actions(audit_log.actions_matching("token."))
        elif value in ("-2h", "-1h"):
            value = now - timedelta(hours=int(value[1]))
        resolved[name] = value
    return resolved


def test_each_filter_s_pages_walk_an_index_of_the_organization(seeded):
    middle = AuditEvent.objects.filter(organization=seeded.acme).order_by("id")[EVENTS // 2]
    position = Position.of(middle)
    now = timezone.now()
    for name, (spec, index) in FILTERS.items():
        events = events_of(seeded, **_resolve(seeded, spec))
        for page in (
            lambda: events.page(size=50),
            lambda: events.page(before=position, size=50),
            lambda: events.page(after=position, size=50),
            lambda: events.oldest_first(after=position, limit=50, now=now),
            lambda: events.newest_first(limit=50, offset=200),
        ):
            try:
                assert_indexed(page, index)
            except AssertionError as error:
                raise AssertionError(f"filter {name!r}: {error}") from None


def test_the_capped_count_and_the_export_chunks_walk_indexes(seeded):
    events = events_of(seeded, actions=audit_log.by_actions(["token.revoked"]))
    assert_indexed(lambda: events.capped_count(10_000), "audit_org_action")
    assert_indexed(lambda: next(events.chunks(2000)), "audit_org_action")


def test_names_typed_in_the_token_box_are_looked_up_in_naming_events_only(seeded):
    visible = AuditEvent.objects.filter(organization=seeded.acme)
    query = (
        visible.filter(action__in=TOKEN_NAMING_ACTIONS, object_repr__icontains="bot 7")
        .order_by()
        .values_list("object_id", flat=True)
    )
    assert_indexed(lambda: list(query[:21]), "audit_org_action")


def test_the_action_vocabulary_is_a_loose_index_scan(seeded):
    assert_indexed(audit_log.action_vocabulary)
    assert set(audit_log.action_vocabulary()) >= set(ACTIONS)


def test_the_check_catches_a_sequential_scan(seeded):
    unindexed = AuditEvent.objects.filter(object_repr__icontains="bot 7").order_by()
    with pytest.raises(AssertionError, match="Seq Scan"):
        assert_indexed(lambda: list(unindexed[:5]))
