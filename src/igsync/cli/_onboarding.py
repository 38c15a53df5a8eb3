"""`igsync accounts import` and `igsync accounts discover`: many accounts at once.

Registered on the `accounts` sub-app by _tokens.py. Tokens come on standard input only.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from igsync.cli._common import JsonOpt, QuietOpt, VerboseOpt, make_output, open_db, run
from igsync.cli._common import settings as load

if TYPE_CHECKING:
    from igsync.cli._render import Output
    from igsync.onboarding import ImportReport

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Check and show everything; write nothing.")
]


def read_stdin_text(what: str) -> str:
    """Standard input as UTF-8 text. Raises InputError (exit 2) when it is not UTF-8."""
    from igsync.errors import InputError

    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what}: standard input is not UTF-8 (byte {exc.start + 1}); save the file as UTF-8"
        ) from None


def accounts_import(
    ctx: typer.Context,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Save many accounts and tokens from NDJSON or CSV on standard input, in bulk.

    Keys (CSV: header names): user_id, account_id, access_token, and optionally token_kind
    (facebook_login|instagram_login; default: told by the token) and expires_at (ISO).
    Each row is checked as `accounts add` checks; valid rows are saved, bad ones reported
    (never with the token). Exit 1 if any row failed, 2 if the input cannot be read.

        igsync accounts import < accounts.csv
        jq -c '.[]' accounts.json | igsync accounts import --dry-run --json
    """
    from igsync.onboarding import check_import, save_import

    out = make_output(ctx, json_, quiet, verbose)
    text = read_stdin_text("accounts import")
    # every row is checked before a database is opened: an unreadable input is exit 2 with
    # nothing written, and a dry run needs no database at all
    checked = check_import(text, datetime.now(UTC))
    if dry_run:
        report = checked.report(dry_run=True)
    else:
        db = open_db(ctx, load())

        async def saving() -> ImportReport:
            async with db as store:
                return await save_import(store, checked)

        with out.status("importing accounts…"):
            report = run(saving())
    _show_import(out, report)
    if report.failed:
        raise typer.Exit(1)


def _show_import(out: Output, report: ImportReport) -> None:
    from rich.markup import escape

    if out.json_mode:
        out.emit_json(report)
        return
    lines = []
    for r in report.rows:
        who = f"user {r.user_id or '?'} account {r.account_id or '?'}"
        if r.status == "ok":
            verb = "valid" if report.dry_run else "saved"
            lines.append(f"row {r.row}: {who}: [green]{verb}[/] ({r.token_kind})")
        else:
            lines.append(f"row {r.row}: {who}: [red]error[/] {escape(r.error or '')}")
    if report.dry_run:
        summary = f"{report.valid} of {report.total} rows valid (dry run: nothing saved)"
    else:
        summary = f"saved {report.saved} of {report.total} rows"
    if report.failed:
        summary += f"; {report.failed} failed"
    # one print: rich renders 2,000 calls of one line each ten times slower than one of 2,000
    out.print("\n".join([*lines, summary]))
