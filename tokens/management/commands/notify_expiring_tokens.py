import json
import sys
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orgs.models import Organization
from tokens.notifications import (
    ORGANIZATIONS,
    PERSONAL_THRESHOLDS,
    THRESHOLDS,
    NotifyReport,
    due_reminders,
    send_reminders,
)
from tokens.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "E-mail one digest per organization to its admins (and per group to the group's admins) "
        "listing organization and group tokens that expire within "
        f"{', '.join(str(days) for days in THRESHOLDS)} days, and each person one about their "
        "own personal tokens that expire within "
        f"{' and '.join(str(days) for days in PERSONAL_THRESHOLDS)} days. Each reminder is sent "
        "once per threshold; run it daily from cron. The digests are queued in the e-mail "
        "outbox and sent outside any database transaction. Exit codes: 0 sent (or nothing "
        "due), 1 a message could not be sent (it stays queued: the next run or `send_email` "
        "sends it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", metavar="SLUG", help="Only this organization.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the digests that would be sent; send and record nothing.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the digests and counts as one JSON object (no bodies).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        organization = None
        if options["org"]:
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"No organization {options['org']!r}.")
        now = timezone.now()
        progress = None
        if sys.stderr.isatty() and not options["json"] and not options["dry_run"]:
            due = due_reminders(now=now, organization=organization)
            organizations = len({reminder.token.organization_id for reminder in due})
            progress = ProgressBar.on_terminal(
                sys.stderr, {ORGANIZATIONS: organizations}, quiet=False
            )
        report = send_reminders(
            now=now, organization=organization, dry_run=options["dry_run"], progress=progress
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), sort_keys=True))
        else:
            self._print(report, now)
        if report.failures:
            raise CommandError(
                f"{len(report.failures)} e-mail(s) not sent, kept queued for the next run: "
                + "; ".join(report.failures[:5])
            )

    def _print(self, report: NotifyReport, now: datetime) -> None:
        for digest in report.digests:
            verb = "Would send" if report.dry_run else "Queued"
            self.stdout.write(f"{verb} {digest.subject!r} to {', '.join(digest.recipients)}")
            if report.dry_run:
                self.stdout.write(digest.body(now))
                self.stdout.write("")
        verb = "would be reminded" if report.dry_run else "reminded"
        self.stdout.write(f"{len(report.digests)} digests, {report.tokens_reminded} tokens {verb}.")
