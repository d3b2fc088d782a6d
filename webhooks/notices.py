"""E-mails about endpoints, through the e-mail outbox (``mail``): written in the transaction
of the change, sent after it commits; one that cannot be sent stays queued and is retried (the
webhook worker also sends due e-mail)."""

from __future__ import annotations

from datetime import datetime

from mail import outbox
from orgs.models import OrganizationMembership, Role
from webhooks.models import WebhookEndpoint


def _admin_addresses(organization_id: int) -> list[str]:
    return sorted(
        {
            email
            for email in OrganizationMembership.objects.filter(
                organization_id=organization_id,
                role=Role.ADMIN,
                user__is_active=True,
            )
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        }
    )


def queue_deactivation_notice(endpoint: WebhookEndpoint, shown_url: str, now: datetime) -> None:
    """Queue, in the e-mail outbox, the message telling the organization's admins an endpoint
    was turned off; it goes out once the surrounding transaction commits."""
    organization = endpoint.organization
    name = endpoint.description or shown_url
    failing_since = endpoint.failing_since or now
    outbox.queue(
        to=_admin_addresses(endpoint.organization_id),
        subject=f"[Keyward] Webhook endpoint {name} turned off in {organization.name}",
        body="\n".join(
            [
                f"Keyward turned off the webhook endpoint {name} ({shown_url}) of "
                f"{organization.name}: every delivery to it has failed since "
                f"{failing_since:%Y-%m-%d %H:%M} UTC.",
                "",
                "Its queued events were not sent. Once the receiver works again, turn the "
                "endpoint back on from the Webhooks page of the console and redeliver the "
                "events it missed.",
            ]
        ),
        purpose="webhook_endpoint_disabled",
    )
