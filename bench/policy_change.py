"""A security policy change over many tokens: preview and apply at 200, 20,000 and 100,000
organization tokens.

The machine may be shared: beside wall-clock seconds, the CPU seconds of the process applying
the change are printed (on SQLite they include the database's own work).

The change is the one the issue measured: enforce an IP filter on organization tokens, which
touches every token (each rewritten and audited). Applying the reverse change (no enforced
filter: every token loses it) puts the tokens back, so that the benchmark can run again on the
same database, and is measured too. Each size runs in a child process of its own, so that its
peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from bench.common import ROOT, report, setup_django

SIZES = (200, 20_000, 100_000)


def child(slug: str) -> None:
    """Preview (three times) and apply the change, then its reverse; print the figures."""
    setup_django()
    from django.db.models import F

    from orgs.models import Organization, User
    from orgs.principals import Principal
    from policies.models import IpFilter
    from policies.services import create_ip_filter, preview_policy_change, update_security_policy

    organization = Organization.objects.get(slug=slug)
    admin = Principal.for_member(User.objects.get(username=f"{slug}-admin"), organization)
    office = IpFilter.objects.filter(organization=organization, name="Office").first()
    if office is None:
        office = create_ip_filter(
            actor=admin,
            organization=organization,
            name="Office",
            rules_text="allow 10.0.0.0/8\ndeny all",
        )
    # The floor under every transaction on this machine now: a one-row write and its commit.
    from django.db import transaction

    from policies.models import SecurityPolicy

    commits = []
    for _ in range(10):
        start = time.perf_counter()
        with transaction.atomic():
            SecurityPolicy.objects.filter(organization=organization).update(version=F("version"))
        commits.append(time.perf_counter() - start)
    enforce = {"organization": {"enforced_ip_filter": office.pk}}
    release = {"organization": {"enforced_ip_filter": None}}
    previews = []
    for _ in range(3):
        start = time.perf_counter()
        impact = preview_policy_change(actor=admin, organization=organization, changes=enforce)
        previews.append(time.perf_counter() - start)
    start, cpu = time.perf_counter(), time.process_time()
    applied = update_security_policy(
        actor=admin,
        organization=organization,
        changes=enforce,
        expected_impact=impact.fingerprint(),
    )
    apply_seconds, apply_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    released = update_security_policy(actor=admin, organization=organization, changes=release)
    release_seconds = time.perf_counter() - start
    print(
        "CHILD "
        + json.dumps(
            {
                "commit": statistics.median(commits),
                "preview": statistics.median(previews),
                "shown": len(impact.ip_filter_enforced),
                "touched": impact.touched_count,
                "apply": apply_seconds,
                "apply_cpu": apply_cpu,
                "changed": applied.progress.tokens_changed,
                "longest": applied.progress.longest_transaction,
                "batches": applied.progress.batches,
                "release": release_seconds,
                "release_longest": released.progress.longest_transaction,
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def _vacuum() -> None:
    """On PostgreSQL, clear the dead row versions earlier runs left (each apply leaves one per
    token it rewrites) as autovacuum does in production, so that each run measures the same
    table; on a busy machine autovacuum falls behind (1,500,000 dead versions seen here)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE tokens_apitoken")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(size) for size in SIZES))
    parser.add_argument("--child", metavar="SLUG")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return {}
    database = setup_django()
    from bench.seed import organization_with_tokens

    rows: list[tuple[str, object, str]] = []
    for size in (int(size) for size in args.sizes.split(",")):
        slug = f"benchpolicy{size}"
        seed_start = time.perf_counter()
        organization_with_tokens(slug, size)
        seeded = time.perf_counter() - seed_start
        _vacuum()
        result = subprocess.run(
            [sys.executable, "-m", "bench.policy_change", "--child", slug],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"policy change failed:\n{result.stderr[-3000:]}")
        figures = json.loads(
            next(
                line for line in result.stdout.splitlines() if line.startswith("CHILD ")
            ).removeprefix("CHILD ")
        )
        rows += [
            (f"{size:,} tokens: seconds to seed (bulk)", round(seeded, 1), ""),
            (
                f"{size:,} tokens: one-row write transaction ms (median of 10)",
                round(figures["commit"] * 1000, 1),
                "the machine's floor",
            ),
            (f"{size:,} tokens: preview s (median of 3)", round(figures["preview"], 3), "<= 1"),
            (
                f"{size:,} tokens: tokens touched / listed",
                f"{figures['touched']:,} / {figures['shown']}",
                "listed <= 100",
            ),
            (f"{size:,} tokens: apply s", round(figures["apply"], 2), "<= 10"),
            (
                f"{size:,} tokens: apply, CPU s of this process",
                round(figures["apply_cpu"], 2),
                "steadier on a shared machine; on SQLite it includes the database's work",
            ),
            (f"{size:,} tokens: tokens rewritten", figures["changed"], f"{size:,}"),
            (f"{size:,} tokens: longest transaction s", round(figures["longest"], 3), "<= 1"),
            (
                f"{size:,} tokens: apply of the reverse change s",
                round(figures["release"], 2),
                "<= 10",
            ),
            (
                f"{size:,} tokens: its longest transaction s",
                round(figures["release_longest"], 3),
                "<= 1",
            ),
            (
                f"{size:,} tokens: peak memory of the process MB",
                round(figures["peak_mb"], 1),
                "flat",
            ),
        ]
    return report("policy change", database, rows)


if __name__ == "__main__":
    main()
