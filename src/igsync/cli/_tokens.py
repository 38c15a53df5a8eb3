"""`igsync accounts …` and `igsync refresh-token`: the token lifecycle on the command line.

A token is never a command-line argument (it would land in shell history and `ps`): it comes
on standard input with --token-stdin, from env, or from the database.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal
from uuid import UUID

import typer

from igsync.cli._common import (
    JsonOpt,
    QuietOpt,
    VerboseOpt,
    graph_client,
    make_output,
    open_db,
    preload_tls,
    run,
)
from igsync.cli._common import settings as load
from igsync.cli._onboarding import accounts_discover, accounts_import, checked_token_stdin

if TYPE_CHECKING:
    from igsync.config import Settings
    from igsync.models import AccountInfo, RefreshReport
    from igsync.rekey import RekeyReport
    from igsync.store import Store

accounts_app = typer.Typer(
    help="List, add and remove the Instagram accounts (and their tokens) igsync syncs.",
    no_args_is_help=True,
)


@accounts_app.command("list")
def accounts_list(
    ctx: typer.Context, json_: JsonOpt = False, quiet: QuietOpt = False, verbose: VerboseOpt = 0
) -> None:
    """Every account with its token's expiry and status; only the last 4 characters of a token.

    \b
        igsync accounts list --json | jq -r '.[] | select(.status != "ok") | .user_id'
    """
    from igsync.cli._render import accounts_table
    from igsync.tokens import list_accounts

    out = make_output(ctx, json_, quiet, verbose)
    settings = load()
    db = open_db(ctx, settings, access="read")

    async def listing() -> list[AccountInfo]:
        async with db as store:
            return await list_accounts(store, settings, datetime.now(UTC))

    infos = run(listing())
    if out.json_mode:
        out.emit_json(infos)
    elif not infos:
        out.print(
            "no accounts in this database: add one with `igsync accounts add --user UUID"
            " --account-id ID --token-stdin`, or many with `igsync accounts import`"
        )
    else:
        out.print(accounts_table(infos))


def _expiry(text: str | None) -> datetime | None:
    from igsync.inputs import parse_expiry

    return None if text is None else parse_expiry(text)


@accounts_app.command("add")
def accounts_add(
    ctx: typer.Context,
    user: Annotated[UUID, typer.Option(help="The user (users.u_id); created if missing.")],
    account_id: Annotated[str, typer.Option(help="The Instagram business account id.")],
    token_stdin: Annotated[
        bool,
        typer.Option(
            "--token-stdin",
            help="Read the access token from standard input (required: a token is never an"
            " argument, which shell history and ps would keep).",
        ),
    ] = False,
    expires_at: Annotated[
        str | None,
        typer.Option(
            metavar="ISO",
            help="When the token expires; without it igsync asks Meta's debug_token about a "
            "facebook_login token (needs IG_APP_ID/IG_APP_SECRET), and learns an "
            "instagram_login token's at its first refresh.",
        ),
    ] = None,
    kind: Annotated[
        Literal["facebook_login", "instagram_login"] | None,
        typer.Option(
            help="Which login issued the token: it decides the host of every call and how the "
            "token is refreshed. Default: told by the token (EAA… facebook_login, IG… "
            "instagram_login); a --kind the token contradicts is refused.",
            show_default=False,
        ),
    ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Save a user's Instagram account and long-lived token (replaces that account's token).

    \b
        pass show instagram/token | igsync accounts add --user UUID --account-id 1784… --token-stdin
    """
    from igsync.errors import InputError
    from igsync.inputs import ACCOUNT_ID_SHAPE, is_account_id
    from igsync.tokens import resolve_kind

    out = make_output(ctx, json_, quiet, verbose)
    if not token_stdin:
        raise InputError(
            "give the token on standard input with --token-stdin (never as an argument)"
        )
    if not is_account_id(account_id):
        raise InputError(f"--account-id: expected {ACCOUNT_ID_SHAPE}, got {account_id!r}")
    when = _expiry(expires_at)
    token = checked_token_stdin()
    resolve_kind(token, kind)  # a kind that cannot be told or fits not: exit 2 before any I/O
    settings = load()
    info = run(_add(settings, open_db(ctx, settings), user, account_id, token, when, kind))
    if out.json_mode:
        out.emit_json(info)
    else:
        expiry = f"expires {info.expires_at:%Y-%m-%d}" if info.expires_at else "expiry unknown"
        out.print(
            f"saved account {info.account_id} for user {info.user_id} "
            f"(token {info.token_hint}, {info.token_kind}, {expiry})"
        )


async def _add(
    settings: Settings,
    db: Store,
    user: UUID,
    account_id: str,
    token: str,
    expires_at: datetime | None,
    kind: Literal["facebook_login", "instagram_login"] | None,
) -> AccountInfo:
    from igsync.tokens import add_account, app_credentials, asks_meta_on_add, resolve_kind

    app = app_credentials(settings)
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(db)
        graph = None
        if asks_meta_on_add(expires_at, resolve_kind(token, kind), app):
            # only then an HTTP client: without one `accounts add` starts a third faster
            graph = await stack.enter_async_context(graph_client(settings))
        return await add_account(
            graph,
            store,
            user_id=user,
            account_id=account_id,
            token=token,
            expires_at=expires_at,
            kind=kind,
            app=app,
        )


accounts_app.command("import")(accounts_import)
accounts_app.command("discover")(accounts_discover)


@accounts_app.command("remove")
def accounts_remove(
    ctx: typer.Context,
    user: Annotated[UUID, typer.Option(help="The user whose account(s) to remove.")],
    account_id: Annotated[
        str | None, typer.Option(help="Only this account; default: all of the user's.")
    ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Remove a user's Instagram account(s) and token(s). Stored insights are kept."""
    from igsync.errors import InputError

    out = make_output(ctx, json_, quiet, verbose)
    db = open_db(ctx, load(), access="write")  # nothing to remove from a database not there

    async def remove() -> int:
        async with db as store:
            return await store.delete_tokens(user, account_id=account_id)

    removed = run(remove())
    if not removed:
        which = f" with account {account_id}" if account_id else ""
        raise InputError(f"no Instagram account stored for user {user}{which}")
    if out.json_mode:
        out.emit_json({"removed": removed})
    else:
        out.print(f"removed {removed} account(s) of user {user}")


def refresh_token(
    ctx: typer.Context,
    user: Annotated[UUID | None, typer.Option(help="Refresh this user's tokens.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Refresh every stored token.")] = False,
    expiring_within: Annotated[
        str, typer.Option(metavar="DURATION", help="Only tokens expiring within: 30m, 12h, 7d, 2w.")
    ] = "7d",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be refreshed; change nothing.")
    ] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Refresh long-lived tokens before they expire and save each one atomically.

    Run it daily from cron; exit code 1 while any token failed or needs the user to log in
    again (it then needs attention), 2 on bad input:

    \b
        0 6 * * * igsync refresh-token --all --json >> /var/log/igsync-refresh.jsonl
    """
    preload_tls()  # on a thread, while settings, the store and the rest load
    from igsync.errors import InputError
    from igsync.tokens import parse_duration

    out = make_output(ctx, json_, quiet, verbose)
    if user is not None and all_:
        raise InputError("pass either --user UUID or --all, not both")
    if user is None and not all_:
        raise InputError("pass either --user UUID (one user's tokens) or --all (every token)")
    within = parse_duration(expiring_within)
    settings = load()
    db = open_db(ctx, settings, access="write")  # no token to refresh in a file not there
    with out.status("refreshing tokens…"):
        report = run(_refresh(settings, db, user, within, dry_run))
    if out.json_mode:
        out.emit_json(report)
    else:
        from igsync.cli._render import refresh_table

        out.print(refresh_table(report))
    if report.failed:
        raise typer.Exit(1)


async def _refresh(
    settings: Settings, db: Store, user: UUID | None, within: timedelta, dry_run: bool
) -> RefreshReport:
    from igsync.tokens import app_credentials, refresh_expiring_tokens

    async with db as store, graph_client(settings) as graph:
        return await refresh_expiring_tokens(
            graph,
            store,
            app=app_credentials(settings),
            within=within,
            user_id=user,
            dry_run=dry_run,
        )


@accounts_app.command("rekey")
def accounts_rekey(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be re-encrypted; change nothing.")
    ] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Encrypt every stored token with the first key of IGSYNC_TOKEN_KEYS (key rotation).

    Plain tokens are encrypted, tokens of an older key re-encrypted. Exit 1 while any row
    could not be rewritten (each is listed), 2 without IGSYNC_TOKEN_KEYS:

        IGSYNC_TOKEN_KEYS=NEW,OLD igsync accounts rekey --json | jq .failed
    """
    from igsync.rekey import rekey_tokens

    out = make_output(ctx, json_, quiet, verbose)
    settings = load()
    db = open_db(ctx, settings, access="write")  # no token to encrypt in a file not there

    async def rekey() -> RekeyReport:
        async with db as store:
            return await rekey_tokens(store, dry_run=dry_run)

    report = run(rekey())
    if out.json_mode:
        out.emit_json(report)
    else:
        dry = " (dry run: nothing written)" if report.dry_run else ""
        out.print(
            f"rekey{dry}: {report.encrypted} plain token(s) encrypted, {report.reencrypted}"
            f" re-encrypted from an older key, {report.current} already current,"
            f" {len(report.failed)} failed"
        )
        for failure in report.failed:
            out.print(
                f"  failed: user {failure.user_id} account {failure.account_id}: {failure.error}"
            )
    if report.failed:
        raise typer.Exit(1)
