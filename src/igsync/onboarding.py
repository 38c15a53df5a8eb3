"""Onboarding many accounts at once: `accounts import` (a file of tokens) and the checks every
way of adding a token shares.

An import reads NDJSON or CSV (with a header) whose keys are the names `accounts list --json`
uses (DESIGN.md §4): `user_id`, `account_id`, `access_token`, and optionally `token_kind` and
`expires_at`. Each row is checked as `accounts add` checks its options, without a request to
Meta; the valid rows are saved a chunk at a time, one transaction (Supabase: one upsert) per
chunk, so 2,000 accounts cost a few round trips instead of 2,000 processes.

A token is never part of a report: a row's report names its row, user and account only, and
a value that failed its check is never quoted back (a CSV whose columns slipped would
otherwise print a token where a user id belongs).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, SecretStr

from igsync.errors import InputError, StoreError
from igsync.inputs import ACCOUNT_ID_SHAPE, is_account_id
from igsync.models import TokenKind, UserToken, as_utc
from igsync.redact import redact, register_secret
from igsync.store import Store
from igsync.token_shape import infer_token_kind, token_shape_problem

#: rows saved per transaction: large enough that 2,000 accounts take a handful of round
#: trips, small enough that PostgREST's request size limit and a failed chunk stay small
IMPORT_CHUNK = 500
#: the keys of an import row (the names `accounts list --json` uses)
IMPORT_KEYS = ("user_id", "account_id", "access_token", "token_kind", "expires_at")
REQUIRED_KEYS = ("user_id", "account_id", "access_token")
TOKEN_KINDS: tuple[TokenKind, ...] = ("facebook_login", "instagram_login")
Format = Literal["ndjson", "csv"]


class ImportRowReport(BaseModel):
    """One input row of `accounts import`: what became of it. Never the token.

    `row`: the row's line in the input (1 is the first line; in a CSV the header is row 1, as
    a spreadsheet numbers it). `user_id`/`account_id`: as given, or None when missing or not
    valid (a bad value is not echoed). `status`: `ok` (saved; with --dry-run: would be) or
    `error`, with `error` saying which key is wrong and how to fix it.
    """

    row: int
    user_id: str | None
    account_id: str | None
    token_kind: TokenKind | None
    expires_at: datetime | None
    status: Literal["ok", "error"]
    error: str | None = None


class ImportReport(BaseModel):
    """The result of one `accounts import` (its `--json` document).

    `rows`: one report per input row, in input order; `saved`: rows written (0 with
    `dry_run`); `valid`/`failed`: rows that passed or failed (a failed save counts as failed).
    """

    format: Format
    dry_run: bool
    total: int
    valid: int
    saved: int
    failed: int
    rows: list[ImportRowReport]


@dataclass
class _Parsed:
    row: int
    values: Mapping[str, Any] | None  # None: the row could not be read (problem says why)
    problem: str | None = None


def sniff_format(text: str) -> Format:
    """NDJSON when the first non-blank character opens a JSON object, CSV when the first line
    is a header naming the import keys. Raises InputError for anything else."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise InputError("accounts import: standard input was empty; pipe NDJSON or CSV in")
    if stripped.startswith("{"):
        return "ndjson"
    first = stripped.splitlines()[0]
    columns = [_column(name) for name in next(csv.reader([first]))]
    named = set(columns)
    if named >= set(REQUIRED_KEYS):
        twice = [key for key in IMPORT_KEYS if columns.count(key) > 1]
        if twice:  # the last of them would win, silently
            raise InputError(f"accounts import: the CSV header names {twice[0]} twice")
        return "csv"
    expected = (
        "accounts import: expected NDJSON (one JSON object a line) or CSV whose header names "
        f"{', '.join(REQUIRED_KEYS)} (optionally token_kind, expires_at)"
    )
    for separator, called in ((";", "semicolons"), ("\t", "tabs")):
        if {_column(n) for n in first.split(separator)} >= set(REQUIRED_KEYS):
            raise InputError(f"{expected}; this header is separated by {called}, not commas")
    if named & set(IMPORT_KEYS):
        missing = ", ".join(k for k in REQUIRED_KEYS if k not in named)
        raise InputError(f"{expected}; the CSV header has no {missing}")
    raise InputError(expected)


def _column(name: str) -> str:
    """A CSV header's column name as igsync reads it: `User_ID ` is user_id."""
    return name.strip().lower()


def _ndjson_rows(text: str) -> Iterator[_Parsed]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as exc:
            # the position only: the line may hold a token
            yield _Parsed(number, None, f"not valid JSON (column {exc.colno}: {exc.msg})")
            continue
        if not isinstance(values, dict):
            yield _Parsed(number, None, "expected a JSON object with user_id, account_id, …")
            continue
        yield _Parsed(number, values)


def _csv_rows(text: str) -> Iterator[_Parsed]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is not None:
        reader.fieldnames = [_column(name) for name in reader.fieldnames]
    line = 2  # the first record starts on the line after the header
    for record in reader:
        if not any((value or "").strip() for value in record.values() if isinstance(value, str)):
            line = reader.line_num + 1
            continue
        if None in record:  # more fields than the header names
            yield _Parsed(line, None, "more values than the header has columns")
        else:
            yield _Parsed(line, {k: v for k, v in record.items() if v not in (None, "")})
        line = reader.line_num + 1


def parse_import(text: str) -> tuple[Format, list[_Parsed]]:
    """The input's format and its rows, unchecked. Raises InputError for an unknown format."""
    fmt = sniff_format(text)
    try:
        rows = list(_ndjson_rows(text) if fmt == "ndjson" else _csv_rows(text))
    except csv.Error as exc:
        raise InputError(f"accounts import: the CSV cannot be read: {exc}") from None
    return fmt, rows


def _text(values: Mapping[str, Any], key: str) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _RowError(f"{key}: expected text")
    return str(value).strip() or None


class _RowError(Exception):
    """One row's problem (never quoting the row's values)."""


def check_row(values: Mapping[str, Any], now: datetime) -> UserToken:
    """The `user_tokens` row an import row stands for, checked as `accounts add` checks.

    Raises _RowError naming the key that is wrong and the fix; its text quotes no value.
    """
    token = values.get("access_token")
    if isinstance(token, str):
        token = token.strip()
    user_text = _text(values, "user_id")
    account_id = _text(values, "account_id")
    if user_text is None or account_id is None or not token:
        given = {"user_id": user_text, "account_id": account_id, "access_token": token}
        raise _RowError(f"missing {', '.join(k for k, v in given.items() if not v)}")
    try:
        user = UUID(user_text)
    except ValueError:
        raise _RowError("user_id: expected a UUID such as 2f1c0f6e-…") from None
    if not is_account_id(account_id):
        raise _RowError(f"account_id: expected {ACCOUNT_ID_SHAPE}")
    if not isinstance(token, str):
        raise _RowError("access_token: expected text")
    if problem := token_shape_problem(token):
        raise _RowError(f"access_token: the token {problem}")
    kind = _kind(token, _text(values, "token_kind"))
    # Registered only once the row is valid: a value in the wrong column (a user id where the
    # token belongs) would otherwise be masked wherever it rightly appears. No report quotes
    # a row's values, so an invalid token never reaches output either way.
    register_secret(token)
    return UserToken(
        u_id=user,
        access_token=SecretStr(token),
        account_id=account_id,
        expires_at=_expiry(_text(values, "expires_at"), now),
        token_kind=kind,
    )


def _kind(token: str, given: str | None) -> TokenKind:
    shape = infer_token_kind(token)
    if given is None:
        if shape is None:
            raise _RowError(
                "token_kind: cannot tell from the token which login issued it (Facebook Login "
                "tokens start with EAA, Instagram Login tokens with IG); give token_kind"
            )
        return shape
    kind = next((k for k in TOKEN_KINDS if k == given), None)
    if kind is None:
        raise _RowError(f"token_kind: expected {' or '.join(TOKEN_KINDS)}")
    if shape is not None and shape != kind:
        raise _RowError(f"token_kind {kind}: the token looks like a {shape} token")
    return kind


def _expiry(text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        when = as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise _RowError(
            "expires_at: expected an ISO date or time such as 2027-01-24T10:00:00Z"
        ) from None
    if when <= now:
        raise _RowError("expires_at: in the past, so the token is dead; log in again")
    return when


Numbered = tuple[int, UserToken]


def _chunks(items: Sequence[Numbered], size: int) -> Iterator[Sequence[Numbered]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class CheckedImport:
    """An import input after every row was checked, before anything was saved.

    `reports`: row number -> its report (ok: valid); `tokens`: the valid rows, in input order.
    """

    format: Format
    reports: dict[int, ImportRowReport]
    tokens: list[tuple[int, UserToken]]

    def report(self, *, dry_run: bool, saved: int = 0) -> ImportReport:
        rows = [self.reports[row] for row in sorted(self.reports)]
        return ImportReport(
            format=self.format,
            dry_run=dry_run,
            total=len(rows),
            valid=len(self.tokens),
            saved=saved,
            failed=sum(r.status == "error" for r in rows),
            rows=rows,
        )


def check_import(text: str, now: datetime) -> CheckedImport:
    """Check every row of `text` (NDJSON or CSV); `now` (aware) is what an expiry must lie
    after. No I/O.

    A row that fails its check is reported and left out. Two rows for one (user_id,
    account_id) make the later one an error (the first is kept). Raises InputError when the
    input is neither NDJSON nor CSV with the import keys.
    """
    fmt, parsed = parse_import(text)
    reports: dict[int, ImportRowReport] = {}
    good: list[tuple[int, UserToken]] = []
    seen: dict[tuple[UUID, str | None], int] = {}
    for item in parsed:
        if item.values is None:
            reports[item.row] = _error(item.row, item.values, item.problem or "unreadable")
            continue
        try:
            token = check_row(item.values, now)
        except _RowError as problem:
            reports[item.row] = _error(item.row, item.values, str(problem))
            continue
        key = (token.u_id, token.account_id)
        if key in seen:
            reports[item.row] = _error(
                item.row,
                item.values,
                f"the same user_id and account_id as row {seen[key]}; that row was kept",
            )
            continue
        seen[key] = item.row
        good.append((item.row, token))
        reports[item.row] = ImportRowReport(
            row=item.row,
            user_id=str(token.u_id),
            account_id=token.account_id,
            token_kind=token.token_kind,
            expires_at=token.expires_at,
            status="ok",
        )
    return CheckedImport(fmt, reports, good)


async def save_import(
    store: Store, checked: CheckedImport, *, chunk_size: int = IMPORT_CHUNK
) -> ImportReport:
    """Save the valid rows of `checked`, `chunk_size` rows a transaction (`save_tokens`).

    A chunk the store refuses makes each of its rows an error carrying the store's (redacted)
    message; the next chunk is still tried. Never raises for a refused chunk.
    """
    saved = 0
    for chunk in _chunks(checked.tokens, chunk_size):
        try:
            saved += await store.save_tokens([token for _, token in chunk])
        except StoreError as exc:
            message = f"not saved: {redact(str(exc))}"
            for row, _ in chunk:
                checked.reports[row] = checked.reports[row].model_copy(
                    update={"status": "error", "error": message}
                )
    return checked.report(dry_run=False, saved=saved)


async def import_accounts(
    store: Store, text: str, *, now: datetime, chunk_size: int = IMPORT_CHUNK
) -> ImportReport:
    """`check_import` then `save_import`: the whole `accounts import` without a dry run."""
    return await save_import(store, check_import(text, now), chunk_size=chunk_size)


def _error(row: int, values: Mapping[str, Any] | None, problem: str) -> ImportRowReport:
    """A failed row's report: user and account only when they are valid (never echo a value
    that failed, it may be a token in the wrong column)."""
    user_id = account_id = None
    if values is not None:
        try:
            user_text = _text(values, "user_id")
            user_id = str(UUID(user_text)) if user_text else None
        except (_RowError, ValueError):
            user_id = None
        try:
            account = _text(values, "account_id")
            account_id = account if account and is_account_id(account) else None
        except _RowError:
            account_id = None
    return ImportRowReport(
        row=row,
        user_id=user_id,
        account_id=account_id,
        token_kind=None,
        expires_at=None,
        status="error",
        error=problem,
    )
