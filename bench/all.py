"""Run every benchmark with its default size and print each one's table and JSON.

``make bench`` runs them on SQLite (``.local/bench.sqlite3``); set ``BENCH_DATABASE_URL`` to a
PostgreSQL URL to run them there. The load benchmark always needs PostgreSQL and wrk.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

BENCHMARKS = [
    "auth",
    "creation",
    "console_list",
    "cleanup",
    "webhooks",
    "audit_log",
    "policy_change",
]


def main() -> None:
    names = sys.argv[1:] or BENCHMARKS
    results = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        results.append(module.main([]))
    output = Path(__file__).resolve().parent.parent / ".local" / "bench-results.json"
    output.parent.mkdir(exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print(f"\nAll figures written to {output}")


if __name__ == "__main__":
    main()
