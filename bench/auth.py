"""Bearer authentication cost: GET /api/v1/me with a valid token against GET /api/v1/health,
through the full Django request cycle in one process, with 100,000 tokens in the table."""

from __future__ import annotations

import argparse

from bench.common import median_ms, percentile_ms, report, setup_django, timed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    database = setup_django()

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.seed import organization_with_tokens
    from orgs.principals import Principal
    from tokens import usage
    from tokens.services import create_token

    organization = organization_with_tokens("benchauth", args.tokens)
    issued = create_token(
        actor=Principal.operator(organization=organization, label="bench"),
        organization=organization,
        name=f"bench me {organization.api_tokens.count()}",
        role="member",
        expires_at=None,
    )
    client = Client()
    header = {"Authorization": f"Bearer {issued.secret}"}
    for _ in range(200):  # warm up both paths
        client.get("/api/v1/health")
        client.get("/api/v1/me", headers=header)

    # In turns, so that whatever else the (shared) machine does falls on both paths alike.
    health: list[float] = []
    me: list[float] = []
    rounds = 10
    for _ in range(rounds):
        health += timed(lambda: client.get("/api/v1/health"), args.requests // rounds)
        me += timed(lambda: client.get("/api/v1/me", headers=header), args.requests // rounds)

    with CaptureQueriesContext(connection) as queries:
        for _ in range(100):
            client.get("/api/v1/me", headers=header)
    writes = [
        q
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))
    ]
    usage.current().flush()
    ratio = median_ms(me) / median_ms(health)
    return report(
        "bearer authentication cost",
        database,
        [
            ("tokens in the table", organization.api_tokens.count(), "100,000"),
            ("health median ms", median_ms(health), ""),
            ("me median ms", median_ms(me), ""),
            ("me p99 ms", percentile_ms(me, 0.99), ""),
            (
                "ratio me/health",
                round(ratio, 3),
                "<= 2.0 on PostgreSQL" if database == "postgresql" else "<= 1.5",
            ),
            ("queries per authenticated request", len(queries.captured_queries) / 100, "1"),
            ("writes in 100 requests within a minute", len(writes), "0"),
        ],
    )


if __name__ == "__main__":
    main()
