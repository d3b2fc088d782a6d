import signal
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mail.outbox import deliver_due


class Command(BaseCommand):
    help = (
        "Send queued e-mail (reminders, leak alerts, invitations) that is due, retrying failures "
        "with backoff. Runs until stopped; --once sends what is due and exits (for cron), "
        "non-zero if a message could not be sent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Send what is due, then exit.")
        parser.add_argument(
            "--interval", type=float, default=15.0, help="Seconds between rounds (default 15)."
        )

    def handle(self, *args: object, once: bool, interval: float, **options: object) -> None:
        if once:
            delivery = deliver_due()
            self.stdout.write(f"Sent {delivery.sent} e-mail(s).")
            if delivery.failures:
                raise CommandError(
                    f"{len(delivery.failures)} not sent (kept for the next run): "
                    + "; ".join(delivery.failures[:5])
                )
            return
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping:
            delivery = deliver_due()
            if delivery.sent or delivery.failures:
                self.stdout.write(
                    f"Sent {delivery.sent}, failed {len(delivery.failures)} (kept for retry)."
                )
            slept = 0.0
            while slept < interval and not stopping:
                time.sleep(0.5)
                slept += 0.5
