"""Shared set-up for benchmarks: a database of their own, seeding in bulk, reporting.

Benchmarks use ``BENCH_DATABASE_URL`` (default: ``.local/bench.sqlite3``), never the
development database, and print a table and one JSON line each.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> str:
    """Point Django at the benchmark database, migrate it, and return its engine's name."""
    sys.path.insert(0, str(ROOT))
    (ROOT / ".local").mkdir(exist_ok=True)
    os.environ["DATABASE_URL"] = os.environ.get(
        "BENCH_DATABASE_URL", f"sqlite:///{ROOT / '.local' / 'bench.sqlite3'}"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("KEYWARD_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    settings.DEBUG = False  # no query log growing during measurements
    settings.KEYWARD_USAGE_FLUSH_THREAD = False
    settings.ALLOWED_HOSTS = ["*"]
    from django.db import connection

    return connection.vendor


def machine() -> dict[str, str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "system": platform.platform(terse=True),
    }


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of each of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def percentile_ms(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


def report(name: str, database: str, rows: Sequence[tuple[str, object, str]]) -> dict:
    """Print ``(figure, value, goal)`` rows as a table and as one JSON line."""
    width = max(len(figure) for figure, _value, _goal in rows)
    print(f"\n{name} ({database})")
    print(f"{'figure'.ljust(width)}  {'value':>14}  goal")
    for figure, value, goal in rows:
        shown = (
            f"{value:,.3f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else str(value)
        )
        print(f"{figure.ljust(width)}  {shown:>14}  {goal}")
    result = {
        "benchmark": name,
        "database": database,
        "machine": machine(),
        "figures": {figure: value for figure, value, _goal in rows},
    }
    print("JSON " + json.dumps(result))
    return result
