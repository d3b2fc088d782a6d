"""Redis goes down under load and comes back, with Keyward under gunicorn as deployed: no
request of a valid token fails, each worker warns once, and each is back on Redis without a
restart. (bench/redis_cut.py plays the same with wrk for 30 s and records the figures.)"""

import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis

from bench.faultproxy import FaultProxy
from bench.serve import gunicorn, manage, production_environment
from tests.faults.conftest import REDIS_DB, REDIS_HOST, REDIS_PORT, redis_answers
from tests.faults.live import call, free_port

pytestmark = pytest.mark.slow
WORKERS = 2


@pytest.fixture
def database_url(tmp_path):
    configured = os.environ.get("DATABASE_URL", "")
    if not configured.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'redis-load.sqlite3'}"
        return
    import psycopg

    name = f"keyward_redis_load_{uuid.uuid4().hex[:8]}"
    admin_url = configured.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield configured.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_redis_cut_under_load_fails_no_valid_request_and_is_used_again_after(database_url):
    if not redis_answers():
        pytest.skip(f"no Redis at {REDIS_HOST}:{REDIS_PORT}")
    direct = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    direct.flushdb()
    proxy = FaultProxy(REDIS_HOST, REDIS_PORT).start()
    environment = production_environment(
        database_url,
        REDIS_URL=f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}",
        KEYWARD_LOG_LEVEL="INFO",
    )
    manage(environment, "migrate", "--noinput")
    manage(environment, "create_org", "load", "--name", "Load")
    tokens = [
        manage(
            environment, "issue_token", "--org", "load", "--name", f"reader {n}", "--role", "member"
        ).strip()
        for n in range(4)
    ]
    port = free_port()
    results = []  # (phase, valid, status)
    phase = {"name": "before"}
    stop = threading.Event()

    def load(valid):
        number = 0
        while not stop.is_set():
            number += 1
            token = tokens[number % len(tokens)] if valid else f"kwo_not-a-token-{number}"
            status, _body = call(port, "/api/v1/me", token, timeout=15)
            results.append((phase["name"], valid, status))

    try:
        with gunicorn(environment, port, workers=WORKERS) as server:
            threads = [threading.Thread(target=load, args=(True,)) for _ in range(3)]
            threads.append(threading.Thread(target=load, args=(False,)))
            for thread in threads:
                thread.start()
            time.sleep(2)
            phase["name"] = "down"
            proxy.go_down()
            time.sleep(3)
            phase["name"] = "back"
            proxy.come_back()
            time.sleep(8)  # past the 5 s backoff of every worker
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            log = Path(server.log_path).read_text()
    finally:
        proxy.stop()
    valid = Counter((name, status) for name, is_valid, status in results if is_valid)
    invalid = {status for _name, is_valid, status in results if not is_valid}
    assert valid[("before", 200)] and valid[("down", 200)] and valid[("back", 200)]
    assert set(status for _name, status in valid) == {200}, valid
    assert invalid <= {401, 429}, invalid
    warnings = log.count("Redis does not answer")
    assert 1 <= warnings <= WORKERS, log[-3000:]
    assert log.count("Redis answers again") == warnings
    assert " ERROR " not in log
    # Shared again: the workers count in Redis once more.
    assert direct.keys("*auth-failures*")
    direct.flushdb()
