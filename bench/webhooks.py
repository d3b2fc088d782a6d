"""Webhooks: what the outbox adds to every audit event, and how fast one worker delivers.

Figures: the cost of ``audit.record`` in an organization without endpoints (the usual case:
one indexed query more) and with five subscribed endpoints (one insert more); one worker's
deliveries per second to a receiver on a loopback port; the claim's cost with many finished
deliveries in the table (the partial index keeps it flat).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from bench.common import median_ms, report, setup_django, timed

if TYPE_CHECKING:
    from orgs.models import Organization


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--deliveries", type=int, default=300)
    parser.add_argument("--finished", type=int, default=20000)
    args = parser.parse_args(argv)
    database = setup_django()

    from django.conf import settings
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from orgs import audit
    from orgs.models import Organization
    from orgs.principals import Principal
    from people.services import create_organization
    from webhooks import services, worker
    from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.KEYWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    stamp = int(time.time())
    operator = Principal.operator(label="bench")
    plain = create_organization(actor=operator, slug=f"benchhooks{stamp}a", name="No endpoints")
    hooked = create_organization(actor=operator, slug=f"benchhooks{stamp}b", name="Endpoints")
    for index in range(5):
        services.create_endpoint(
            actor=Principal.operator(organization=hooked, label="bench"),
            organization=hooked,
            url=url,
            events=["*"],
            description=f"bench {index}",
        )

    def record(organization: Organization) -> None:
        audit.record(
            actor=operator,
            action="token.renamed",
            organization=organization,
            object_type="api_token",
            object_id=1,
            object_repr="bench",
            changes={"name": {"before": "a", "after": "b"}},
        )

    def queries(organization: Organization) -> int:
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            record(organization)
        return len(captured.captured_queries)

    def in_one_transaction(work: Callable[[], object]) -> list[float]:
        """Times of ``work`` inside a service's transaction (rolled back: no commit timed)."""
        with transaction.atomic():
            samples = timed(work, args.events)
            transaction.set_rollback(True)
        return samples

    no_endpoint = in_one_transaction(lambda: record(plain))
    five_endpoints = in_one_transaction(lambda: record(hooked))
    bare = median_ms(in_one_transaction(lambda: _bare_event(plain)))
    plain_queries, hooked_queries = queries(plain), queries(hooked)

    def commit() -> None:
        with transaction.atomic():
            WebhookEndpoint.objects.filter(organization=hooked).update(version=1)

    commit_ms = median_ms(timed(commit, 50))

    # Delivery throughput: only the first endpoint stays on, with a fresh queue.
    WebhookDelivery.objects.filter(endpoint__organization=hooked).delete()
    first = WebhookEndpoint.objects.filter(organization=hooked).order_by("pk").first()
    assert first is not None, "the bench created its endpoints above"
    WebhookEndpoint.objects.filter(organization=hooked).exclude(pk=first.pk).update(active=False)
    WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exclude(endpoint=first).update(
        status=DeliveryStatus.FAILED  # leftovers of an interrupted run are not this run's
    )
    for _ in range(args.deliveries):
        record(hooked)
    queued = WebhookDelivery.objects.filter(endpoint=first).count()
    start = time.perf_counter()
    made = worker.deliver_due()
    elapsed = time.perf_counter() - start
    succeeded = WebhookDelivery.objects.filter(
        endpoint=first, status=DeliveryStatus.SUCCEEDED
    ).count()

    # The claim with many finished deliveries around it.
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=first,
                message_id=f"msg_bench{index}",
                event_type="token.renamed",
                body="{}",
                status=DeliveryStatus.SUCCEEDED,
                completed_at=now,
            )
            for index in range(args.finished)
        ],
        batch_size=2000,
    )
    record(hooked)
    claims = []
    for _ in range(20):
        begun = time.perf_counter()
        claim = worker.claim_next()
        claims.append(time.perf_counter() - begun)
        if claim is not None:
            WebhookDelivery.objects.filter(pk=claim.delivery.pk).update(
                status=DeliveryStatus.PENDING, lease="", next_attempt_at=now
            )
    server.shutdown()
    Organization.objects.filter(pk__in=[plain.pk, hooked.pk]).delete()
    return report(
        "webhooks",
        database,
        [
            ("audit event without the outbox: median ms", round(bare, 3), ""),
            ("audit.record, no endpoint: median ms", round(median_ms(no_endpoint), 3), ""),
            ("audit.record, no endpoint: queries", plain_queries, "2 (event + lookup)"),
            ("audit.record, 5 endpoints: median ms", round(median_ms(five_endpoints), 3), ""),
            ("audit.record, 5 endpoints: queries", hooked_queries, "3 (+ one insert)"),
            (
                "added by the outbox, no endpoint: ms",
                round(median_ms(no_endpoint) - bare, 3),
                "< 1",
            ),
            ("one commit on this database: median ms", round(commit_ms, 3), ""),
            ("deliveries queued, succeeded, attempts", f"{queued}/{succeeded}/{made}", "all equal"),
            (
                "deliveries per second, one worker",
                round(made / elapsed, 1),
                ">= 50 (two commits each)",
            ),
            (
                f"claim with {args.finished:,} finished rows: median ms",
                round(statistics.median(claims) * 1000, 3),
                "< 5 + one commit",
            ),
        ],
    )


def _bare_event(organization: Organization) -> None:
    """The same audit event written without the outbox, for comparison."""
    from orgs.models import AuditEvent

    AuditEvent.objects.create(
        organization=organization,
        organization_name="x",
        actor_name="bench",
        actor_kind="operator",
        action="token.renamed",
        object_type="api_token",
        object_id="1",
        object_repr="bench",
        changes={"name": {"before": "a", "after": "b"}},
    )


if __name__ == "__main__":
    main()
