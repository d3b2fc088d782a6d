"""The receiver docs/webhooks.md shows works: the worker's deliveries verify with it, and a
forged or replayed one is refused."""

import re
import threading
import time
from datetime import UTC
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from tests.factories import issue
from webhooks import services, worker
from webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def documented_receiver():
    text = DOCS.read_text()
    (code,) = re.findall(r"```python\n(# receiver\.py.*?)```", text, re.S)
    return code


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def docs_receiver(settings, monkeypatch, org_admin, world, capsys):
    settings.KEYWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    server = make_server("127.0.0.1", 0, lambda e, s: app(e, s), handler_class=Quiet)
    url = f"http://127.0.0.1:{server.server_port}/"
    issued = services.create_endpoint(
        actor=org_admin, organization=world.acme, url=url, events=["token.*"]
    )
    monkeypatch.setenv("KEYWARD_WEBHOOK_SECRET", issued.secret)
    namespace = {"__name__": "receiver"}
    exec(compile(documented_receiver(), "docs/webhooks.md", "exec"), namespace)
    app = namespace["app"]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    yield url, issued, namespace
    server.shutdown()
    server.server_close()


def test_the_documented_receiver_verifies_every_delivery_and_handles_each_message_once(
    docs_receiver, org_admin, capsys
):
    url, issued, namespace = docs_receiver
    issue(org_admin, name="deploy")
    services.rotate_secret(actor=org_admin, endpoint=issued.endpoint)  # two signatures now
    issue(org_admin, name="second")
    worker.deliver_due()
    deliveries = WebhookDelivery.objects.filter(endpoint=issued.endpoint)
    assert deliveries.count() == 2
    assert all(
        d.status == DeliveryStatus.SUCCEEDED and d.last_status_code == 204 for d in deliveries
    )
    first = deliveries.order_by("pk").first()
    services.redeliver(actor=org_admin, delivery=first)
    worker.deliver_due()
    assert len(namespace["handled"]) == 2  # the redelivery repeated a webhook-id
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [
        "token.created"
    ] * 2


def test_the_documented_receiver_refuses_a_forged_or_stale_message(docs_receiver):
    url, issued, _ = docs_receiver
    headers = {
        "webhook-id": "msg_forged",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    }
    assert httpx.post(url, content=b"{}", headers=headers).status_code == 400
    from datetime import datetime, timedelta

    from standardwebhooks.webhooks import Webhook

    old = datetime.now(UTC) - timedelta(minutes=10)
    signed = Webhook(issued.secret).sign("msg_old", old, "{}")
    stale = {
        "webhook-id": "msg_old",
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": signed,
    }
    assert httpx.post(url, content=b"{}", headers=stale).status_code == 400
    assert httpx.post(url, content=b"{}").status_code == 400
