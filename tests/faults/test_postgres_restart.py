"""The database goes away under a load of authenticated requests and comes back.

Every connection to PostgreSQL runs through a proxy that the test cuts (open connections
dropped, new ones refused) and restores, as a restart does. Requests must fail cleanly with
503 while it is down, succeed again within seconds after, and leave no half-made change.
"""

import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from bench.serve import gunicorn, manage, production_environment
from tests.faultproxy import FaultProxy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="a database outage is played on PostgreSQL",
    ),
]
DOWN_SECONDS = 4
RECOVERY_LIMIT_SECONDS = 5


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(port, path, token, method="GET", body=None, timeout=15):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data=json.dumps(body).encode() if body is not None else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def fault_database():
    configured = os.environ["DATABASE_URL"]
    admin_url = configured.replace("postgres://", "postgresql://", 1)
    name = f"keyward_fault_{uuid.uuid4().hex[:8]}"
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    host_port = configured.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":") if ":" in host_port else (host_port, "5432")
    proxy = FaultProxy(host, int(port)).start()
    user = configured.split("://", 1)[1].split("@", 1)[0]
    direct = f"postgres://{user}@{host}:{port}/{name}"
    through_proxy = f"postgres://{user}@127.0.0.1:{proxy.port}/{name}?connect_timeout=2"
    yield direct, through_proxy, proxy
    proxy.stop()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_outage_gives_clean_503s_then_recovers_with_nothing_half_written(fault_database):
    direct, through_proxy, proxy = fault_database
    setup = production_environment(direct)
    manage(setup, "migrate", "--noinput")
    manage(setup, "create_org", "fault", "--name", "Fault")
    admin = manage(
        setup, "issue_token", "--org", "fault", "--name", "admin", "--role", "admin"
    ).strip()
    readers = [
        manage(
            setup, "issue_token", "--org", "fault", "--name", f"reader {index}", "--role", "member"
        ).strip()
        for index in range(5)
    ]
    rotating_ids = []
    environment = production_environment(
        through_proxy,
        KEYWARD_TOKEN_PEPPERS=setup["KEYWARD_TOKEN_PEPPERS"],
        DJANGO_CONN_MAX_AGE="60",
    )
    port = free_port()
    results = []  # (phase, status, seconds, body)
    phase = {"name": "before"}
    stop = threading.Event()

    def read_load():
        while not stop.is_set():
            start = time.monotonic()
            status, body = call(port, "/api/v1/me", random.choice(readers))
            results.append((phase["name"], status, time.monotonic() - start, body))

    def write_load():
        while not stop.is_set():
            token_id = random.choice(rotating_ids)
            start = time.monotonic()
            status, body = call(
                port, f"/api/v1/api-tokens/{token_id}/regenerate", admin, "POST", {}
            )
            results.append((phase["name"], status, time.monotonic() - start, body))

    with gunicorn(environment, port, workers=3):
        for index in range(3):
            status, body = call(
                port,
                "/api/v1/api-tokens",
                admin,
                "POST",
                {"name": f"rotating {index}", "role": "member"},
            )
            assert status == 201, body
            rotating_ids.append(json.loads(body)["id"])
        threads = [threading.Thread(target=read_load) for _ in range(4)]
        threads.append(threading.Thread(target=write_load))
        for thread in threads:
            thread.start()
        time.sleep(2)
        phase["name"] = "down"
        proxy.go_down()
        time.sleep(DOWN_SECONDS)
        phase["name"] = "recovering"
        proxy.come_back()
        recovered_at = time.monotonic()
        time.sleep(RECOVERY_LIMIT_SECONDS)
        phase["name"] = "after"
        time.sleep(2)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert time.monotonic() - recovered_at < 60

    statuses = {
        name: [status for phase_name, status, _, _ in results if phase_name == name]
        for name in ("before", "down", "recovering", "after")
    }
    assert statuses["before"] and set(statuses["before"]) <= {200}
    assert 503 in statuses["down"], statuses["down"][:20]
    assert set(statuses["down"]) <= {200, 503}  # never a 500, never a 401 for a good token
    for _, status, seconds, body in results:
        assert status != 500
        assert seconds < 15  # no hang
        if status == 503:
            assert json.loads(body)["error"]["code"] == "service_unavailable"
            assert "Traceback" not in body and "psycopg" not in body
    assert statuses["after"] and set(statuses["after"]) <= {200}

    # Invariants, read straight from the database.
    import psycopg

    with psycopg.connect(direct.replace("postgres://", "postgresql://", 1)) as connection:
        rows = connection.execute(
            "SELECT t.id, t.version, "
            "(SELECT count(*) FROM tokens_tokensecret s "
            " WHERE s.token_id = t.id AND s.ends_at IS NULL), "
            "(SELECT count(*) FROM orgs_auditevent e "
            " WHERE e.object_type = 'api_token' AND e.object_id = t.id::text) "
            "FROM tokens_apitoken t"
        ).fetchall()
    assert rows
    for token_id, version, current_secrets, events in rows:
        assert current_secrets == 1, f"token {token_id} has {current_secrets} current secrets"
        assert events == version, f"token {token_id}: version {version} but {events} audit events"
