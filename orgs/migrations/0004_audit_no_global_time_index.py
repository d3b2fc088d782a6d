"""Drop the index on orgs_auditevent.occurred_at alone.

With prepared statements PostgreSQL may plan a page once for any organization; that generic
plan walked this index backwards through every organization's events (seconds for a small
organization beside a large one). Every read now starts with the organization
(audit_org_time_id), retention included. Dropping an index is quick on both databases; the
field is only told it has no index (no table rebuild on SQLite).
"""

from django.db import migrations, models
import django.utils.timezone


def _time_index_names(schema_editor, model):
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(
            cursor, model._meta.db_table
        )
    return [
        name
        for name, info in constraints.items()
        if info["index"] and not info["primary_key"] and info["columns"] == ["occurred_at"]
    ]


def drop_time_index(apps, schema_editor):
    model = apps.get_model("orgs", "AuditEvent")
    for name in _time_index_names(schema_editor, model):
        schema_editor.execute(schema_editor._delete_index_sql(model, name))


def create_time_index(apps, schema_editor):
    model = apps.get_model("orgs", "AuditEvent")
    if not _time_index_names(schema_editor, model):
        field = model._meta.get_field("occurred_at")
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):

    dependencies = [
        ("orgs", "0003_audit_indexes_for_keyset_pages"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="occurred_at",
                    field=models.DateTimeField(default=django.utils.timezone.now),
                ),
            ],
            database_operations=[migrations.RunPython(drop_time_index, create_time_index)],
        ),
    ]
