"""`igsync accounts import` and `igsync accounts discover`: many accounts at once.

Registered on the `accounts` sub-app by _tokens.py. Tokens come on standard input only.
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer

from igsync.cli._common import JsonOpt, QuietOpt, VerboseOpt, make_output, open_db, run
from igsync.cli._common import settings as load

if TYPE_CHECKING:
    from rich.text import Text

    from igsync.cli._render import Output
    from igsync.config import Settings
    from igsync.discover import DiscoverReport
    from igsync.onboarding import ImportReport
    from igsync.store import Store

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


def read_token_stdin() -> str:
    """The access token for --token-stdin, stripped; "" when none was given.

    At a terminal the token is read with getpass (prompt on the terminal, input hidden) so a
    pasted token is never echoed to the screen or a screen recording; from a pipe or file it
    is standard input as UTF-8 text. Raises InputError (exit 2) on non-UTF-8 piped input.
    """
    import getpass

    if sys.stdin is None:  # started with standard input closed
        return ""
    if sys.stdin.isatty():
        try:
            return getpass.getpass("Access token (input hidden): ").strip()
        except EOFError:  # Ctrl-D at the prompt: no token, reported as an empty input
            return ""
    if not hasattr(sys.stdin, "buffer"):  # a text stream of our caller's (no bytes beneath)
        return sys.stdin.read().strip()
    return read_stdin_text("--token-stdin").strip()


def checked_token_stdin() -> str:
    """The --token-stdin token, read by read_token_stdin, checked and registered as a secret.

    Raises InputError (exit 2) when it is empty or not token-shaped (token_shape_problem), so
    every command that takes --token-stdin refuses the same input with the same line.
    """
    from igsync.errors import InputError
    from igsync.redact import register_secret
    from igsync.token_shape import token_shape_problem

    token = read_token_stdin()
    if not token:
        raise InputError("--token-stdin: standard input was empty; pipe the token in")
    if problem := token_shape_problem(token):
        raise InputError(
            f"--token-stdin: the token {problem}; pipe only the token, copied whole from Meta"
        )
    register_secret(token)
    return token


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

    \b
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
    out.print(_line("\n".join([*lines, summary])), soft_wrap=True)


def accounts_discover(
    ctx: typer.Context,
    user: Annotated[UUID, typer.Option(help="The user (users.u_id) to save the accounts for.")],
    token_stdin: Annotated[
        bool,
        typer.Option("--token-stdin", help="Read the Facebook user access token from stdin."),
    ] = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """List the Instagram accounts behind a Facebook Login user token, and save them.

    Asks Meta for the user's Facebook Pages (/me/accounts) and keeps each Page's linked
    Instagram professional account (Pages without one are skipped); each is saved for --user
    with the user token as a facebook_login token. With IG_APP_ID/IG_APP_SECRET the token's
    expiry is asked of debug_token first.

    \b
        pass show fb/user-token |
          igsync accounts discover --user UUID --token-stdin --dry-run
    """
    from igsync.errors import InputError
    from igsync.token_shape import infer_token_kind

    out = make_output(ctx, json_, quiet, verbose)
    if not token_stdin:
        raise InputError(
            "give the token on standard input with --token-stdin (never as an argument)"
        )
    token = checked_token_stdin()
    if infer_token_kind(token) == "instagram_login":
        raise InputError(
            "--token-stdin: this is an Instagram Login token (IG…), which belongs to one "
            "account and lists no Pages; save it with `igsync accounts add`"
        )
    settings = load()
    db = None if dry_run else open_db(ctx, settings)
    with out.status("asking Meta for the Pages of this user…"):
        report = run(_discover(settings, db, user, token))
    _show_discover(out, report)


async def _discover(settings: Settings, db: Store | None, user: UUID, token: str) -> DiscoverReport:
    from igsync.cli._common import graph_client
    from igsync.discover import discover_accounts
    from igsync.tokens import app_credentials

    app = app_credentials(settings)
    async with AsyncExitStack() as stack:
        graph = await stack.enter_async_context(graph_client(settings))
        store = None if db is None else await stack.enter_async_context(db)
        return await discover_accounts(graph, store, user_id=user, token=token, app=app)


def _show_discover(out: Output, report: DiscoverReport) -> None:
    from rich.markup import escape

    if out.json_mode:
        out.emit_json(report)
        return
    verb = "found (dry run: nothing saved)" if report.dry_run else "saved"
    for a in report.accounts:
        handle = f"@{a.username}" if a.username else "(no username)"
        page = f"Page {a.page_name!r} ({a.page_id})" if a.page_name else f"Page {a.page_id}"
        out.print(
            _line(f"account {a.account_id} {escape(handle)} via {escape(page)}: {verb}"),
            soft_wrap=True,
        )
    expiry = f"expires {report.expires_at:%Y-%m-%d}" if report.expires_at else "expiry unknown"
    count = len(report.accounts) if report.dry_run else report.saved
    out.print(
        _line(
            f"{count} Instagram account(s) {verb} for user {report.user_id} "
            f"(facebook_login, {expiry})"
        ),
        soft_wrap=True,
    )
    if report.pages_without_instagram:
        out.print(f"{report.pages_without_instagram} Page(s) without an Instagram account skipped")


def _line(markup: str) -> Text:
    """Lines as they are, for `out.print(…, soft_wrap=True)`: never cut nor wrapped at the
    console's width, however long (grep and cut read these)."""
    from rich.text import Text

    line = Text.from_markup(markup, overflow="ignore")
    line.no_wrap = True
    return line
