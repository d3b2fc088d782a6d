import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mail import outbox
from orgs import exports
from policies.services import apply as policy_changes
from webhooks import worker


class Command(BaseCommand):
    help = (
        "Keyward's background worker: send queued webhook deliveries and due e-mail, and prepare "
        "audit exports too large to stream, and finish policy changes a crash interrupted, until "
        "stopped: SIGTERM or SIGINT finishes the job in "
        "hand and exits 0. With --once, "
        "deliver what is due now and exit (for cron and tests). Several workers may run at once "
        "on PostgreSQL; run one on SQLite."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Deliver what is due now, then exit."
        )
        parser.add_argument(
            "--poll",
            type=float,
            default=1.0,
            metavar="SECONDS",
            help="How long to wait when nothing is due (default 1).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            sent = outbox.deliver_due().sent
            made = worker.deliver_due()
            built = exports.build_due(limit=10)
            exports.remove_expired()
            policies = policy_changes.finish_unfinished()
            self.stdout.write(
                f"{made} delivery attempts, {sent} e-mails sent, {built.exports} audit exports "
                f"prepared ({built.failed} failed), {policies} unfinished policy changes "
                "finished."
            )
            return
        stop = threading.Event()

        def finish(signum: int, frame: object) -> None:
            stop.set()

        previous = {
            signum: signal.signal(signum, finish) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        self.stdout.write("Delivering webhooks; stop with SIGTERM or Ctrl+C.")
        self.stdout.flush()
        try:
            made = worker.run(stop=stop, poll_seconds=max(0.05, float(options["poll"])))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write(f"Stopped after {made} delivery attempts.")
