import json

from django.core.management.base import BaseCommand, CommandParser

from orgs.principals import Principal
from people.services import expire_invitations


class Command(BaseCommand):
    help = (
        "Mark pending invitations older than their 7 days as expired, each with an "
        "invitation.expired audit event. Expired invitations cannot be accepted whether or not "
        "this ran; it makes the audit log and the lists say so. Run it daily from cron."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help="Print the summary as one JSON object."
        )

    def handle(self, *args: object, **options: object) -> None:
        expired = expire_invitations(
            actor=Principal.operator(label="expire_invitations (command line)")
        )
        if options["json"]:
            self.stdout.write(json.dumps({"expired": expired}))
        else:
            self.stdout.write(f"Marked {expired} invitation(s) as expired.")
