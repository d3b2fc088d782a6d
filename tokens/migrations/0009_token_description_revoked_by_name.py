import django.db.models.functions.text
from django.db import migrations, models
from django.db.models import F


def name_revokers(apps, schema_editor):
    # A revocation was the token's last change until now (restoring clears it; other changes
    # of a revoked token are rare), so the name recorded with that change names the revoker.
    ApiToken = apps.get_model("tokens", "ApiToken")
    ApiToken.objects.filter(status="revoked").update(revoked_by_name=F("modified_by_name"))


class Migration(migrations.Migration):
    dependencies = [("tokens", "0008_token_name_trigram_index_in_postgresql")]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="description",
            field=models.TextField(blank=True, default="", max_length=1000),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="revoked_by_name",
            field=models.CharField(blank=True, default="", max_length=150),
        ),
        migrations.RunPython(name_revokers, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="apitoken",
            index=models.Index(fields=["organization", "expires_at"], name="token_org_expires_at"),
        ),
        migrations.AddIndex(
            model_name="apitoken",
            index=models.Index(
                F("organization"),
                F("scope"),
                django.db.models.functions.text.Lower("name"),
                F("id"),
                name="token_org_scope_lower_name",
            ),
        ),
    ]
