"""Work done in many short transactions that a later run redoes if a crash loses them."""

from __future__ import annotations

from django.db import connection


def no_wait_for_disk() -> None:
    """On PostgreSQL, let the current transaction's commit return before its WAL reaches the
    disk (``synchronous_commit`` off for this transaction only).

    Only for a batch whose work, with its audit event, a later run redoes when a crash loses
    it: a crash may then lose the last batches, whole (their changes and their audit events
    together, never half of one), and since WAL is replayed in order nothing after them
    survives either. On a busy disk a commit that waits costs more than the batch's work
    (bench/RESULTS.md, sections 9 and "Round three")."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
