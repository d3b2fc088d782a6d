"""Console token list at scale: the organization list page and its filtered HTMX fragment
with 100 and with 100,000 tokens in the organization. Cost should grow with the page (50
rows), not with the table. A text filter's total of matches comes in a second request after
the page (``?count=1``): its time is printed too, without a goal (it reads every name)."""

from __future__ import annotations

import argparse

from bench.common import median_ms, report, setup_django, timed


def measure(client, url: str, repeat: int, **headers) -> tuple[float, int]:
    from django.db import connection

    for _ in range(10):
        assert client.get(url, **headers).status_code == 200
    executed = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url, **headers)
    return median_ms(timed(lambda: client.get(url, **headers), repeat)), len(executed)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args(argv)
    database = setup_django()

    from django.test import Client

    from bench.seed import organization_with_tokens
    from orgs.models import User

    rows = []
    figures = {}
    for label, count in (("small", args.small), ("large", args.large)):
        organization = organization_with_tokens(f"benchlist{count}", count)
        client = Client()
        client.force_login(User.objects.get(username=f"benchlist{count}-admin"))
        page = f"/o/{organization.slug}/tokens/"
        fragment = f"{page}?q=bulk+token+0000&status=active"
        figures[label] = (
            measure(client, page, args.repeat),
            measure(client, fragment, args.repeat, HTTP_HX_REQUEST="true"),
        )
        (page_ms, page_queries), (fragment_ms, fragment_queries) = figures[label]
        count_ms, _count_queries = measure(
            client, f"{fragment}&count=1", max(10, args.repeat // 5), HTTP_HX_REQUEST="true"
        )
        rows += [
            (f"{count:,} tokens: page median ms", round(page_ms, 3), ""),
            (f"{count:,} tokens: page queries", page_queries, "constant"),
            (f"{count:,} tokens: filtered fragment median ms", round(fragment_ms, 3), ""),
            (f"{count:,} tokens: fragment queries", fragment_queries, "constant"),
            (f"{count:,} tokens: its total (second request) median ms", round(count_ms, 3), ""),
        ]
    (small_page, _), (small_fragment, _) = figures["small"]
    (large_page, _), (large_fragment, _) = figures["large"]
    rows += [
        ("page ratio large/small", round(large_page / small_page, 3), "<= 1.5"),
        ("fragment ratio large/small", round(large_fragment / small_fragment, 3), "<= 1.5"),
    ]
    return report("console token list at scale", database, rows)


if __name__ == "__main__":
    main()
