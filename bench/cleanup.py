"""cleanup_tokens on 1,000,000 expired tokens: rows per second, peak memory, longest batch
(each batch is one transaction)."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from bench.common import ROOT, report, setup_django


def child(slug: str, batch_size: int) -> None:
    """Run the cleanup in this process and print its figures (memory is read by the parent)."""
    setup_django()
    from orgs.models import Organization
    from orgs.principals import Principal
    from tokens.cleanup import Criteria, run_cleanup

    organization = Organization.objects.get(slug=slug)
    batches: list[float] = []
    last = [time.perf_counter()]

    def progress(_reason: str, _done: int) -> None:
        now = time.perf_counter()
        batches.append(now - last[0])
        last[0] = now

    start = time.perf_counter()
    result = run_cleanup(
        actor=Principal.operator(label="bench"),
        criteria=Criteria(
            expired_for=__import__("datetime").timedelta(days=30), organization=organization
        ),
        batch_size=batch_size,
        progress=progress,
    )
    elapsed = time.perf_counter() - start
    print(
        "CHILD "
        + json.dumps(
            {
                "deleted": result.total("deleted_expired"),
                "seconds": elapsed,
                "longest_batch": max(batches) if batches else 0.0,
                "batches": len(batches),
            }
        )
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2000)  # the command's default
    parser.add_argument("--child", metavar="SLUG")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.batch_size)
        return {}
    database = setup_django()
    from bench.seed import organization_with_tokens

    slug = f"benchclean{args.count}"
    seed_start = time.perf_counter()
    organization_with_tokens(slug, args.count, expired_days_ago=40)
    seeded = time.perf_counter() - seed_start
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cleanup",
            "--child",
            slug,
            "--batch-size",
            str(args.batch_size),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"cleanup failed:\n{result.stderr[-3000:]}")
    peak_mb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    figures = json.loads(
        next(line for line in result.stdout.splitlines() if line.startswith("CHILD ")).removeprefix(
            "CHILD "
        )
    )
    return report(
        "cleanup_tokens",
        database,
        [
            ("expired tokens seeded", args.count, "1,000,000"),
            ("seconds to seed (bulk)", round(seeded, 1), ""),
            ("tokens deleted", figures["deleted"], ""),
            ("seconds to clean up", round(figures["seconds"], 2), ""),
            (
                "rows per second",
                round(figures["deleted"] / figures["seconds"], 1),
                ">= 50,000",
            ),
            ("peak memory MB", round(peak_mb, 1), "< 200"),
            ("longest batch (one transaction) s", round(figures["longest_batch"], 3), "< 1 s"),
            ("batch size", args.batch_size, ""),
        ],
    )


if __name__ == "__main__":
    main()
