from django.core.management.base import BaseCommand

from policies.services import finish_unfinished


class Command(BaseCommand):
    help = (
        "Finish security policy changes that a crash left half applied to their tokens (the "
        "policy itself is in force already). The background worker (deliver_webhooks) does this "
        "too; run it by hand after restoring a backup or when no worker runs."
    )

    def handle(self, *args: object, **options: object) -> None:
        finished = finish_unfinished()
        self.stdout.write(f"{finished} unfinished policy change(s) finished.")
