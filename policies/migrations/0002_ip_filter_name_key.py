from django.db import migrations, models

import orgs.models

from orgs.name_rule import migrate


class Migration(migrations.Migration):
    """IP filter names follow the one rule for names (orgs.names): repaired where they break it,
    unique in the organization by look-alike key (not only by case). Each repair is audited."""

    dependencies = [("policies", "0001_initial"), ("orgs", "0005_group_name_key")]

    operations = [
        migrations.RemoveConstraint(model_name="ipfilter", name="ip_filter_name_unique_in_org"),
        migrations.AddField(
            model_name="ipfilter",
            name="name_key",
            field=orgs.models.NameKeyField(default="", editable=False, max_length=400),
            preserve_default=False,
        ),
        migrations.RunPython(migrate("policies.IpFilter"), migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="ipfilter",
            constraint=models.UniqueConstraint(
                fields=("organization", "name_key"), name="ip_filter_name_unique_in_org"
            ),
        ),
    ]
