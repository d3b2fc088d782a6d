from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from webhooks import signing
from webhooks.models import WebhookEndpoint


class Command(BaseCommand):
    help = (
        "Encrypt every stored webhook signing secret again with the newest key of "
        "KEYWARD_WEBHOOK_SECRET_KEYS, so an older key can then be removed. The secrets "
        "themselves do not change. Exits 1 if a secret cannot be decrypted with any key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        done = 0
        for endpoint_id in WebhookEndpoint.objects.values_list("pk", flat=True).iterator():
            with transaction.atomic():
                endpoint = (
                    WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
                )
                if endpoint is None:
                    continue
                try:
                    endpoint.secret_ciphertext = signing.reencrypt(endpoint.secret_ciphertext)
                    if endpoint.previous_secret_ciphertext:
                        endpoint.previous_secret_ciphertext = signing.reencrypt(
                            endpoint.previous_secret_ciphertext
                        )
                except signing.UnreadableSecret as error:
                    raise CommandError(f"Endpoint {endpoint.pk}: {error}") from None
                endpoint.save(update_fields=["secret_ciphertext", "previous_secret_ciphertext"])
            done += 1
        self.stdout.write(f"{done} endpoints re-encrypted with the newest key.")
