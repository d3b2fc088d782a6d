from django.db import migrations, models

import orgs.models

from orgs.name_rule import migrate


class Migration(migrations.Migration):
    """Group names follow the one rule for names (orgs.names): repaired where they break it,
    unique in the organization by look-alike key. Each repair is an audit event."""

    dependencies = [("orgs", "0004_audit_no_global_time_index")]

    operations = [
        migrations.AddField(
            model_name="group",
            name="name_key",
            field=orgs.models.NameKeyField(default="", editable=False, max_length=400),
            preserve_default=False,
        ),
        migrations.RunPython(migrate("orgs.Group"), migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="group",
            constraint=models.UniqueConstraint(
                fields=("organization", "name_key"), name="group_name_unique_in_org"
            ),
        ),
    ]
