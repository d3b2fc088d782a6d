"""On PostgreSQL, a token's secrets, daily counts and reminders are deleted by the database
with the token (``ON DELETE CASCADE``), so that ``cleanup_tokens`` deletes a batch of tokens in
one statement instead of one per table plus a check of every deleted token at commit.

Django cannot declare a database-level cascade; this migration sets it on the existing
foreign keys, keeping their names and deferrability. Django's own deletes still delete those
rows first, which the cascade does not change. SQLite keeps its constraints as they are.
A later migration that alters one of these foreign keys recreates it without the cascade:
``cleanup_tokens`` reads the constraints and deletes the rows itself when it is gone.
"""

from django.db import migrations

DEPENDENTS = ("tokensecret", "tokenusage", "expiryreminder")


def _foreign_keys(apps, schema_editor):  # noqa: ANN001, ANN202
    connection = schema_editor.connection
    token_table = apps.get_model("tokens", "ApiToken")._meta.db_table
    with connection.cursor() as cursor:
        for model_name in DEPENDENTS:
            model = apps.get_model("tokens", model_name)
            table = model._meta.db_table
            column = model._meta.get_field("token").column
            for name, constraint in connection.introspection.get_constraints(cursor, table).items():
                if constraint["foreign_key"] == (token_table, "id") and constraint["columns"] == [
                    column
                ]:
                    yield table, name, column, token_table


def _set(on_delete: str):  # noqa: ANN202
    def operation(apps, schema_editor):  # noqa: ANN001, ANN202
        if schema_editor.connection.vendor != "postgresql":
            return
        quote = schema_editor.quote_name
        for table, name, column, token_table in list(_foreign_keys(apps, schema_editor)):
            # NOT VALID, then VALIDATE: the rows already satisfy the key, and validating apart
            # does not block writes to the table while it reads it.
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}, "
                f"ADD CONSTRAINT {quote(name)} FOREIGN KEY ({quote(column)}) "
                f"REFERENCES {quote(token_table)} ({quote('id')}){on_delete} "
                "DEFERRABLE INITIALLY DEFERRED NOT VALID"
            )
            schema_editor.execute(f"ALTER TABLE {quote(table)} VALIDATE CONSTRAINT {quote(name)}")

    return operation


class Migration(migrations.Migration):
    dependencies = [("tokens", "0006_token_org_id_index")]

    operations = [
        migrations.RunPython(_set(" ON DELETE CASCADE"), _set(""), elidable=False),
    ]
