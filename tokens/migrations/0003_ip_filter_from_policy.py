from django.db import migrations, models

SCOPE_FIELDS = {
    "organization": "organization_tokens",
    "group": "group_tokens",
    "personal": "personal_tokens",
}


def mark_enforced_filters(apps, schema_editor):
    """Tokens that carry the filter their scope's policy enforces got it from the policy (the
    only way a token could hold it when the policy does not let tokens choose their own)."""
    SecurityPolicy = apps.get_model("policies", "SecurityPolicy")
    ApiToken = apps.get_model("tokens", "ApiToken")
    for policy in SecurityPolicy.objects.select_related(*SCOPE_FIELDS.values()):
        for scope, field in SCOPE_FIELDS.items():
            enforced = getattr(policy, field).enforced_ip_filter_id
            if enforced is not None:
                ApiToken.objects.filter(
                    organization_id=policy.organization_id, scope=scope, ip_filter_id=enforced
                ).update(ip_filter_from_policy=True)


class Migration(migrations.Migration):
    dependencies = [
        ("tokens", "0002_expiry_reminder"),
        ("policies", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="ip_filter_from_policy",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(mark_enforced_filters, migrations.RunPython.noop),
    ]
