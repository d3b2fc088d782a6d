"""Production refuses to start without its secrets; development makes its own."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k" * 20 + "Zq8x!v2@Lm#9pW4rT6yB1nC3dF5gH7jK0sA",
    "KEYWARD_TOKEN_PEPPERS": "p1:" + "s" * 16 + "0a9B8c7D6e5F4g3H2i1J",
    "DJANGO_ALLOWED_HOSTS": "keyward.example.com",
    "KEYWARD_WEBHOOK_SECRET_KEYS": "w" * 12 + "Hq3Lz8Rk1Vb6Nm0Tp5Xc7Yd2",
    "PATH": "/usr/bin:/bin",
}


def manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "missing",
    [
        "DJANGO_SECRET_KEY",
        "KEYWARD_TOKEN_PEPPERS",
        "DJANGO_ALLOWED_HOSTS",
        "KEYWARD_WEBHOOK_SECRET_KEYS",
    ],
)
def test_production_refuses_to_start_without_a_secret_and_names_the_variable(missing):
    env = {key: value for key, value in PRODUCTION.items() if key != missing}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_refuses_a_short_pepper():
    result = manage("check", env={**PRODUCTION, "KEYWARD_TOKEN_PEPPERS": "p1:short"})
    assert result.returncode != 0 and "too short" in result.stderr


def test_production_refuses_a_short_webhook_secret_key():
    result = manage("check", env={**PRODUCTION, "KEYWARD_WEBHOOK_SECRET_KEYS": "short"})
    assert result.returncode != 0 and "KEYWARD_WEBHOOK_SECRET_KEYS" in result.stderr


def test_production_sends_webhooks_over_https_only():
    script = "from django.conf import settings as s; print(s.KEYWARD_WEBHOOK_HTTPS_ONLY)"
    result = manage("shell", "-c", script, env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"


def test_the_deployment_checklist_passes_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_argon2_hashes_human_passwords():
    from config import settings as configured

    assert configured.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_peppers_parse_with_ids_and_the_last_one_is_the_newest():
    from config.settings import parse_peppers

    peppers = parse_peppers("old:" + "a" * 32 + ", new:" + "b" * 32)
    assert [pepper_id for pepper_id, _ in peppers] == ["old", "new"]


def test_production_cookies_are_secure_and_http_only():
    script = (
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_SECURE, "
        "s.CSRF_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0)"
    )
    result = manage("shell", "-c", script, env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["True"] * 6


APPS = ("access", "api", "mail", "orgs", "people", "policies", "tokens", "webhooks")


def test_every_keyward_setting_the_apps_read_is_declared_in_the_settings():
    """One place says what each setting is and its default: no app falls back to a default
    of its own with getattr, so a setting cannot mean two things."""
    import re

    from django.conf import settings

    used: dict[str, str] = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            text = path.read_text()
            for name in re.findall(r"settings\.(KEYWARD_[A-Z0-9_]+)", text):
                used.setdefault(name, str(path.relative_to(ROOT)))
            assert not re.search(r"getattr\(\s*settings,\s*[\"']KEYWARD_", text), path
    assert used, "the scan found no settings at all"
    missing = {name: where for name, where in used.items() if not hasattr(settings, name)}
    assert not missing
