from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from access.errors import describe
from orgs.models import User
from orgs.principals import Principal
from people.services import create_organization


class Command(BaseCommand):
    help = (
        "Create an organization with its default security policy and, optionally, make an "
        "existing user its admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Short name used in URLs, e.g. acme.")
        parser.add_argument("--name", required=True, help="Display name, e.g. 'Acme Corp'.")
        parser.add_argument("--admin", metavar="USERNAME", help="An existing user to make admin.")

    def handle(
        self, *args: object, slug: str, name: str, admin: str | None, **options: object
    ) -> None:
        admin_user = None
        if admin:
            admin_user = User.objects.filter(username=admin).first()
            if admin_user is None:
                raise CommandError(f"No user named {admin!r}; create it first (createsuperuser).")
        try:
            organization = create_organization(
                actor=Principal.operator(), slug=slug, name=name, admin=admin_user
            )
        except ValidationError as error:
            raise CommandError(describe(error)) from None
        self.stdout.write(f"Created organization {organization.slug} ({organization.name}).")
