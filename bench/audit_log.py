"""The console audit page at 1,000 and at 10,000,000 events of one organization: first page,
filtered by action, filtered by token text, a later page by cursor (and the API's cursor page),
then the CSV export of every event with its peak memory. Cost should grow with the page (50
rows), not with the log.

Events are seeded in bulk, straight into the table (executemany in large transactions on
SQLite, COPY on PostgreSQL): the services' own cost is measured elsewhere. A run reuses the
events an earlier run seeded.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from bench.common import ROOT, report, setup_django
from bench.console_list import measure

TOKENS = 200
GROUPS = 5
RENAMED_TOKENS = 50
SEED_BATCH = 50_000
SEED_COMMIT = 1_000_000
# Repeated actions and their share of the log in percent; one token.created per token and a
# few renamings come first, as in a real organization (a token is created once).
REPEATED = [
    ("token.regenerated", 25),
    ("token.revoked", 10),
    ("token.restored", 8),
    ("token.policy_applied", 17),
    ("member.role_changed", 8),
    ("group.updated", 7),
    ("ip_filter.changed", 12),
    ("security_policy.changed", 5),
    ("token.permissions_changed", 8),
]
BUCKETS = [action for action, share in REPEATED for _ in range(share)]
COLUMNS = (
    "occurred_at",
    "organization",
    "organization_name",
    "group_id",
    "actor",
    "actor_name",
    "actor_kind",
    "via_token_id",
    "via_token_name",
    "via_token_partial",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "address",
    "changes",
)
CHANGES = {
    "token.regenerated": '{"partial_token": {"after": "kwo_…b2Zk", "before": "kwo_…x7Qa"}}',
    "token.revoked": '{"status": {"after": "revoked", "before": "active"}}',
    "token.restored": '{"status": {"after": "active", "before": "revoked"}}',
}


def _organization(slug: str):
    from bench.seed import organization_with_tokens
    from orgs.models import Group

    organization = organization_with_tokens(slug, TOKENS)
    for index in range(GROUPS):
        Group.objects.get_or_create(
            organization=organization, slug=f"group-{index}", defaults={"name": f"Group {index}"}
        )
    return organization


def _rows(organization, count: int, now: datetime) -> Iterator[tuple]:
    """``count`` events over the last two years, oldest first, four at a time sharing one
    timestamp (ties the cursor must settle by id). What they refer to is read here, before the
    first row: the rows are made while COPY holds the connection."""
    from django.db import connection

    from orgs.models import Group, User
    from tokens.models import ApiToken

    tokens = list(
        ApiToken.objects.filter(organization=organization)
        .order_by("pk")
        .values_list("pk", "name", "user_id")[:TOKENS]
    )
    groups = list(Group.objects.filter(organization=organization).values_list("pk", "name"))
    admin = User.objects.get(username=f"{organization.slug}-admin")
    sqlite = connection.vendor == "sqlite"
    start = now - timedelta(days=730)
    step = max(1, int(timedelta(days=729).total_seconds() * 1_000_000) // max(1, count // 4))
    start_us = int(start.timestamp()) * 1_000_000
    return _generate(organization, count, tokens, groups, admin, sqlite, start_us, step)


def _generate(organization, count, tokens, groups, admin, sqlite, start_us, step):
    for index in range(count):
        moment_us = start_us + (index // 4) * step
        if moment_us % 1_000_000 == 0:
            moment_us += 1  # Django writes a whole second without its fraction on SQLite
        moment = datetime.fromtimestamp(moment_us // 1_000_000, UTC).replace(
            microsecond=moment_us % 1_000_000
        )
        occurred_at = moment.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else moment
        spread = (index * 2654435761) % 4294967296
        # One busy automation token makes a fifth of the changes, as CI tokens do: its filter
        # fills a page in a log of a thousand events too.
        busy = (spread >> 24) % 5 == 0
        token_id, token_name, token_user = tokens[7 if busy else (spread >> 4) % len(tokens)]
        group_id = None
        if index < len(tokens):
            token_id, token_name, token_user = tokens[index]
            action = "token.created"
        elif index < len(tokens) + RENAMED_TOKENS:
            action = "token.renamed"
        else:
            action = BUCKETS[spread % len(BUCKETS)]
            if (spread >> 12) % 10 < 3:
                group_id = groups[(spread >> 16) % len(groups)][0]
        if action.startswith("token."):
            object_type, object_id, object_repr = "api_token", token_id, f"{token_name} (kwo_…bulk)"
        elif action == "group.updated":
            object_type, object_id, object_repr = "group", group_id or groups[0][0], "Group"
        elif action.startswith("member."):
            object_type, object_id, object_repr = "user", admin.pk, admin.username
        else:
            object_type, object_id, object_repr = action.split(".")[0], "1", "Office"
        if (spread >> 20) % 10 < 7:  # most changes are made by automation, through a token
            acting = (token_user, token_name, "technical", token_id, token_name, "kwo_…bulk")
        else:
            acting = (admin.pk, admin.username, "human", None, "", "")
        yield (
            occurred_at,
            organization.pk,
            organization.name,
            group_id,
            *acting,
            action,
            object_type,
            str(object_id),
            object_repr,
            f"203.0.113.{spread % 250 + 1}",
            CHANGES.get(action, "{}"),
        )


def seed_events(organization, count: int) -> float:
    """Bring the organization's log to ``count`` events; return the seconds it took."""
    from django.db import connection, transaction
    from django.utils import timezone

    from orgs.models import AuditEvent

    marker = _seeded_marker()
    key = f"{connection.settings_dict['NAME']}:{organization.slug}"
    seeded = json.loads(marker.read_text()) if marker.exists() else {}
    if seeded.get(key, 0) >= count:
        return 0.0  # counting ten million rows again would take longer than a measurement
    existing = AuditEvent.objects.filter(organization=organization).count()
    if existing >= count:
        marker.write_text(json.dumps({**seeded, key: existing}))
        return 0.0
    if existing:
        # A run interrupted while seeding: start this organization's log again.
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(AuditEvent._meta.db_table)
            cursor.execute(f"DELETE FROM {table} WHERE organization_id = %s", [organization.pk])
    meta = AuditEvent._meta
    table = connection.ops.quote_name(meta.db_table)
    # By name or attname ("group" or "group_id"), as get_field finds them.
    column_of = {
        key: field.column for field in meta.concrete_fields for key in (field.name, field.attname)
    }
    columns = ", ".join(connection.ops.quote_name(column_of[n]) for n in COLUMNS)
    rows = _rows(organization, count, timezone.now())
    started = time.perf_counter()
    if connection.vendor == "postgresql":
        copy_statement = f"COPY {table} ({columns}) FROM STDIN"
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.cursor.copy(copy_statement) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
    else:
        with connection.cursor() as cursor:
            # A 1 GiB page cache keeps the indexes' hot ends in memory while they grow.
            cursor.execute("PRAGMA cache_size = -1048576")
        statement = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        done = 0
        while done < count:
            with transaction.atomic(), connection.cursor() as cursor:
                for _ in range(SEED_COMMIT // SEED_BATCH):
                    batch = [row for _, row in zip(range(SEED_BATCH), rows, strict=False)]
                    if not batch:
                        break
                    cursor.executemany(statement, batch)
                    done += len(batch)
            print(f"  seeded {done:,} of {count:,}", file=sys.stderr, flush=True)
        with connection.cursor() as cursor:
            # Statistics from a sample of each index, as SQLite's own PRAGMA optimize takes.
            cursor.execute("PRAGMA analysis_limit = 1000")
            cursor.execute("ANALYZE")
    elapsed = time.perf_counter() - started
    marker.write_text(json.dumps({**seeded, key: count}))
    return elapsed


def _seeded_marker():
    return ROOT / ".local" / "bench-audit-seeded.json"


def requests_for(organization, count: int) -> dict[str, tuple[str, dict]]:
    """The requests measured, by name: (url, headers)."""
    from orgs.audit_log import Position, encode_cursor
    from orgs.models import AuditEvent

    page = f"/o/{organization.slug}/audit/"
    # The seed writes an organization's events in one run, ids in a row, its token.created
    # events first: the middle event is found without counting them all.
    first_id = (
        AuditEvent.objects.filter(organization=organization, action="token.created")
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    assert first_id is not None, "the organization's log was seeded"
    middle = AuditEvent.objects.get(pk=first_id + count // 2, organization=organization)
    cursor = encode_cursor(Position.of(middle))
    return {
        "first page": (page, {}),
        "filtered by action": (f"{page}?action=token.revoked", {"HTTP_HX_REQUEST": "true"}),
        "filtered by token text": (f"{page}?token=bulk+token+0000007", {"HTTP_HX_REQUEST": "true"}),
        "filtered by token text (10 tokens)": (
            f"{page}?token=bulk+token+000000",
            {"HTTP_HX_REQUEST": "true"},
        ),
        "a later page by cursor": (f"{page}?before={cursor}", {"HTTP_HX_REQUEST": "true"}),
        "API page by cursor, oldest first": (
            f"/api/v1/audit-events?order=asc&limit=50&cursor={cursor}",
            {},
        ),
    }


def sql_ms(client, url: str, repeat: int, **headers) -> float:
    """Median milliseconds a request spends in the database (all its queries): on a machine
    shared with other work, this moves less than the wall time of the whole request."""
    from django.db import connection

    spent: list[float] = []

    def clock(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent.append(time.perf_counter() - started)

    samples = []
    for _ in range(repeat):
        spent.clear()
        with connection.execute_wrapper(clock):
            client.get(url, **headers)
        samples.append(sum(spent) * 1000)
    return statistics.median(samples)


def export_child(slug: str) -> None:
    """Stream the organization's whole export here and print its figures (the parent reads
    this process's peak memory)."""
    setup_django()
    from django.http import StreamingHttpResponse
    from django.test import Client

    from orgs.models import User

    client = Client()
    client.force_login(User.objects.get(username=f"{slug}-admin"))
    started = time.perf_counter()
    response = client.get(f"/o/{slug}/audit/export.csv")
    size = lines = 0
    last = b""
    reported = 0
    assert isinstance(response, StreamingHttpResponse)
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
        last = chunk
        if lines - reported >= 1_000_000:
            reported = lines
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"PROGRESS {lines:,} lines in {time.perf_counter() - started:.0f} s, "
                f"peak memory {peak:.1f} MB",
                flush=True,
            )
    print(
        "CHILD "
        + json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "bytes": size,
                "lines": lines,
                "marker": last.decode().strip(),
                "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def measure_export(slug: str) -> dict:
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.audit_log", "--export-child", slug],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    figures = None
    assert child.stdout is not None  # stdout=PIPE
    for line in child.stdout:
        if line.startswith("PROGRESS "):
            print(f"  export {slug}: {line.removeprefix('PROGRESS ').strip()}", file=sys.stderr)
        elif line.startswith("CHILD "):
            figures = json.loads(line.removeprefix("CHILD "))
    if child.wait() != 0 or figures is None:
        raise SystemExit(f"export of {slug} failed")
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000, help="events of the large log")
    parser.add_argument("--small", type=int, default=1_000, help="events of the small log")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--skip-export", action="store_true", help="do not export every event")
    parser.add_argument(
        "--skip-pages", action="store_true", help="only seed and export (pages measured apart)"
    )
    parser.add_argument("--export-child", metavar="SLUG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_child:
        export_child(args.export_child)
        return {}
    database = setup_django()

    from django.test import Client

    from orgs.models import User
    from tokens.services import create_token  # noqa: F401  (the API needs the token app ready)

    rows: list[tuple[str, object, str]] = []
    organizations, clients, urls = {}, {}, {}
    for label, count in (("small", args.small), ("large", args.events)):
        organization = _organization(f"benchaudit{count}")
        seconds = seed_events(organization, count)
        organizations[label] = organization
        rows.append(
            (f"{count:,} events: seconds to seed (0: seeded before)", round(seconds, 1), "")
        )
        clients[label] = Client()
        clients[label].force_login(User.objects.get(username=f"{organization.slug}-admin"))
        api_headers = {"HTTP_AUTHORIZATION": f"Bearer {_api_token(organization)}"}
        urls[label] = {
            name: (url, {**headers, **api_headers} if url.startswith("/api/") else headers)
            for name, (url, headers) in requests_for(organization, count).items()
        }
    # Small and large in turn, a few rounds each, so that the machine's load (shared, two
    # cores) weighs on both alike.
    rounds = 5
    samples: dict[str, dict[str, list[float]]] = {"small": {}, "large": {}}
    queries: dict[str, dict[str, int]] = {"small": {}, "large": {}}
    database_time: dict[str, dict[str, list[float]]] = {"small": {}, "large": {}}
    for _round in range(0 if args.skip_pages else rounds):
        for name in urls["small"]:
            for label in ("small", "large"):
                url, headers = urls[label][name]
                milliseconds, count = measure(
                    clients[label], url, max(1, args.repeat // rounds), **headers
                )
                samples[label].setdefault(name, []).append(milliseconds)
                queries[label][name] = count
                database_time[label].setdefault(name, []).append(
                    sql_ms(clients[label], url, max(1, args.repeat // rounds), **headers)
                )
    for label, count in (("small", args.small), ("large", args.events)):
        for name in urls[label] if not args.skip_pages else ():
            median = statistics.median(samples[label][name])
            rows.append((f"{count:,} events: {name} median ms", round(median, 3), ""))
            rows.append((f"{count:,} events: {name} queries", queries[label][name], "constant"))
            in_database = statistics.median(database_time[label][name])
            rows.append((f"{count:,} events: {name} SQL median ms", round(in_database, 3), ""))
    for name in urls["small"] if not args.skip_pages else ():
        ratio = statistics.median(samples["large"][name]) / statistics.median(
            samples["small"][name]
        )
        rows.append((f"ratio {name}", round(ratio, 3), "<= 1.5"))
        sql_ratio = statistics.median(database_time["large"][name]) / statistics.median(
            database_time["small"][name]
        )
        rows.append((f"ratio {name}, SQL only", round(sql_ratio, 3), "(shown beside)"))
    if not args.skip_export:
        for label in ("small", "large"):
            figures_of = measure_export(organizations[label].slug)
            count = args.small if label == "small" else args.events
            rows += [
                (f"export of {count:,} events: seconds", round(figures_of["seconds"], 1), ""),
                (
                    f"export of {count:,} events: rows per second",
                    round((figures_of["lines"] - 2) / figures_of["seconds"], 1),
                    "",
                ),
                (
                    f"export of {count:,} events: MB written",
                    round(figures_of["bytes"] / 2**20, 1),
                    "",
                ),
                (
                    f"export of {count:,} events: peak memory MB",
                    round(figures_of["peak_kb"] / 1024, 1),
                    "flat: same at both sizes",
                ),
                (f"export of {count:,} events: last line", figures_of["marker"], ""),
            ]
    return report("console audit log at scale", database, rows)


def _api_token(organization) -> str:
    """A fresh organization token that may read the audit log."""
    from orgs.principals import Principal
    from tokens.services import create_token

    issued = create_token(
        actor=Principal.operator(organization=organization, label="bench"),
        organization=organization,
        name=f"bench reader {time.time_ns()}",
        role="admin",
        expires_at=None,
    )
    return issued.secret


if __name__ == "__main__":
    main()
