from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from orgs.durations import parse_duration
from webhooks.models import DeliveryStatus, WebhookDelivery

BATCH = 1000


class Command(BaseCommand):
    help = (
        "Delete finished webhook deliveries (succeeded or failed) completed longer ago than "
        "--older-than (default 30d), with their attempts, in short batches. Queued deliveries "
        "are never touched. Run it daily from cron; safe on several hosts at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", default="30d", metavar="DURATION")

    def handle(self, *args: object, **options: object) -> None:
        try:
            older_than = parse_duration(str(options["older_than"]))
        except ValueError as error:
            raise CommandError(f"--older-than: {error}.") from None
        deleted = prune(before=timezone.now() - older_than)
        self.stdout.write(f"{deleted} finished deliveries deleted.")


def prune(*, before: object) -> int:
    """Delete finished deliveries completed before ``before``, a batch per transaction."""
    finished = WebhookDelivery.objects.filter(
        status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED], completed_at__lt=before
    )
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(finished.values_list("pk", flat=True)[:BATCH])
            if not ids:
                return deleted
            # A redelivery keeps pointing at nothing rather than blocking the delete.
            WebhookDelivery.objects.filter(redelivery_of_id__in=ids).update(redelivery_of=None)
            WebhookDelivery.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
