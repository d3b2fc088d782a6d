"""Throughput under load: gunicorn with production settings, wrk on the same machine,
concurrency 32 for 30 s against /api/v1/me with 1,000 different tokens, and /api/v1/health."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile

from bench.common import report
from bench.serve import gunicorn, manage, production_environment, seed_tokens

LUA = r"""
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local counter = 0
request = function()
  counter = counter + 1
  local token = tokens[(counter % #tokens) + 1]
  return wrk.format("GET", "/api/v1/me", {["Authorization"] = "Bearer " .. token})
end
done = function(summary, latency, requests)
  io.write(string.format(
    "JSON-WRK {\"requests\": %d, \"seconds\": %f, \"errors\": %d, \"non2xx\": %d, "
    .. "\"p50_ms\": %f, \"p99_ms\": %f}\n",
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""
HEALTH_LUA = LUA.replace(
    'return wrk.format("GET", "/api/v1/me", {["Authorization"] = "Bearer " .. token})',
    'return wrk.format("GET", "/api/v1/health")',
)


def run_wrk(port: int, script: str, tokens_file: str, seconds: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    result = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            handle.name,
            f"http://127.0.0.1:{port}/",
        ],
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
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/keyward_bench"
        ),
    )
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=8391, help="where gunicorn listens")
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
    environment = production_environment(args.database_url)
    manage(environment, "migrate", "--noinput")
    tokens_file = seed_tokens(environment, args.tokens)
    with gunicorn(environment, args.port, workers=args.workers, threads=args.threads):
        run_wrk(args.port, LUA, str(tokens_file), 3, args.connections)  # warm up
        me = run_wrk(args.port, LUA, str(tokens_file), args.seconds, args.connections)
        health = run_wrk(args.port, HEALTH_LUA, str(tokens_file), args.seconds, args.connections)
    distinct = len(set(tokens_file.read_text().split()))
    tokens_file.unlink()
    database = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    me_rps, health_rps = me["requests"] / me["seconds"], health["requests"] / health["seconds"]
    return report(
        f"throughput (gunicorn {args.workers} workers x {args.threads} threads, "
        f"wrk c={args.connections} {args.seconds}s)",
        database,
        [
            ("distinct tokens", distinct, "1,000"),
            ("/me requests per second", round(me_rps, 1), ""),
            ("/me p50 ms", round(me["p50_ms"], 2), ""),
            ("/me p99 ms", round(me["p99_ms"], 2), ""),
            ("/me errors (socket + non-2xx)", me["errors"] + me["non2xx"], "0"),
            ("/health requests per second", round(health_rps, 1), ""),
            ("/health p50 ms", round(health["p50_ms"], 2), ""),
            ("/health p99 ms", round(health["p99_ms"], 2), ""),
            ("/health errors", health["errors"] + health["non2xx"], "0"),
            ("throughput ratio health/me", round(health_rps / me_rps, 3), ""),
            ("throughput ratio me/health", round(me_rps / health_rps, 3), ">= 0.6, 0 errors"),
        ],
    )


if __name__ == "__main__":
    main()
