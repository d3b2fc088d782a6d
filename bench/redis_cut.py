"""Redis cut in the middle of a load: gunicorn with ``REDIS_URL`` set and production settings,
wrk at concurrency 32 for 30 s against /api/v1/me with 1,000 valid tokens, once as it is and
once with Redis down from second 10 to second 15 (every connection to it cut, new ones
refused, through a TCP fault proxy), then back. Every request must still answer 2xx: the
throttle and the usage counts fall back to each process while Redis is out, and are shared
again when it returns.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis

from bench.common import report
from bench.faultproxy import FaultProxy
from bench.load import LUA
from bench.serve import gunicorn, manage, production_environment, seed_tokens

PORT = 8392


def run_wrk(tokens_file: str, seconds: int, connections: int) -> dict:
    """wrk as bench.load runs it, with a 10 s request timeout instead of wrk's 2 s: on a shared
    machine a slow answer is not an error, and an error here must be a real one."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(LUA)
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    result = subprocess.run(
        [*command, "--latency", "-s", handle.name, f"http://127.0.0.1:{PORT}/"],
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENS_FILE": tokens_file},
        timeout=seconds + 60,
    )
    os.unlink(handle.name)
    line = next(line for line in result.stdout.splitlines() if line.startswith("JSON-WRK "))
    return json.loads(line.removeprefix("JSON-WRK "))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/keyward_bench_redis_cut"
        ),
    )
    parser.add_argument("--redis", default="127.0.0.1:6379", help="host:port of a real Redis")
    parser.add_argument("--redis-db", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--cut-at", type=float, default=10)
    parser.add_argument("--cut-seconds", type=float, default=5)
    parser.add_argument(
        "--fault",
        choices=("down", "hang"),
        default="down",
        help="down: connections cut and refused; hang: accepted and never answered",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=5)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    if args.database_url.startswith("postgres"):
        import psycopg

        base, name = args.database_url.rsplit("/", 1)
        admin = (base + "/postgres").replace("postgres://", "postgresql://", 1)
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
    redis_host, redis_port = args.redis.rsplit(":", 1)
    redis.Redis(host=redis_host, port=int(redis_port), db=args.redis_db).flushdb()
    proxy = FaultProxy(redis_host, int(redis_port)).start()
    environment = production_environment(
        args.database_url,
        REDIS_URL=f"redis://127.0.0.1:{proxy.port}/{args.redis_db}",
        KEYWARD_LOG_LEVEL="INFO",
    )
    manage(environment, "migrate", "--noinput")
    tokens_file = seed_tokens(environment, args.tokens)
    outcome: dict = {}
    try:
        with gunicorn(environment, PORT, workers=args.workers) as server:
            run_wrk(str(tokens_file), 3, args.connections)  # warm up
            # The same load without a fault first: the machine's figures to compare with.
            control = run_wrk(str(tokens_file), args.seconds, args.connections)
            load = threading.Thread(
                target=lambda: outcome.update(
                    run_wrk(str(tokens_file), args.seconds, args.connections)
                )
            )
            load.start()
            time.sleep(args.cut_at)
            proxy.go_down() if args.fault == "down" else proxy.hang()
            time.sleep(args.cut_seconds)
            proxy.come_back()
            load.join()
            log = Path(server.log_path).read_text()
    finally:
        proxy.stop()
        tokens_file.unlink()
    database = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    return report(
        f"/me under load with Redis {'cut' if args.fault == 'down' else 'hung'} for "
        f"{args.cut_seconds:g} s "
        f"(gunicorn {args.workers} workers, wrk c={args.connections} {args.seconds}s)",
        database,
        [
            ("valid tokens", len(tokens_file.read_text().split()), "1,000"),
            (
                "without a fault: requests per second",
                round(control["requests"] / control["seconds"], 1),
                "",
            ),
            ("without a fault: p99 ms", round(control["p99_ms"], 2), ""),
            (
                "without a fault: non-2xx + socket errors",
                control["non2xx"] + control["errors"],
                "0",
            ),
            ("requests", outcome["requests"], ""),
            ("requests per second", round(outcome["requests"] / outcome["seconds"], 1), ""),
            ("p50 ms", round(outcome["p50_ms"], 2), ""),
            ("p99 ms", round(outcome["p99_ms"], 2), ""),
            ("non-2xx responses", outcome["non2xx"], "0"),
            ("socket errors", outcome["errors"], "0"),
            (
                "outage warnings logged (one per worker at most)",
                log.count("Redis does not answer"),
                f"<= {args.workers}",
            ),
            ("workers that logged Redis back", log.count("Redis answers again"), ""),
            ("server errors logged", log.count(" ERROR "), "0"),
        ],
    )


if __name__ == "__main__":
    main()
