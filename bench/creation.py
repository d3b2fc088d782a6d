"""Tokens created per second through the service layer (no slow hash on the path)."""

from __future__ import annotations

import argparse
import time

from bench.common import report, setup_django


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args(argv)
    database = setup_django()

    from orgs.models import Organization
    from orgs.principals import Principal
    from people.services import create_organization
    from tokens.services import create_token

    slug = f"benchcreate{int(time.time())}"
    organization = create_organization(
        actor=Principal.operator(label="bench"), slug=slug, name="Bench creation"
    )
    actor = Principal.operator(organization=organization, label="bench")
    start = time.perf_counter()
    for index in range(args.count):
        create_token(
            actor=actor,
            organization=organization,
            name=f"created {index}",
            role="member",
            expires_at=None,
        )
    elapsed = time.perf_counter() - start
    Organization.objects.filter(pk=organization.pk).delete()
    return report(
        "token creation",
        database,
        [
            ("tokens created", args.count, ""),
            ("seconds", round(elapsed, 3), ""),
            ("tokens per second", round(args.count / elapsed, 1), ">= 500 on PostgreSQL"),
            ("ms per token", round(elapsed / args.count * 1000, 3), ""),
        ],
    )


if __name__ == "__main__":
    main()
