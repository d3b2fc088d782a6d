"""On PostgreSQL, a trigram index on the upper-cased token name (``pg_trgm``), for the
console's "Filter by name" (``name__icontains``: ``UPPER(name) LIKE UPPER('%text%')``).

Its first use is not the index itself but the statistics PostgreSQL keeps for an indexed
expression: without them the planner guessed that a substring matches a handful of tokens
(6 where 1,000 of 100,000 matched), so it read and sorted every token of the organization
instead of walking the ``(organization, scope, name)`` index and stopping after a page
(163 ms against 0.16 ms, bench/RESULTS.md section 3). The index also answers distinctive
search terms and the count of matches without reading every name.

``pg_trgm`` ships with PostgreSQL and is a trusted extension (13 and later): a database owner
may create it. Where it cannot be created, the migration says so and goes on; substring
filters then work as before, only slower on large organizations. SQLite is left as it is.
"""

from django.db import migrations, transaction

INDEX = "token_name_trgm"


def create(apps, schema_editor):  # noqa: ANN001, ANN201
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    table = apps.get_model("tokens", "ApiToken")._meta.db_table
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as error:  # noqa: BLE001 (any refusal: permissions, a missing contrib)
        print(f"\n  pg_trgm is not available ({error}); token name filters stay unindexed.")
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(INDEX)} ON {quote(table)} "
        f"USING gin (UPPER({quote('name')}::text) gin_trgm_ops)"
    )


def drop(apps, schema_editor):  # noqa: ANN001, ANN201
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(INDEX)}")


class Migration(migrations.Migration):
    dependencies = [("tokens", "0007_cascade_deletes_in_postgresql")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
