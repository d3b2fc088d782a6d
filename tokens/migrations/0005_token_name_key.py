from django.db import migrations, models

import orgs.models
from django.db.models import Q

from orgs.name_rule import migrate


class Migration(migrations.Migration):
    """Token names follow the one rule for names (orgs.names): repaired where they break it (a
    token pasted into a name is masked), unique in their scope by look-alike key. Each repair
    is an audit event; the technical user keeps the token's name."""

    dependencies = [("tokens", "0004_revoked_by"), ("orgs", "0005_group_name_key")]

    operations = [
        migrations.RemoveConstraint(model_name="apitoken", name="token_name_unique_in_org"),
        migrations.RemoveConstraint(model_name="apitoken", name="token_name_unique_in_group"),
        migrations.RemoveConstraint(model_name="apitoken", name="token_name_unique_per_owner"),
        migrations.AddField(
            model_name="apitoken",
            name="name_key",
            field=orgs.models.NameKeyField(default="", editable=False, max_length=400),
            preserve_default=False,
        ),
        migrations.RunPython(migrate("tokens.ApiToken"), migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.UniqueConstraint(
                condition=Q(scope="organization"),
                fields=("organization", "name_key"),
                name="token_name_unique_in_org",
            ),
        ),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.UniqueConstraint(
                condition=Q(scope="group"),
                fields=("group", "name_key"),
                name="token_name_unique_in_group",
            ),
        ),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.UniqueConstraint(
                condition=Q(scope="personal"),
                fields=("organization", "user", "name_key"),
                name="token_name_unique_per_owner",
            ),
        ),
    ]
