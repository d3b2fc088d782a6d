import json
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orgs.durations import EXIT_INTERRUPTED, duration_argument
from orgs.models import Organization
from orgs.principals import Principal
from tokens import cleanup, usage
from tokens.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Delete tokens expired for longer than --expired-for (default 30d) and, if asked, "
        "tokens revoked for longer than --revoked-for; revoke (not delete) active tokens unused "
        "for --unused-for. Deleted tokens' technical users are deactivated, daily usage counts "
        "older than 90 days are pruned, and each organization gets one audit event with the "
        "counts. Works in short batches, so it can run on a live database, twice at once, and be "
        "interrupted with Ctrl-C (finished batches stay done, the current one is rolled back). "
        "Exit codes: 0 done, 1 error, 130 interrupted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--expired-for",
            type=duration_argument,
            default="30d",
            metavar="DURATION",
            help="Delete tokens expired at least this long ago: 90m, 12h, 30d (default 30d).",
        )
        parser.add_argument(
            "--keep-expired",
            action="store_true",
            help="Delete no expired tokens (ignores --expired-for).",
        )
        parser.add_argument(
            "--revoked-for",
            type=duration_argument,
            metavar="DURATION",
            help="Also delete tokens revoked at least this long ago (default: keep them).",
        )
        parser.add_argument(
            "--unused-for",
            type=duration_argument,
            metavar="DURATION",
            help="Revoke active tokens not used (nor created) within this duration; they can be "
            "restored. Each revocation gets its own audit event.",
        )
        parser.add_argument("--org", metavar="SLUG", help="Only this organization's tokens.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print every token that would be deleted or revoked, and the counts; change "
            "nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=cleanup.DEFAULT_BATCH_SIZE,
            metavar="N",
            help=f"Tokens per transaction, 1 to {cleanup.MAX_BATCH_SIZE} "
            f"(default {cleanup.DEFAULT_BATCH_SIZE}); smaller holds locks for less time.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the summary as one JSON object."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if not 1 <= batch_size <= cleanup.MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {cleanup.MAX_BATCH_SIZE}.")
        organization = None
        if options["org"]:
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"No organization {options['org']!r}.")
        criteria = cleanup.Criteria(
            expired_for=None if options["keep_expired"] else options["expired_for"],
            revoked_for=options["revoked_for"],
            unused_for=options["unused_for"],
            organization=organization,
        )
        now = timezone.now()
        if options["dry_run"]:
            report = cleanup.dry_run_report(
                criteria, now=now, changes=self._print_plan(criteria, now, options["json"])
            )
            self._summary(report, options["json"])
            return

        progress = None
        if sys.stderr.isatty() and not options["json"]:
            progress = ProgressBar(sys.stderr, cleanup.total_to_change(criteria, now=now))
        try:
            report = cleanup.run_cleanup(
                actor=Principal.operator(label="cleanup_tokens (command line)"),
                criteria=criteria,
                batch_size=batch_size,
                now=now,
                progress=progress,
            )
        except KeyboardInterrupt:
            self.stderr.write(
                "Interrupted: finished batches are done and audited, the current one was rolled "
                "back. Run again to continue."
            )
            sys.exit(EXIT_INTERRUPTED)
        self._summary(report, options["json"])

    def _print_plan(
        self, criteria: cleanup.Criteria, now: datetime, as_json: bool
    ) -> Iterator[cleanup.PlannedChange]:
        """Print each planned change as it streams past (JSON Lines with --json)."""
        for change in cleanup.plan(criteria, now=now):
            if as_json:
                self.stdout.write(
                    json.dumps(
                        {
                            "action": change.action,
                            "reason": change.reason,
                            "token_id": change.token_id,
                            "organization": change.organization_slug,
                            "scope": change.scope,
                            "name": change.name,
                            "partial_token": change.partial_token,
                            "since": change.since.isoformat() if change.since else None,
                            "deactivates_user": change.deactivates_user,
                        },
                        sort_keys=True,
                    )
                )
            else:
                since = f"{change.since:%Y-%m-%d %H:%M} UTC" if change.since else "never"
                label = {"expired": "expired", "revoked": "revoked", "unused": "last used"}
                user = ", deactivate its technical user" if change.deactivates_user else ""
                self.stdout.write(
                    f"would {change.action} {change.organization_slug} {change.scope} token "
                    f"#{change.token_id} {change.name!r} ({change.partial_token}), "
                    f"{label[change.reason]} {since}{user}"
                )
            yield change

    def _summary(self, report: cleanup.CleanupReport, as_json: bool) -> None:
        summary = report.as_dict()
        if as_json:
            self.stdout.write(json.dumps(summary, sort_keys=True))
            return
        words = ("Would delete", "revoke", "deactivate", "prune")
        if not report.dry_run:
            words = ("Deleted", "revoked", "deactivated", "pruned")
        self.stdout.write(
            f"{words[0]} {summary['deleted_expired']} expired and "
            f"{summary['deleted_revoked']} revoked tokens, {words[1]} "
            f"{summary['revoked_unused']} unused tokens, {words[2]} "
            f"{summary['technical_users_deactivated']} technical users, {words[3]} "
            f"{summary['usage_rows_pruned']} daily usage rows older than "
            f"{usage.RETENTION_DAYS} days."
        )
        for slug, counts in summary["organizations"].items():
            self.stdout.write(
                f"  {slug}: {counts['deleted_expired']} expired and {counts['deleted_revoked']} "
                f"revoked deleted, {counts['revoked_unused']} unused revoked"
            )
        if report.skipped:
            self.stdout.write(f"  {report.skipped} unused tokens were changed meanwhile; skipped.")
