"""The worker process is killed (SIGKILL: no cleanup, no signal handler) in the middle of a
batch; the next run finishes the work, does nothing twice and skips nothing.

Each command runs as its own process against a database of its own (a SQLite file, or a fresh
PostgreSQL database), and is stopped at a chosen point: while a receiver or the mail server
holds its request unanswered, or while the test holds a lock the next step of its batch needs.
The rerun happens after the dead worker's lease (or claim) has run out, played in the rerun's
process by moving its clock forward.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from contextlib import contextmanager

import pytest

from bench.serve import PYTHON, ROOT, manage, production_environment
from tests.faults.smtp import SmtpServer
from tests.webhooks.receiver import Answer, Receiver

pytestmark = pytest.mark.slow

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


@pytest.fixture
def live_database(tmp_path):
    """A database of its own that separate processes share: a SQLite file, or a fresh
    PostgreSQL database under the suite's."""
    configured = os.environ.get("DATABASE_URL", "")
    if not configured.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'killed.sqlite3'}"
        return
    import psycopg

    name = f"keyward_killed_{uuid.uuid4().hex[:8]}"
    admin_url = configured.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield configured.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def direct(url):
    """A connection of the test's own to the live database (autocommit)."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("PRAGMA busy_timeout=10000")
        try:
            yield connection
        finally:
            connection.close()
        return
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True) as c:
        yield c


def rows(url, query, params=()):
    with direct(url) as connection:
        return list(
            connection.execute(query.replace("%s", "?") if "sqlite" in url else query, params)
        )


def start(environment, *args):
    return subprocess.Popen(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill(process):
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def later(environment, seconds, *command):
    """Run a management command in a process whose clock is ``seconds`` ahead."""
    script = (
        "import datetime, time_machine\n"
        "from django.core.management import call_command\n"
        "from django.utils import timezone\n"
        f"with time_machine.travel(timezone.now() + datetime.timedelta(seconds={seconds})):\n"
        f"    call_command(*{list(command)!r})\n"
    )
    return manage(environment, "shell", "-c", script)


def wait_until(condition, seconds=60, what="the worker to get there"):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


def test_a_webhook_worker_killed_mid_delivery_loses_nothing_and_repeats_nothing(
    live_database, settings
):
    receiver = Receiver().start()
    receiver.answer(Answer(), Answer(), Answer(delay=60))  # the third is held unanswered
    environment = production_environment(
        live_database,
        KEYWARD_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        KEYWARD_WEBHOOK_TIMEOUT_SECONDS="30",
        KEYWARD_EMAIL_SEND_AFTER_COMMIT="off",
    )
    try:
        manage(environment, "migrate", "--noinput")
        manage(environment, "create_org", "hooked", "--name", "Hooked")
        manage(
            environment,
            "shell",
            "-c",
            "from orgs.models import Organization\n"
            "from orgs.principals import Principal\n"
            "from tokens.services import create_token\n"
            "from webhooks.services import create_endpoint\n"
            "org = Organization.objects.get(slug='hooked')\n"
            "actor = Principal.operator(organization=org, label='faults')\n"
            f"create_endpoint(actor=actor, organization=org, url='{receiver.url()}',"
            " events=['token.created'])\n"
            "for number in range(6):\n"
            "    create_token(actor=actor, organization=org, name=f'hooked {number}',"
            " role='member', expires_at=None)\n",
        )
        worker = start(environment, "deliver_webhooks", "--poll", "0.2")
        wait_until(lambda: len(receiver.received) == 3, what="the third delivery")
        kill(worker)
        states = Counter(
            status
            for (status,) in rows(live_database, "SELECT status FROM webhooks_webhookdelivery")
        )
        assert states == {"succeeded": 2, "delivering": 1, "pending": 3}
        # A rerun at once leaves the dead worker's delivery alone (its lease runs) ...
        manage(environment, "deliver_webhooks", "--once")
        assert len(receiver.received) == 6
        # ... and a run after the lease sends it again.
        later(environment, 200, "deliver_webhooks", "--once")
    finally:
        receiver.stop()
    deliveries = rows(
        live_database, "SELECT message_id, status, attempts FROM webhooks_webhookdelivery"
    )
    assert len(deliveries) == 6
    assert {status for _id, status, _attempts in deliveries} == {"succeeded"}
    received = Counter(receiver.ids())
    for message_id, _status, attempts in deliveries:
        # The one in flight at the kill was never answered, so it is sent once more (same
        # webhook-id, for receivers that deduplicate); every answered one exactly once.
        assert received[message_id] == attempts
    assert sorted(received.values()) == [1, 1, 1, 1, 1, 2]


def test_a_mail_sender_killed_mid_batch_sends_every_message_exactly_once(live_database):
    smtp = SmtpServer(stall_at=3).start()
    environment = production_environment(
        live_database,
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        EMAIL_TIMEOUT="60",
        KEYWARD_EMAIL_SEND_AFTER_COMMIT="off",
    )
    try:
        manage(environment, "migrate", "--noinput")
        manage(
            environment,
            "shell",
            "-c",
            "from mail import outbox\n"
            "for number in range(6):\n"
            "    outbox.queue(to=[f'person{number}@example.com'], subject=f'message {number}',"
            " body='x', purpose='test', send_after_commit=False)\n",
        )
        sender = start(environment, "send_email")
        wait_until(smtp.stalled.is_set, what="the third message")
        kill(sender)
        smtp.release.set()
        states = Counter(
            status for (status,) in rows(live_database, "SELECT status FROM mail_outgoingemail")
        )
        assert states == {"sent": 2, "pending": 4}
        manage(environment, "send_email", "--once")  # the dead sender's claim still holds
        assert len(smtp.messages) == 5
        later(environment, 301, "send_email", "--once")  # its claim (5 minutes) has run out
    finally:
        smtp.stop()
    assert sorted(smtp.subjects()) == [f"message {number}" for number in range(6)]
    assert rows(live_database, "SELECT DISTINCT status FROM mail_outgoingemail") == [("sent",)]


def test_cleanup_killed_mid_batch_finishes_on_the_rerun_and_keeps_what_it_must(live_database):
    environment = production_environment(live_database)
    manage(environment, "migrate", "--noinput")
    manage(
        environment,
        "shell",
        "-c",
        "from bench.seed import organization_with_tokens\n"
        "organization_with_tokens('gone', 4000, expired_days_ago=60)\n"
        "organization_with_tokens('kept', 30)\n",
    )
    expired = [
        token_id
        for (token_id,) in rows(
            live_database,
            "SELECT t.id FROM tokens_apitoken t JOIN orgs_organization o "
            "ON o.id = t.organization_id WHERE o.slug = 'gone' ORDER BY t.id",
        )
    ]
    assert len(expired) == 4000
    batch = 10
    with direct(live_database) as blocker:
        if ON_POSTGRES:
            # Lock a secret of a token in the sixth batch: that batch claims its tokens,
            # starts deleting, and waits there, mid-batch, until it is killed.
            blocker.execute("BEGIN")
            blocker.execute(
                "SELECT id FROM tokens_tokensecret WHERE token_id = %s FOR UPDATE",
                [expired[5 * batch + 3]],
            )
        cleanup = start(environment, "cleanup_tokens", "--batch-size", str(batch))
        if ON_POSTGRES:
            wait_until(
                lambda: (
                    rows(live_database, "SELECT count(*) FROM tokens_apitoken")[0][0]
                    == 4030 - 5 * batch
                ),
                what="five batches",
            )
            time.sleep(0.5)  # the sixth is now waiting for the locked secret
        else:
            # SQLite commits a batch whole or not at all: killed wherever it is once some are
            # done, it leaves whole batches. (Taking the write lock to stop it between two
            # batches raced with it: the run takes the lock again at once after each commit,
            # and a fast run finished before the lock was granted.)
            wait_until(
                lambda: (
                    rows(live_database, "SELECT count(*) FROM tokens_apitoken")[0][0]
                    <= 4030 - 5 * batch
                ),
                what="five batches",
            )
        kill(cleanup)
        if ON_POSTGRES:
            blocker.execute("ROLLBACK")
    if ON_POSTGRES:
        # The killed process's server session notices its client is gone and rolls back.
        wait_until(
            lambda: (
                rows(
                    live_database,
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )[0][0]
                == 0
            ),
            what="the killed session to end",
        )
    left = rows(live_database, "SELECT count(*) FROM tokens_apitoken")[0][0]
    assert 30 < left < 4030 and (4030 - left) % batch == 0  # whole batches only
    manage(environment, "cleanup_tokens", "--batch-size", str(batch))
    remaining = rows(
        live_database,
        "SELECT o.slug, count(*) FROM tokens_apitoken t JOIN orgs_organization o "
        "ON o.id = t.organization_id GROUP BY o.slug",
    )
    assert remaining == [("kept", 30)]
    assert rows(live_database, "SELECT count(*) FROM tokens_tokensecret")[0][0] == 30
    # Every technical user of a deleted token is deactivated, none of a kept one.
    active_without_token = rows(
        live_database,
        "SELECT count(*) FROM orgs_user u WHERE u.kind = 'technical' AND u.is_active "
        "AND NOT EXISTS (SELECT 1 FROM tokens_apitoken t WHERE t.user_id = u.id)",
    )[0][0]
    assert active_without_token == 0
