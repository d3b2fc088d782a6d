import json

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orgs import name_rule


class Command(BaseCommand):
    help = (
        "List stored names (tokens, groups, IP filters, organizations) that break the rule for "
        "names: control, direction or invisible characters, a pasted token, or a look-alike of "
        "another name in the same scope. Exits 1 when it finds any (the migrations that brought "
        "in the rule repaired the rows that existed then)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="One JSON document.")

    def handle(self, *args: object, **options: object) -> None:
        found = list(name_rule.breaches(apps))
        if options["json"]:
            self.stdout.write(json.dumps({"breaches": found}, indent=2))
        else:
            for breach in found:
                problems = "; ".join(breach["problems"])
                self.stdout.write(
                    f"{breach['kind']} {breach['id']} in organization "
                    f"{breach['organization_id']}: {breach['name']!r}: {problems}"
                )
            self.stdout.write(f"{len(found)} name(s) break the rule.")
        if found:
            raise CommandError(f"{len(found)} name(s) break the rule; rename them.")
