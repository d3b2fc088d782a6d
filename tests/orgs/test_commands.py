import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from orgs.models import AuditEvent, Organization, User
from tests.factories import make_user
from tokens.auth import authenticate
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_org_makes_the_organization_its_policy_and_its_admin():
    user = make_user("ops")
    out, _ = run("create_org", "initech", "--name", "Initech", "--admin", "ops")
    organization = Organization.objects.get(slug="initech")
    assert organization.name == "Initech" and "initech" in out
    assert organization.security_policy.personal_tokens.max_lifetime.days == 30
    assert organization.memberships.get(user=user).role == "admin"
    assert AuditEvent.objects.filter(
        action="organization.created", actor_name="command line"
    ).exists()


def test_create_org_refuses_a_taken_slug_or_an_unknown_user_clearly():
    run("create_org", "initech", "--name", "Initech")
    with pytest.raises(CommandError, match="slug: The slug 'initech' is taken"):
        run("create_org", "initech", "--name", "Again")
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("create_org", "other", "--name", "Other", "--admin", "ghost")
    with pytest.raises(CommandError, match="slug"):
        run("create_org", "not a slug", "--name", "Bad")
    assert Organization.objects.count() == 1


def test_issue_token_prints_only_the_token_which_then_authenticates(world):
    out, err = run(
        "issue_token",
        "--org",
        "acme",
        "--name",
        "ci",
        "--role",
        "admin",
        "--expires-in",
        "12h",
        "--allowed-address",
        "10.0.0.0/8",
    )
    secret = out.strip()
    assert secret.startswith("kwo_") and "\n" not in secret
    assert "ci" in err and secret not in err and "not shown again" in err
    principal = authenticate(f"Bearer {secret}", "10.1.1.1").principal
    assert principal.token.name == "ci"
    event = AuditEvent.objects.get(action="token.created", object_id=str(principal.token.pk))
    assert event.actor_name == "command line" and event.actor_kind == "operator"


def test_issue_token_makes_group_tokens_and_custom_permission_sets(world):
    out, _ = run(
        "issue_token",
        "--org",
        "acme",
        "--group",
        "platform",
        "--name",
        "deploy",
        "--permission",
        "api.api-tokens.read",
        "--permission",
        "api.usage.read",
    )
    token = ApiToken.objects.get(name="deploy")
    assert out.startswith("kwg_") and token.group == world.platform
    assert token.role == "custom" and token.permissions == ["api.api-tokens.read", "api.usage.read"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--org", "nope", "--name", "x", "--role", "admin"], "No organization 'nope'"),
        (["--org", "acme", "--group", "nope", "--name", "x", "--role", "admin"], "No group 'nope'"),
        (
            ["--org", "acme", "--name", "x", "--role", "admin", "--expires-in", "soon"],
            "--expires-in",
        ),
        (["--org", "acme", "--name", "x", "--permission", "api.nope.read"], "Unknown permission"),
        (
            ["--org", "acme", "--name", "x", "--role", "admin", "--allowed-address", "nope"],
            "allowed_addresses",
        ),
        (["--org", "acme", "--name", "", "--role", "admin"], "name"),
    ],
)
def test_issue_token_explains_what_is_wrong_and_creates_nothing(world, args, message):
    with pytest.raises(CommandError, match=message):
        run("issue_token", *args)
    assert not ApiToken.objects.exists()


def test_issue_token_on_the_command_line_writes_the_token_alone_to_stdout(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}", "PATH": "/usr/bin:/bin"}
    python = sys.executable

    def manage(*args):
        return subprocess.run(
            [python, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert manage("migrate", "-v0").returncode == 0
    assert manage("create_org", "cli", "--name", "CLI").returncode == 0
    result = manage("issue_token", "--org", "cli", "--name", "script", "--role", "member")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("kwo_") and len(result.stdout.strip()) == 53
    assert result.stdout.strip() not in result.stderr
    failure = manage("issue_token", "--org", "missing", "--name", "x", "--role", "member")
    assert failure.returncode != 0 and "No organization 'missing'" in failure.stderr


def test_demo_is_idempotent_and_has_tokens_in_every_state():
    out, _ = run("demo")
    assert "alice" in out and "keyward-demo" in out
    counts = (User.objects.count(), ApiToken.objects.count(), Organization.objects.count())
    run("demo")
    assert (User.objects.count(), ApiToken.objects.count(), Organization.objects.count()) == counts
    assert Organization.objects.count() == 2
    statuses = {token.display_status() for token in ApiToken.objects.all()}
    assert statuses == {"active", "revoked", "expired"}
    assert ApiToken.objects.filter(scope="group").exists()
    assert ApiToken.objects.filter(scope="personal").exists()
    assert User.objects.get(username="alice").check_password("keyward-demo")


def test_demo_names_the_address_the_console_is_served_at(settings):
    # make run PORT=8101 sets KEYWARD_CONSOLE_URL to the address it serves.
    settings.KEYWARD_CONSOLE_URL = "http://127.0.0.1:8101"
    out, _ = run("demo")
    assert "Sign in at http://127.0.0.1:8101 with any of these" in out


def test_the_demo_lets_acme_edit_permissions_and_leaves_globex_the_default():
    run("demo")
    acme = Organization.objects.get(slug="acme").security_policy
    globex = Organization.objects.get(slug="globex").security_policy
    assert acme.organization_tokens.permission_edits_allowed
    assert acme.personal_tokens.permission_edits_allowed
    assert not globex.organization_tokens.permission_edits_allowed


def test_make_run_serves_and_announces_the_port_it_is_given():
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    dry_run = subprocess.run(
        ["make", "-n", "run", "PORT=8101"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "KEYWARD_CONSOLE_URL ?= http://$(HOST):$(PORT)" in makefile
    assert 'echo "Keyward console: http://127.0.0.1:8101"' in dry_run
    assert "runserver 127.0.0.1:8101" in dry_run
