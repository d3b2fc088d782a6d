"""Drop the index on tokens_apitoken.organization_id alone.

On PostgreSQL the planner took it for a policy change's batches (an id range within the
organization) and filtered the whole organization for each batch of 1,000 tokens, where
token_org_id (organization, id) walks just the range: the apply of a policy grew with the
square of the organization's tokens (bench/RESULTS.md, section 9). Every query on the organization alone is served by an index that starts with it
(token_org_id, token_org_scope_name and others), so this one only cost a write per row changed. The field is only told it has
no index of its own (no table rebuild on SQLite); the foreign key stays.
"""

from django.db import migrations, models
import django.db.models.deletion


def _organization_index_names(schema_editor, model):
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(
            cursor, model._meta.db_table
        )
    return [
        name
        for name, info in constraints.items()
        if info["index"]
        and not info["primary_key"]
        and not info["unique"]
        and info["columns"] == ["organization_id"]
    ]


def drop_organization_index(apps, schema_editor):
    model = apps.get_model("tokens", "ApiToken")
    for name in _organization_index_names(schema_editor, model):
        schema_editor.execute(schema_editor._delete_index_sql(model, name))


def create_organization_index(apps, schema_editor):
    model = apps.get_model("tokens", "ApiToken")
    if not _organization_index_names(schema_editor, model):
        field = model._meta.get_field("organization")
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):

    dependencies = [
        ("tokens", "0010_token_leaks"),
        ("orgs", "0006_audit_export"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="apitoken",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_tokens",
                        to="orgs.organization",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_organization_index, create_organization_index)
            ],
        ),
    ]
