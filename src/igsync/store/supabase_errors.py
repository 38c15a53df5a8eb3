"""What PostgREST's errors mean to the Supabase store (supabase.py), said in one safe line.

RequestFailed       one failed request: its code, whether it may be sent again
retry_on            stamina's hook: which failures to retry
describe            an APIError as one line, without `details` (they can hold whole rows)
safe_line           any text as one short line without a secret or a URL
SCHEMA_HELP, schema_behind_help   what to apply when the schema is missing or behind
"""

from __future__ import annotations

import re
from collections.abc import Callable

from postgrest import APIError

from igsync.errors import StoreError
from igsync.redact import redact
from igsync.store.schema import LATEST, MIGRATIONS

#: PostgREST's codes for a missing table, and those for any missing part of the schema
NO_TABLE_CODES = {"42P01", "PGRST205"}
MISSING_SCHEMA = {*NO_TABLE_CODES, "42703", "PGRST204"}

SCHEMA_HELP = (
    "Supabase's API (PostgREST) cannot create tables: apply the SQL from"
    " `igsync db schema --dialect postgres` in the Supabase SQL editor, or save it as a"
    " migration in supabase/migrations/ and run `supabase db push`"
)
_NO_TABLE = "a table is missing; run `igsync db schema --dialect postgres` in the SQL editor"
_NO_COLUMN = (
    "a column is missing: the igsync schema is older than this igsync; run"
    " `igsync db schema --dialect postgres` in the SQL editor"
)
_CODE_REASONS = {
    "23505": "a row with the same key already exists",
    "23503": "the user has no row in `users` (foreign key)",
    "23502": "a required value is missing (not null)",
    "23514": "a value is not allowed (check constraint)",
    "42501": "permission denied: row-level security or grants refused this key;"
    " use the service-role key for cron (SUPABASE_KEY)",
    **dict.fromkeys(("42P01", "PGRST205"), _NO_TABLE),
    **dict.fromkeys(("42703", "PGRST204"), _NO_COLUMN),
    "PGRST301": "Supabase rejected the key as bad or expired; check SUPABASE_KEY",
}


#: PostgREST's codes for "cannot reach the database" (PGRST000-PGRST002, answered with 503)
UNREACHABLE_CODES = {"PGRST000", "PGRST001", "PGRST002"}


class RequestFailed(StoreError):
    """One failed request; `transient` ones may be sent again (`sent`: it may have arrived).

    `unreachable`: the failure says the service or its database did not answer at all (no
    connection, a timeout, PostgREST's PGRST000-002), not that it refused this request.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        transient: bool = False,
        sent: bool = True,
        unreachable: bool = False,
    ) -> None:
        super().__init__(message)
        self.code, self.transient, self.sent = code, transient, sent
        self.unreachable = unreachable or code in UNREACHABLE_CODES


def retry_on(idempotent: bool) -> Callable[[Exception], bool]:
    """stamina hook: transient failures, and for other writes only those never sent."""
    return lambda e: isinstance(e, RequestFailed) and e.transient and (idempotent or not e.sent)


def safe_line(text: str) -> str:
    """One short line with no secret and no URL."""
    text = re.sub(r"\w+://\S+", "<url>", redact(text))
    line = " ".join(text.split())
    return line if len(line) <= 240 else line[:237] + "..."


def schema_behind_help(current: int) -> str:
    """One line: how to bring a Supabase project's igsync schema from `current` to LATEST."""
    pending = [m for m in MIGRATIONS if m.version > current]
    files = ", ".join(
        f"{m.supabase_file} (`igsync db schema --migration {m.version}`)" for m in pending
    )
    return (
        f"Supabase has the igsync schema at version {current} and this igsync needs {LATEST};"
        " its API (PostgREST) cannot migrate it: run the SQL of `igsync db schema --dialect"
        " postgres` in the SQL editor (safe on any earlier version), or add"
        f" {files} to supabase/migrations/ and run `supabase db push`"
    )


def describe(what: str, exc: APIError, status: int | None) -> str:
    code = str(exc.code or status or "")
    message = safe_line(str(exc.message or ""))
    reason = _CODE_REASONS.get(code)
    if reason is None and (status == 401 or code in ("401", "PGRST302", "PGRST303")):
        reason = _CODE_REASONS["PGRST301"]
    # `details` and `hint` are left out on purpose: details can hold whole rows, tokens too.
    parts = [f"Supabase could not {what}", reason, message]
    return ": ".join(p for p in parts if p) + (f" [{code}]" if code else "")
