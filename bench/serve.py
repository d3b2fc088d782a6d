"""Run Keyward under gunicorn with production settings, for load and scale-out checks."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))


def production_environment(database_url: str, **extra: str) -> dict[str, str]:
    """Environment for a production-mode process (secrets generated for this run)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    environment.update(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
            "KEYWARD_TOKEN_PEPPERS": os.environ.get(
                "KEYWARD_TOKEN_PEPPERS", f"bench:{secrets.token_urlsafe(32)}"
            ),
            "KEYWARD_WEBHOOK_SECRET_KEYS": os.environ.get(
                "KEYWARD_WEBHOOK_SECRET_KEYS", secrets.token_urlsafe(32)
            ),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": database_url,
            "KEYWARD_LOG_LEVEL": "WARNING",
        }
    )
    environment.update(extra)
    return environment


def manage(environment: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def seed_tokens(environment: dict[str, str], count: int) -> Path:
    """An organization "load" with ``count`` member tokens; a file of their secrets, one a
    line (for wrk's script to pick from)."""
    manage(environment, "create_org", "load", "--name", "Load")
    seed = (
        "from orgs.models import Organization\n"
        "from orgs.principals import Principal\n"
        "from tokens.services import create_token\n"
        "org = Organization.objects.get(slug='load')\n"
        "actor = Principal.operator(organization=org, label='bench')\n"
        f"for i in range({count}):\n"
        "    print(create_token(actor=actor, organization=org, name=f'load {i}', role='member',"
        " expires_at=None).secret)\n"
    )
    # Only the tokens: the shell may print a banner of its own.
    tokens = [
        word for word in manage(environment, "shell", "-c", seed).split() if word.startswith("kwo_")
    ]
    tokens_file = Path(tempfile.mkstemp(suffix=".txt")[1])
    tokens_file.write_text("\n".join(tokens) + "\n")
    return tokens_file


def wait_until_up(port: int, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            # Refused while binding, or slow to answer while workers boot on a loaded machine
            # (a read timeout is an OSError, not a URLError).
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn on port {port} did not answer within {seconds} s")


class Server(subprocess.Popen[bytes]):
    """A running gunicorn, and the file it logs to."""

    log_path: str


@contextmanager
def gunicorn(environment: dict[str, str], port: int, *, workers: int = 5, threads: int = 1):
    """The recommended production command (docs/deploy.md), bound to loopback."""
    command = [
        GUNICORN,
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--max-requests",
        "0",
        "--timeout",
        "30",
        "--log-level",
        "warning",
    ]
    # A file, not a pipe: nobody reads a pipe while the server runs, and workers logging into
    # a full pipe block.
    with tempfile.NamedTemporaryFile("w+", prefix=f"gunicorn-{port}-", suffix=".log") as log:
        process = Server(
            command,
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        process.log_path = log.name  # what the server logged, readable until the block ends
        try:
            wait_until_up(port)
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
