import secrets
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from orgs.models import Organization, Role, User
from orgs.principals import Principal
from people.services import create_group, create_organization, set_group_member, set_member
from policies.services import update_security_policy
from tokens.models import LISTED_AFTER_EXPIRY, ApiToken
from tokens.services import create_token, revoke_token

DEMO_PASSWORD = "keyward-demo"

PEOPLE = [
    # username, full name, {org slug: role}, {(org slug, group slug): role}
    ("alice", "Alice Admin", {"acme": Role.ADMIN}, {}),
    ("bob", "Bob Builder", {"acme": Role.MEMBER}, {("acme", "platform"): Role.ADMIN}),
    ("carol", "Carol Member", {"acme": Role.MEMBER}, {("acme", "platform"): Role.MEMBER}),
    ("dave", "Dave Globex", {"globex": Role.ADMIN}, {}),
    ("erin", "Erin Both", {"acme": Role.MEMBER, "globex": Role.ADMIN}, {}),
]
ORGANIZATIONS = [("acme", "Acme Corp"), ("globex", "Globex Industries")]
# Organizations whose policy the demo turns permission edits on for (Globex keeps the default).
PERMISSION_EDITS = {"acme"}
GROUPS = [
    ("acme", "platform", "Platform team"),
    ("acme", "data", "Data team"),
    ("globex", "ops", "Operations"),
]


class Command(BaseCommand):
    help = (
        "Load demo data (idempotent): two organizations, groups, admins and members with the "
        f"password {DEMO_PASSWORD!r}, and tokens in every state. In production "
        "(DJANGO_DEBUG=false) it refuses unless given --allow-production, and then gives each "
        "new person a random password, printed this once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Load the demo people and tokens into a production database anyway, each "
            "person with a random password printed once instead of the published one.",
        )

    def handle(self, *args: object, **options: object) -> None:
        production = settings.KEYWARD_PRODUCTION
        if production and not options["allow_production"]:
            raise CommandError(
                "This is production (DJANGO_DEBUG=false): the demo would create five people, "
                "two of them organization admins. Run with --allow-production if you mean it; "
                "they then get random passwords, printed once."
            )
        operator = Principal.operator(label="demo data")
        now = timezone.now()
        passwords: dict[str, str] = {}
        with transaction.atomic():
            users = {}
            for username, full_name, _orgs, _groups in PEOPLE:
                user, created = User.objects.get_or_create(
                    username=username,
                    defaults={
                        "first_name": full_name.split()[0],
                        "last_name": full_name.split()[1],
                        "email": f"{username}@example.com",
                    },
                )
                if created:
                    password = secrets.token_urlsafe(18) if production else DEMO_PASSWORD
                    passwords[username] = password
                    user.set_password(password)
                    user.save()
                users[username] = user
            organizations = {}
            for slug, name in ORGANIZATIONS:
                organization = Organization.objects.filter(slug=slug).first()
                if organization is None:
                    organization = create_organization(actor=operator, slug=slug, name=name)
                    if slug in PERMISSION_EDITS:
                        # New organizations start without permission edits; Acme shows them.
                        update_security_policy(
                            actor=Principal.operator(organization=organization, label="demo data"),
                            organization=organization,
                            changes={
                                scope: {"permission_edits_allowed": True}
                                for scope in ("organization", "group", "personal")
                            },
                        )
                organizations[slug] = organization
            groups = {}
            for org_slug, slug, name in GROUPS:
                organization = organizations[org_slug]
                group = organization.groups.filter(slug=slug).first()
                if group is None:
                    group = create_group(
                        actor=Principal.operator(organization=organization, label="demo data"),
                        organization=organization,
                        slug=slug,
                        name=name,
                    )
                groups[(org_slug, slug)] = group
            for username, _name, memberships, group_memberships in PEOPLE:
                for org_slug, role in memberships.items():
                    organization = organizations[org_slug]
                    if not organization.memberships.filter(
                        user=users[username], role=role
                    ).exists():
                        set_member(
                            actor=operator,
                            organization=organization,
                            user=users[username],
                            role=role,
                        )
                for (org_slug, group_slug), role in group_memberships.items():
                    group = groups[(org_slug, group_slug)]
                    if not group.memberships.filter(user=users[username], role=role).exists():
                        set_group_member(
                            actor=operator, group=group, user=users[username], role=role
                        )

            acme, globex = organizations["acme"], organizations["globex"]
            alice = Principal.for_member(users["alice"], acme)
            bob = Principal.for_member(users["bob"], acme)
            dave = Principal.for_member(users["dave"], globex)
            made = 0
            made += self._token(
                alice, acme, "CI deploy", role="admin", expires_at=now + timedelta(days=90)
            )
            made += self._token(alice, acme, "Metrics reader", role="member", expires_at=None)
            made += self._token(
                alice,
                acme,
                "Token auditor",
                permissions=["api.api-tokens.read", "api.audit-events.read"],
                expires_at=now + timedelta(days=2),
            )
            made += self._token(
                alice,
                acme,
                "Expiring tomorrow",
                role="member",
                expires_at=now + timedelta(hours=20),
            )
            if self._token(alice, acme, "Old integration", role="member", expires_at=None):
                made += 1
                token = ApiToken.objects.get(
                    organization=acme, scope="organization", name="Old integration"
                )
                revoke_token(actor=alice, token=token, reason="Replaced by CI deploy")
            made += self._expired_a_minute_ago(alice, acme, now)
            made += self._token(
                bob,
                acme,
                "Platform deployer",
                scope="group",
                group=groups[("acme", "platform")],
                role="admin",
                expires_at=now + timedelta(days=30),
            )
            made += self._token(
                alice,
                acme,
                "Data loader",
                scope="group",
                group=groups[("acme", "data")],
                permissions=["api.api-tokens.read", "api.usage.read"],
                expires_at=now + timedelta(days=60),
            )
            made += self._token(
                alice,
                acme,
                "Alice laptop",
                scope="personal",
                role="admin",
                expires_at=now + timedelta(days=30),
            )
            made += self._token(
                bob,
                acme,
                "Bob scripts",
                scope="personal",
                role="member",
                expires_at=now + timedelta(days=7),
            )
            made += self._token(dave, globex, "Globex backup", role="admin", expires_at=None)

        self.stdout.write(f"Demo data ready ({made} tokens created on this run).")
        if production:
            self.stdout.write(
                "Sign in with these; each password is shown only now (people who existed "
                "before this run keep theirs):"
            )
        else:
            self.stdout.write(
                f"Sign in at {settings.KEYWARD_CONSOLE_URL} with any of these "
                f"(password {DEMO_PASSWORD!r}):"
            )
        for username, _name, memberships, group_memberships in PEOPLE:
            roles = [f"{role} of {slug}" for slug, role in memberships.items()]
            roles += [
                f"{role} of group {group}" for (_org, group), role in group_memberships.items()
            ]
            password = (
                f"  password {passwords[username]}" if production and username in passwords else ""
            )
            self.stdout.write(f"  {username:<6} {', '.join(roles)}{password}")

    def _token(
        self,
        actor: Principal,
        organization: Organization,
        name: str,
        *,
        scope: str = "organization",
        group=None,
        role: str = "custom",
        permissions=(),
        expires_at=None,
        now=None,
    ) -> int:
        existing = ApiToken.objects.filter(organization=organization, scope=scope, name=name)
        if scope == "personal":
            existing = existing.filter(user=actor.user)
        if existing.exists():
            return 0
        create_token(
            actor=actor,
            organization=organization,
            name=name,
            scope=scope,
            group=group,
            role=role,
            permissions=permissions,
            expires_at=expires_at,
            now=now,
        )
        return 1

    def _expired_a_minute_ago(self, actor: Principal, organization: Organization, now) -> int:
        name = "Expired a minute ago"
        existing = ApiToken.objects.filter(
            organization=organization, scope="organization", name=name
        ).first()
        if (
            existing is not None
            and existing.expires_at
            and existing.expires_at > now - LISTED_AFTER_EXPIRY
        ):
            return 0
        if existing is not None:  # dropped out of the list: make it fresh for this demo run
            from tokens.services import delete_token

            delete_token(actor=actor, token=existing)
        return self._token(
            actor,
            organization,
            name,
            role="member",
            expires_at=now - timedelta(minutes=1),
            now=now - timedelta(days=1),
        )
