import json
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orgs import retention
from orgs.durations import EXIT_INTERRUPTED, duration_argument, to_text
from orgs.principals import Principal


class Command(BaseCommand):
    help = (
        "Remove audit events older than --older-than (default: KEYWARD_AUDIT_RETENTION_DAYS; "
        "without either, events are kept forever and nothing is removed). Works oldest first "
        "in short batches, each its own transaction, so it can run on a live database and be "
        "interrupted; on PostgreSQL with the table partitioned by month it drops whole months "
        "instead, and keeps the next months' partitions ready. Writes one audit event saying "
        "what it removed. Exit codes: 0 done, 1 error, 130 interrupted (finished batches stay "
        "done)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=duration_argument,
            metavar="DURATION",
            help="Remove events older than this: 90d, 365d (at least 1d). Default: "
            "KEYWARD_AUDIT_RETENTION_DAYS days.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be removed, oldest and newest; remove nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=retention.DEFAULT_BATCH_SIZE,
            metavar="N",
            help=f"Events per transaction, 1 to {retention.MAX_BATCH_SIZE} "
            f"(default {retention.DEFAULT_BATCH_SIZE}); smaller holds locks for less time.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the summary as one JSON object."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = options["older_than"] or retention.retention_period()
        if older_than is None:
            message = (
                "KEYWARD_AUDIT_RETENTION_DAYS is not set and no --older-than was given: "
                "audit events are kept forever; nothing removed."
            )
            if options["json"]:
                self.stdout.write(json.dumps({"removed": 0, "kept_forever": True}))
            else:
                self.stdout.write(message)
            return
        try:
            report = retention.prune_audit_events(
                actor=Principal.operator(label="prune_audit_events (command line)"),
                older_than=older_than,
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        except KeyboardInterrupt:
            self.stderr.write(
                "Interrupted: finished batches are removed and audited, the current one was "
                "rolled back. Run again to continue."
            )
            sys.exit(EXIT_INTERRUPTED)
        summary = report.as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(summary, sort_keys=True))
            return
        verb = "Would remove" if report.dry_run else "Removed"
        span = ""
        if report.removed:
            span = f", from {summary['oldest_removed']} to {summary['newest_removed']}"
        self.stdout.write(
            f"{verb} {report.removed} audit events older than {to_text(older_than)} "
            f"(before {summary['cutoff']}){span}."
        )
        if report.partitions_dropped:
            self.stdout.write(f"  dropped partitions: {', '.join(report.partitions_dropped)}")
        if report.partitions_created:
            self.stdout.write(f"  created partitions: {', '.join(report.partitions_created)}")
