from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orgs.models import Organization
from tokens.notifications import THRESHOLDS, send_reminders


class Command(BaseCommand):
    help = (
        "E-mail one digest per organization to its admins (and per group to the group's admins) "
        "listing organization and group tokens that expire within "
        f"{', '.join(str(days) for days in THRESHOLDS)} days. Each reminder is sent once per "
        "threshold; run it daily from cron. The digests are queued in the e-mail outbox and sent "
        "outside any database transaction. Exit codes: 0 sent (or nothing due), 1 a message "
        "could not be sent (it stays queued: the next run or `send_email` sends it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", metavar="SLUG", help="Only this organization.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the digests that would be sent; send and record nothing.",
        )

    def handle(self, *args: object, **options: object) -> None:
        organization = None
        if options["org"]:
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"No organization {options['org']!r}.")
        now = timezone.now()
        report = send_reminders(now=now, organization=organization, dry_run=options["dry_run"])
        for digest in report.digests:
            verb = "Would send" if report.dry_run else "Queued"
            self.stdout.write(f"{verb} {digest.subject!r} to {', '.join(digest.recipients)}")
            if report.dry_run:
                self.stdout.write(digest.body(now))
                self.stdout.write("")
        verb = "would be reminded" if report.dry_run else "reminded"
        self.stdout.write(f"{len(report.digests)} digests, {report.tokens_reminded} tokens {verb}.")
        if report.failures:
            raise CommandError(
                f"{len(report.failures)} e-mail(s) not sent, kept queued for the next run: "
                + "; ".join(report.failures[:5])
            )
