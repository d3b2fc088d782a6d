"""Two gunicorn instances on one database: a revocation through one is seen by the other at
once, with or without a shared Redis cache."""

import json
import os
import socket
import urllib.error
import urllib.request
import uuid

import pytest

from bench.serve import gunicorn, manage, production_environment

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(port, path, token, method="GET", body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data=json.dumps(body).encode() if body is not None else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def database_url(tmp_path):
    """A database of its own: a SQLite file, or a fresh PostgreSQL database under CI's."""
    configured = os.environ.get("DATABASE_URL", "")
    if not configured.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'scale.sqlite3'}"
        return
    import psycopg

    name = f"keyward_scale_{uuid.uuid4().hex[:8]}"
    admin_url = configured.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield configured.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("shared_cache", [False, True], ids=["no-cache", "redis"])
def test_a_revocation_through_one_instance_is_refused_at_once_by_the_other(
    database_url, shared_cache
):
    extra = {}
    if shared_cache:
        if not redis_answers():
            pytest.skip("no Redis at 127.0.0.1:6379")
        extra["REDIS_URL"] = "redis://127.0.0.1:6379/15"
    environment = production_environment(database_url, **extra)
    manage(environment, "migrate", "--noinput")
    manage(environment, "create_org", "scale", "--name", "Scale")
    admin = manage(
        environment, "issue_token", "--org", "scale", "--name", "admin", "--role", "admin"
    ).strip()
    worker = manage(
        environment, "issue_token", "--org", "scale", "--name", "worker", "--role", "member"
    ).strip()
    first, second = free_port(), free_port()
    with gunicorn(environment, first, workers=2), gunicorn(environment, second, workers=2):
        status, body = call(second, "/api/v1/me", worker)
        assert status == 200
        token_id = body["tokenId"]
        for _ in range(5):  # warm every worker of the second instance
            assert call(second, "/api/v1/me", worker)[0] == 200
        status, _ = call(
            first, f"/api/v1/api-tokens/{token_id}/revoke", admin, "POST", {"reason": "scale test"}
        )
        assert status == 200
        for _ in range(5):  # the very next request, whichever worker answers
            assert call(second, "/api/v1/me", worker)[0] == 401
        assert call(first, "/api/v1/me", admin)[0] == 200
