import sys

from django.core.management.base import BaseCommand, CommandParser

from tokens import leaks


class Command(BaseCommand):
    help = (
        "Report leaked tokens read from standard input, one per line (blank lines ignored), for "
        "incident response: each live one is revoked at once, an old secret in its grace period "
        "ends, and each match is audited (actor 'leak report') and e-mailed to the "
        "organization's admins, exactly as a report to POST /api/v1/leaked-tokens. Prints how "
        "many matched; never prints a token. Exit codes: 0 done, 1 error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--source",
            default="incident response (report_leaked_tokens)",
            help="Where the tokens were found; the revocation reason says 'Leaked: <source>'.",
        )
        parser.add_argument("--url", default="", help="Where the tokens were seen, if public.")

    def handle(self, *args: object, **options: object) -> None:
        reports = [
            leaks.LeakReport(
                token=line.strip(), url=str(options["url"]), source=str(options["source"])
            )
            for line in sys.stdin
            if line.strip()
        ]
        outcomes = leaks.process_reports(
            reports, reporter_address=None, reported_by="report_leaked_tokens (command line)"
        )
        counts = {outcome: outcomes.count(outcome) for outcome in leaks.Outcome}
        matched = sum(outcome.matched for outcome in outcomes)
        self.stdout.write(
            f"Read {len(reports)} token{'s' if len(reports) != 1 else ''}; {matched} matched: "
            f"{counts[leaks.Outcome.REVOKED]} revoked, "
            f"{counts[leaks.Outcome.GRACE_ENDED]} old secrets ended, "
            f"{counts[leaks.Outcome.RECORDED]} already not working (leak recorded), "
            f"{counts[leaks.Outcome.ALREADY_REPORTED]} already reported."
        )
