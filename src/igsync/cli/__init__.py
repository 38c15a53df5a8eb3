"""The `igsync` command line: parse, build the core objects, make one call, render.

Heavy modules (httpx, pydantic models, stores, the simulator) are imported inside commands so
that `igsync --help` stays fast.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Annotated, Literal
from uuid import UUID

import typer

from igsync.cli._common import (
    DaysOpt,
    Globals,
    JsonOpt,
    LogFormatOpt,
    MetricsOpt,
    NoBatchOpt,
    QuietOpt,
    SinceOpt,
    StreamsOpt,
    UntilOpt,
    VerboseOpt,
    config_sources,
    db_url,
    globals_of,
    graph_client,
    make_output,
    open_db,
    preload_tls,
    run,
    selection,
    set_globals,
    window_plan,
)
from igsync.cli._common import settings as load
from igsync.cli._doctor import doctor
from igsync.cli._export import export
from igsync.cli._queue import worker
from igsync.cli._report import report
from igsync.cli._sync import sync_all
from igsync.cli._tokens import accounts_app, refresh_token

if TYPE_CHECKING:
    from collections.abc import Sequence

    from igsync.cli._render import Output
    from igsync.config import Settings
    from igsync.models import FetchResult
    from igsync.store import Store
    from igsync.window import WindowPlan

app = typer.Typer(
    name="igsync",
    help=(
        "Sync Instagram account insights from Meta's Graph API into SQLite, PostgreSQL or "
        "Supabase.\n\nTry it offline first: igsync demo"
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Create, print or check the database schema.", no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        from igsync import __version__

        typer.echo(f"igsync {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="Database: sqlite:///path.db, postgresql://… or supabase "
            "(overrides IGSYNC_DATABASE_URL).",
        ),
    ] = None,
    env_file: Annotated[
        str | None,
        typer.Option(
            "--env-file",
            metavar="PATH",
            help="Settings file (VARIABLE=value lines) read above ./.env and the user config "
            "file; the environment still wins (default: IGSYNC_ENV_FILE).",
        ),
    ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
    log_format: LogFormatOpt = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    set_globals(
        ctx,
        Globals(
            db=db,
            json=json_,
            quiet=quiet,
            verbose=verbose,
            env_file=env_file,
            log_format=log_format,
        ),
    )
    config_sources()  # a named settings file that is missing fails every command, at once


@app.command()
def fetch(
    ctx: typer.Context,
    user: Annotated[UUID, typer.Option(help="The user (users.u_id) whose account to fetch.")],
    account_id: Annotated[
        str | None, typer.Option(help="Which account, when the user has several.")
    ] = None,
    streams: StreamsOpt = None,
    metrics: MetricsOpt = None,
    days: DaysOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Fetch and report, write nothing.")
    ] = False,
    no_batch: NoBatchOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Fetch one user's Instagram insights and store them (re-running never duplicates).

    Dates are the account's local days, inclusive. Example:

    \b
        igsync fetch --user UUID --since 2026-11-01 --until 2026-11-07 --json | jq .total_inserted
    """
    preload_tls()  # on a thread, while settings, the store and the rest load
    from igsync.errors import InputError
    from igsync.inputs import ACCOUNT_ID_SHAPE, is_account_id

    out = make_output(ctx, json_, quiet, verbose)
    if account_id is not None and not is_account_id(account_id):
        raise InputError(f"--account-id: expected {ACCOUNT_ID_SHAPE}, got {account_id!r}")
    settings = load()
    chosen = selection(settings, streams, metrics)
    plan = window_plan(days, since, until)
    db = open_db(ctx, settings, access="write" if dry_run else "create")  # a dry run makes no file
    with out.status("fetching insights…"):
        result = run(_fetch(settings, db, user, account_id, chosen, plan, dry_run, not no_batch))
    if out.json_mode:
        out.emit_json(result)
    else:
        from igsync.cli._render import fetch_summary, fetch_table

        out.print(fetch_table(result))
        for line in fetch_summary(result):
            out.print(line, soft_wrap=True)
    if not result.success:
        raise typer.Exit(1)


async def _fetch(
    settings: Settings,
    db: Store,
    user: UUID,
    account_id: str | None,
    chosen: tuple[Sequence[str] | None, Sequence[str] | None],
    plan: WindowPlan,
    dry_run: bool,
    batch: bool,
) -> FetchResult:
    from igsync.sync import fetch_account, resolve_account
    from igsync.tokens import app_credentials

    async with db as store:
        account = await resolve_account(store, settings, user, account_id)
        async with graph_client(settings, batch=batch) as graph:
            return await fetch_account(
                graph,
                store,
                account,
                streams=chosen[0],
                metrics=chosen[1],
                plan=plan,
                app=app_credentials(settings),
                dry_run=dry_run,
            )


app.command("sync-all")(sync_all)
app.command("worker")(worker)


@app.command()
def demo(
    ctx: typer.Context,
    accounts: Annotated[int, typer.Option(min=1, max=50, help="How many simulated accounts.")] = 3,
    days: Annotated[int, typer.Option(min=1, max=29, help="Days per account.")] = 3,
    streams: Annotated[
        str | None,
        typer.Option(
            help="Comma list of streams to simulate and sync: account (daily metrics), audience "
            "(demographics, online_followers), media (posts, reels and their insights), stories "
            "(live stories); default IGSYNC_STREAMS, else account."
        ),
    ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Run the whole job offline: a simulated Graph API and accounts in three time zones.

    The rows go to --db when given, else to demo.db in the user data dir (replaced by each
    demo, never your own database), where `igsync report --demo` shows them. Examples:

    \b
        igsync demo --streams account,audience,media,stories
        igsync report --demo --html report.html
    """
    from igsync.catalogue import DEFAULT_METRICS
    from igsync.cli._render import demo_render
    from igsync.config import demo_database_path
    from igsync.demo import run_demo
    from igsync.store import open_store

    out = make_output(ctx, json_, quiet, verbose)
    settings = load()
    chosen, _ = selection(settings, streams, None)
    demo_path = None
    if globals_of(ctx).db:
        keep = open_db(ctx, settings)
    else:
        demo_path = demo_database_path()
        for stale in (demo_path, *(demo_path.with_name(f"demo.db{x}") for x in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)  # a fresh file: yesterday's demo days do not linger
        keep = open_store(f"sqlite:///{demo_path}")
    with out.status(f"syncing {accounts} simulated accounts…"):
        result = run(run_demo(accounts=accounts, days=days, keep_in=keep, streams=chosen))
    if out.json_mode:
        out.emit_json(result.report)
    else:
        demo_render(out, result, DEFAULT_METRICS, demo_path)
    if not result.report.success:
        raise typer.Exit(1)


# Registered here so that --help lists the commands in the order a newcomer meets them.
app.add_typer(accounts_app, name="accounts")
app.command("refresh-token")(refresh_token)


@app.command("metrics")
def metrics_command(
    ctx: typer.Context, json_: JsonOpt = False, quiet: QuietOpt = False, verbose: VerboseOpt = 0
) -> None:
    """List every account metric Meta serves and the ones it retired (with what replaced them).

    Fetch any current one with --metrics; a metric of the audience stream (demographics,
    online_followers) runs that stream (--streams; docs/streams.md). Example:

    \b
        igsync metrics --json | jq -r '.[] | select(.status == "current") | .name'
    """
    from igsync.catalogue import metric_listing
    from igsync.cli._render import metrics_table

    out = make_output(ctx, json_, quiet, verbose)
    lines = metric_listing()
    if out.json_mode:
        out.emit_json(lines)
    else:
        out.print(metrics_table(lines))


app.command("export")(export)
app.command("report")(report)
app.add_typer(db_app, name="db")
app.command("doctor")(doctor)


@app.command(
    "simulator",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def simulator_command(ctx: typer.Context) -> None:
    """Serve the Graph API simulator on loopback, for trying igsync without Meta (`igsync
    simulator --help` lists its options; needs the simulator extra: `igsync[simulator]`)."""
    from igsync.errors import ConfigError

    try:
        import uvicorn  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigError(
            "the simulator server needs the simulator extra (uvicorn): "
            "uv tool install '.[simulator]' in the igsync checkout (or pipx install "
            "'.[simulator]'), as README \"Install\" says"
        ) from None
    from igsync.simulator.__main__ import main as serve

    raise typer.Exit(serve(ctx.args, prog="igsync simulator"))


@db_app.command("init")
def db_init(
    ctx: typer.Context, json_: JsonOpt = False, quiet: QuietOpt = False, verbose: VerboseOpt = 0
) -> None:
    """Create the igsync tables, or apply pending migrations, in the configured database.

    Safe to run twice: a current schema is left alone. Supabase cannot run DDL over its API:
    there it prints the SQL to apply in the SQL editor (or the migration files to add under
    supabase/migrations/) and checks whether the schema is current.
    """
    from igsync.cli._render import shown
    from igsync.errors import SchemaMissingError
    from igsync.redact import redact
    from igsync.store.schema import LATEST

    out = make_output(ctx, json_, quiet, verbose)
    settings = load()
    url = db_url(ctx, settings)
    db = open_db(ctx, settings)

    async def init() -> str | None:
        try:
            # Opening a store already checks (Supabase) or migrates (the others) the schema.
            async with db as store:
                await store.init_schema()
        except SchemaMissingError as error:
            if url != "supabase":
                raise
            return str(error)
        return None

    missing = run(init())
    if url == "supabase":
        _supabase_schema_help(out, missing)
        if missing is not None:
            raise typer.Exit(1)  # the schema is not there yet: a script must not carry on
        return
    if out.json_mode:
        out.emit_json({"initialized": True, "database": redact(url), "schema_version": LATEST})
    else:
        out.print(f"schema ready (version {LATEST}) in {shown(url)}")


def _supabase_schema_help(out: Output, missing: str | None) -> None:
    from igsync.cli._render import shown
    from igsync.store.schema import schema_sql

    sql = schema_sql("postgres")
    how = (
        "run this SQL in the Supabase SQL editor (safe on a database at any earlier igsync"
        " version), or add igsync's migration files to supabase/migrations/"
        " (`igsync db schema --migration N` prints migration N) and run `supabase db push`"
    )
    if out.json_mode:
        document = {"initialized": missing is None, "database": "supabase", "how": how, "sql": sql}
        out.emit_json(document)
        return
    out.write(sql)
    state = "the igsync schema is already current" if missing is None else missing
    out.err.print(f"supabase: {shown(state)}; to (re)apply the schema, {how}", soft_wrap=True)


@db_app.command("schema")
def db_schema(
    ctx: typer.Context,
    dialect: Annotated[
        Literal["postgres", "sqlite"] | None,
        typer.Option(
            help="Which SQL to print. Default: the dialect of `igsync --db URL` when given, "
            "else postgres.",
            show_default=False,
        ),
    ] = None,
    migration: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=1,
            help="Only migration N, as its file under supabase/migrations/ holds it.",
        ),
    ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Print the schema's SQL: every numbered migration with its version record.

    PostgreSQL is the reference (safe to run again, on a database at any earlier version);
    SQLite mirrors it. With --json: {"dialect", "migration" (N or null), "schema_version",
    "sql"}.
    """
    from igsync.config import Settings, database_url
    from igsync.errors import InputError
    from igsync.store.schema import LATEST, migration_sql, schema_sql

    out = make_output(ctx, json_, quiet, verbose)
    if dialect is None:
        # `igsync --db sqlite:///x.db db schema` printed PostgreSQL DDL: the URL given says
        # which (IGSYNC_DATABASE_URL does not: the migration files are printed without it)
        given = globals_of(ctx).db
        url = None if given is None else database_url(Settings.model_construct(), given)
        dialect = "sqlite" if url is not None and url.startswith("sqlite:") else "postgres"
    if migration is not None and migration > LATEST:
        raise InputError(f"--migration {migration} does not exist; the latest is {LATEST}")
    sql = schema_sql(dialect) if migration is None else migration_sql(migration, dialect)
    if out.json_mode:
        document = {"dialect": dialect, "migration": migration, "schema_version": LATEST}
        out.emit_json({**document, "sql": sql})
    else:
        out.write(sql)


@db_app.command("check")
def db_check(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="SQLite: quick_check instead of integrity_check (skips matching indexes "
            "against their tables; much faster on a large file).",
        ),
    ] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Check the configured database for damage: exit 0 when sound, 1 with each problem.

    SQLite: its integrity_check (every page and index) and foreign_key_check. PostgreSQL: the
    schema version, and that each unique index igsync's upserts rely on exists and is valid.
    Supabase: the schema version and columns. Example:

        igsync db check --json | jq -r '.problems[]'
    """
    from igsync.cli._render import shown
    from igsync.integrity import check_database, integrity_problems_help

    out = make_output(ctx, json_, quiet, verbose)
    settings = load()
    url = db_url(ctx, settings)
    report = run(check_database(open_db(ctx, settings, access="read"), url, quick=quick))
    if out.json_mode:
        out.emit_json(report)
    elif report.ok:
        out.print(f"ok: no problems found in {shown(report.database)}")
    else:
        for problem in report.problems:
            out.print(f"[red]problem: {shown(problem)}[/red]")
        out.print(
            f"{len(report.problems)} problem(s) in {shown(report.database)}: "
            f"{integrity_problems_help(report.problems)}"
        )
    if not report.ok:
        raise typer.Exit(1)


_EXTRA_ARGS = re.compile(r"Got unexpected extra argument(?:s|\(s\))? \(.*\)", re.DOTALL)


def main() -> None:
    """Console entry point: one line on stderr for every error we expect, never a traceback."""
    from typer._click.exceptions import NoArgsIsHelpError

    from igsync.cli import _stdout
    from igsync.errors import IgsyncError
    from igsync.redact import register_secret
    from igsync.token_shape import token_shaped

    # A token pasted as an option's value (`--account-id EAA…`) is refused as a bad value, and
    # the message that says so would quote it: masked like any secret, wherever it shows.
    for argument in sys.argv[1:]:
        value = argument.partition("=")[2] if argument.startswith("--") else argument
        if token_shaped(value):
            register_secret(value)
    _stdout.install()
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        sys.stdout.write(exc.format_message() + "\n")
        code = 0
    except typer.TyperException as exc:  # click's usage errors: bad option, bad value
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        # An extra argument may be a token pasted where --token-stdin was meant: never echo it.
        message = _EXTRA_ARGS.sub(
            "got an unexpected extra argument (not shown: it may be a secret; tokens go on stdin)",
            " ".join(exc.format_message().split()),
        )
        if (misplaced := _global_option(exc)) is not None:
            message, where = misplaced, ""
        _fail(f"{message}{where}", getattr(exc, "exit_code", 2))
    except IgsyncError as exc:
        _fail(str(exc), exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    code = code if isinstance(code, int) else 0
    _stdout.finish()
    if (failed := _stdout.message()) is not None:
        _fail(failed, max(code, 1))
    sys.exit(code)


def _global_option(exc: Exception) -> str | None:
    """What to say when an option of igsync itself (`--db`) came after the command: click
    reads those only before it, and would answer "No such option"."""
    from typer._click.exceptions import NoSuchOption

    ctx = getattr(exc, "ctx", None)
    if not isinstance(exc, NoSuchOption) or ctx is None or ctx.parent is None:
        return None
    root = ctx.find_root()
    for param in root.command.params:
        if exc.option_name in param.opts:
            command = ctx.command_path.removeprefix(root.command_path).strip()
            # as --help shows it: "--db URL", "--log-format <text|json>"
            record = param.get_help_record(root)
            names = record[0].split(", ") if record else []
            shown = next((n for n in names if n.split()[0] == exc.option_name), exc.option_name)
            example = f"igsync {shown}" if param.is_eager else f"igsync {shown} {command} …"
            return (
                f"{exc.option_name} is an option of igsync itself, not of {command}: put it"
                f" before the command, as in `{example}`"
            )
    return None


def console() -> None:
    """The `igsync` executable (and `python -m igsync`): `main()`, started without httpx's own
    command line nor the garbage collector (until `run`) and ended by an exit that skips the
    collector's last pass over every object the run made.

    At exit Python collects garbage once more over all objects, the imported modules'
    included: 0.15-0.2 s of each run's CPU here, a fifth of a bare `sync-all`'s. Frozen
    (`gc.freeze`), they are only freed; files and the store are closed by then, and atexit
    handlers still run. Tests call `main()` in their own process, which must keep collecting.
    """
    import gc

    # The start (imports, settings, the store) makes some 50,000 objects the collector
    # tracks, nearly all alive until exit; its passes over them were 40-50 ms of a sync-all
    # start (gc.callbacks). It stays off until `run` enters the core and freezes them: the
    # start of `sync-all --allow-empty --json` 13-18 ms shorter (median of 31-41 runs).
    gc.disable()
    # `import httpx` imports httpx's own command line too (click, rich.progress and
    # rich.syntax, pygments), which igsync never runs: 40-50 ms of every run's start here.
    # Missing, httpx defines a stand-in `httpx.main` instead (httpx 0.28 `__init__`; lazy in
    # the httpx2 fork: pydantic/httpx2#947).
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        main()
    finally:
        gc.freeze()


def _fail(message: str, code: int) -> None:
    from igsync.redact import redact

    sys.stderr.write(f"igsync: error: {redact(' '.join(message.split()))}\n")
    sys.exit(code)
