from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from access.errors import DomainError, describe
from orgs.durations import parse_duration, parse_expiry
from orgs.models import Organization
from orgs.principals import Principal
from tokens.services import DEFAULT, create_token


class Command(BaseCommand):
    help = (
        "Issue an organization or group token as the operator. Prints only the token on "
        "standard output (details on standard error), so scripts can capture it: "
        "TOKEN=$(python manage.py issue_token --org acme --name ci --role admin)"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, metavar="SLUG", help="The organization.")
        parser.add_argument("--name", required=True, help="Token name, unique in its scope.")
        parser.add_argument(
            "--description", default="", help="What the token is for (up to 1,000 characters)."
        )
        parser.add_argument("--group", metavar="SLUG", help="Issue a group token for this group.")
        access = parser.add_mutually_exclusive_group(required=True)
        access.add_argument("--role", choices=["admin", "member"])
        access.add_argument(
            "--permission",
            action="append",
            metavar="NAME",
            help="A permission such as api.api-tokens.read; repeat for more.",
        )
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument(
            "--expires-in", metavar="DURATION", help="90m, 12h or 30d (default: the policy's)."
        )
        expiry.add_argument(
            "--expires-at",
            metavar="WHEN",
            help="A date (the end of that day, 23:59:59 UTC) or an ISO-8601 date-time.",
        )
        parser.add_argument(
            "--ip-filter",
            metavar="NAME",
            help="Give the token this named IP filter of the organization.",
        )
        parser.add_argument(
            "--allowed-address",
            action="append",
            default=[],
            metavar="CIDR",
            help="Only accept requests from this address or network; repeat for more.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organization {options['org']!r}.")
        group = None
        if options["group"]:
            group = organization.groups.filter(slug=options["group"]).first()
            if group is None:
                raise CommandError(f"No group {options['group']!r} in {organization.slug}.")
        ip_filter = None
        if options["ip_filter"]:
            ip_filter = organization.ip_filters.filter(name=options["ip_filter"]).first()
            if ip_filter is None:
                raise CommandError(f"No IP filter {options['ip_filter']!r} in {organization.slug}.")
        expires_at = DEFAULT
        if options["expires_in"]:
            try:
                expires_at = timezone.now() + parse_duration(options["expires_in"])
            except ValueError as error:
                raise CommandError(f"--expires-in: {error}") from None
        elif options["expires_at"]:
            try:
                expires_at = parse_expiry(options["expires_at"])
            except ValueError as error:
                raise CommandError(f"--expires-at: {error}") from None
        try:
            issued = create_token(
                actor=Principal.operator(),
                organization=organization,
                name=options["name"],
                description=options["description"],
                scope="group" if group else "organization",
                group=group,
                role=options["role"] or "custom",
                permissions=options["permission"] or [],
                expires_at=expires_at,
                allowed_addresses=options["allowed_address"],
                ip_filter=ip_filter,
            )
        except ValidationError as error:
            raise CommandError(describe(error)) from None
        except DomainError as error:
            raise CommandError(error.message) from None
        token = issued.token
        expiry = f"{token.expires_at:%Y-%m-%d %H:%M:%S} UTC" if token.expires_at else "never"
        self.stderr.write(
            f"Issued {token.scope} token {token.name!r} ({token.partial_token}) in "
            f"{organization.slug}, role {token.role}, expires {expiry}"
            + (f", IP filter {ip_filter.name!r}" if ip_filter is not None else "")
            + ". "
            "Store it now: it is not shown again."
        )
        self.stdout.write(issued.secret)
