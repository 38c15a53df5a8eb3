"""Is the database sound? The core of `igsync db check` (and of `igsync doctor`).

Each store checks what its database can check cheaply (`Store.check_integrity`): SQLite runs
its own `integrity_check` (or `quick_check`) and `foreign_key_check`; PostgreSQL compares the
schema version and the unique indexes the upserts rely on (`pg_index.indisvalid`); Supabase's
API shows the schema version and columns only. A file too damaged to open, or a Supabase
schema missing or behind, is a problem found, not an error.
"""

from __future__ import annotations

from pydantic import BaseModel

from igsync.errors import NotADatabaseError, SchemaMissingError, StoreCorruptError
from igsync.redact import redact
from igsync.store import Store


class IntegrityReport(BaseModel):
    """The outcome of an integrity check: `ok` when `problems` is empty."""

    ok: bool
    #: the database checked, its URL with any password masked
    database: str
    #: True for SQLite's `quick_check` (skips matching each index against its table)
    quick: bool = False
    #: one line per problem found, each saying what is wrong and, where known, what to do
    problems: list[str]


def integrity_problems_help(problems: list[str]) -> str:
    """One line on what to do about `problems`, for the end of a report."""
    if not problems:
        return ""
    return (
        "restore the database from a backup, or do what each problem says (a missing table:"
        " `igsync db init`; a missing unique key: create it again; an index marked invalid:"
        " `REINDEX INDEX name`)"
    )


async def check_database(db: Store, database: str, *, quick: bool = False) -> IntegrityReport:
    """Open `db` (not yet entered) and run its integrity check.

    `database` names it in the report (redacted here). A file SQLite finds damaged as it opens,
    one that is not a SQLite database (its header may be what was damaged), or a Supabase
    schema missing or behind, is a problem of the report; any other failure to
    open or check raises its StoreError (StoreConfigError, exit 2, for a wrong setting).
    """
    try:
        async with db as store:
            problems = await store.check_integrity(quick=quick)
    except (StoreCorruptError, NotADatabaseError, SchemaMissingError) as exc:
        problems = [str(exc)]
    return IntegrityReport(
        ok=not problems, database=redact(database), quick=quick, problems=problems
    )
