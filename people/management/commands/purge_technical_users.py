import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orgs.durations import EXIT_INTERRUPTED, duration_argument
from orgs.principals import Principal
from tokens import cleanup
from tokens.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Delete technical users whose token is long gone: deactivated, without any token, "
        "created more than --older-than ago and with no audit event as actor since. Audit events "
        "stay readable: they keep the names they were written with. Exit codes: 0 done, 1 error, "
        "130 interrupted (finished batches stay done)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=duration_argument,
            required=True,
            metavar="DURATION",
            help="How long a technical user must have been without a token and silent in the "
            "audit log: 90m, 12h, 30d (e.g. 365d).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List the users that would go; delete none."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the summary as one JSON object."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=cleanup.DEFAULT_BATCH_SIZE,
            metavar="N",
            help=f"Users per transaction, 1 to {cleanup.MAX_BATCH_SIZE} "
            f"(default {cleanup.DEFAULT_BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["batch_size"] <= cleanup.MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {cleanup.MAX_BATCH_SIZE}.")
        progress = None
        if not options["dry_run"]:
            progress = ProgressBar.on_terminal(
                sys.stderr,
                {
                    cleanup.PURGED: cleanup.purgeable_technical_users(
                        older_than=options["older_than"], now=timezone.now()
                    ).count()
                },
                quiet=options["json"],
            )
        try:
            report = cleanup.purge_technical_users(
                actor=Principal.operator(label="purge_technical_users (command line)"),
                older_than=options["older_than"],
                dry_run=options["dry_run"],
                batch_size=options["batch_size"],
                progress=progress,
            )
        except KeyboardInterrupt:
            self.stderr.write("Interrupted: finished batches are done. Run again to continue.")
            sys.exit(EXIT_INTERRUPTED)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), sort_keys=True))
            return
        if report.dry_run:
            for username in report.usernames:
                self.stdout.write(f"would delete technical user {username}")
            self.stdout.write(f"Would delete {report.purged} technical users.")
        else:
            self.stdout.write(f"Deleted {report.purged} technical users.")
