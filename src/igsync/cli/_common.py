"""What every command shares: option types, global options, settings, the async bridge."""

from __future__ import annotations

from collections.abc import Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer

if TYPE_CHECKING:
    from pathlib import Path

    from igsync.cli._logs import LogFormat
    from igsync.cli._render import Output
    from igsync.config import ConfigSources, Settings
    from igsync.graph import GraphClient
    from igsync.store import Access, Store
    from igsync.window import WindowPlan

T = TypeVar("T")

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or logs on stderr.")]
VerboseOpt = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        show_default=False,
        help="More detail on stderr: -v info, -vv debug (also off a terminal).",
    ),
]
LogFormatOpt = Annotated[
    Literal["text", "json"] | None,
    typer.Option(
        "--log-format",
        show_default=False,
        help="Log lines on stderr as plain text (default) or one JSON object per line, for a "
        "log shipper; choosing one shows warnings off a terminal too.",
    ),
]
NoBatchOpt = Annotated[
    bool,
    typer.Option(
        "--no-batch",
        help="Send every Graph call alone instead of in Graph batch requests (up to 50 calls "
        "per round trip).",
    ),
]
MetricsOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma list of metrics (see `igsync metrics`); default IGSYNC_METRICS, else each "
        "stream's default set."
    ),
]
StreamsOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma list of streams: account (daily metrics), audience (demographics, "
        "online_followers), media (posts, reels and their insights), stories (live stories); "
        "default IGSYNC_STREAMS, else the streams of --metrics, else account."
    ),
]
DaysOpt = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        help="The N most recent complete days, 1 to 726 (Meta serves two years back); not with"
        " --since/--until. [default: 3]",
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        metavar="YYYY-MM-DD",
        help="First local day to fetch (inclusive; at most ~2 years back).",
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        metavar="YYYY-MM-DD",
        help="Last local day to fetch, with --since (inclusive; default: the last complete day).",
    ),
]


@dataclass
class Globals:
    """Options given before the command: `igsync --json fetch` = `igsync fetch --json`."""

    db: str | None = None
    json: bool = False
    quiet: bool = False
    verbose: int = 0
    #: `--env-file PATH`: a settings file above `./.env` and the user config file
    env_file: str | None = None
    #: `--log-format`, None when not given (text, and logs only on a terminal or with -v)
    log_format: LogFormat | None = None


#: the global options of this invocation, for what reads settings without a Context
_current: ContextVar[Globals | None] = ContextVar("igsync_globals", default=None)


def set_globals(ctx: typer.Context, options: Globals) -> None:
    """Record the global options (the root callback does, before any command runs)."""
    ctx.obj = options
    _current.set(options)


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Globals) else Globals()


def make_output(ctx: typer.Context, json_: bool, quiet: bool = False, verbose: int = 0) -> Output:
    from igsync.cli._render import Output

    g = globals_of(ctx)
    if (quiet or g.quiet) and verbose + g.verbose:
        from igsync.errors import InputError

        raise InputError("-q/--quiet and -v/--verbose contradict each other: pass one of them")
    return Output(
        json_mode=json_ or g.json,
        quiet=quiet or g.quiet,
        verbose=verbose + g.verbose,
        log_format=g.log_format,
    )


def config_sources() -> ConfigSources:
    """The settings files of this invocation (`--env-file`, IGSYNC_ENV_FILE, `./.env`, the
    user config file); ConfigError when an explicitly named one does not exist."""
    from igsync.config import resolve_sources

    options = _current.get()
    return resolve_sources(None if options is None else options.env_file)


def settings() -> Settings:
    """The settings of this invocation, in the documented order of precedence."""
    from igsync.config import load_settings

    return load_settings(sources=config_sources())


def selection(
    current: Settings, streams: str | None, metrics: str | None
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """`--streams` and `--metrics` (else IGSYNC_STREAMS and IGSYNC_METRICS), checked together
    against the catalogue before anything is opened: (streams, metrics), None for a default.

    Raises InputError naming the option at fault.
    """
    from igsync.catalogue import METRIC_CONFIG, parse_metric_list, parse_stream_list
    from igsync.errors import InputError

    try:
        names = current.metrics if metrics is None else parse_metric_list(metrics)
    except InputError as exc:
        raise InputError(f"--metrics: {exc}") from None
    try:
        chosen = current.streams if streams is None else parse_stream_list(streams)
    except InputError as exc:
        raise InputError(f"--streams: {exc}") from None
    if metrics is None and names is not None and chosen is not None:
        # IGSYNC_METRICS configures the streams it names: a run of other streams (the hourly
        # `--streams stories` beside a daily account cron) leaves it aside, never refuses.
        names = tuple(m for m in names if METRIC_CONFIG[m].stream in chosen) or None
    from igsync.streams import choose_streams

    try:
        choose_streams(chosen, names)
    except InputError as exc:
        raise InputError(f"--metrics: {exc}") from None
    return chosen, names


def window_plan(days: int | None, since: str | None, until: str | None) -> WindowPlan:
    """`--days` or `--since/--until` (local dates as typed) as a request range, from the
    local clock. Raises InputError naming the option for a date that is not YYYY-MM-DD or
    not a day of the calendar, or a window Meta would refuse."""
    from igsync.inputs import parse_day
    from igsync.window import plan_window

    return plan_window(
        datetime.now().astimezone(),
        days=days,
        since=None if since is None else parse_day(since, "--since"),
        until=None if until is None else parse_day(until, "--until"),
    )


def db_url(ctx: typer.Context, current: Settings) -> str:
    from igsync.config import database_url

    return database_url(current, globals_of(ctx).db)


def open_db(
    ctx: typer.Context,
    current: Settings,
    *,
    access: Access = "create",
    connections: int | None = None,
) -> Store:
    """The configured store, not yet entered (`async with open_db(...) as store`).

    `access` (store.Access): `write` or `read` for the commands with nothing to create: a
    missing SQLite file is exit 2 naming its path, not a new empty database at a mistyped
    path; `read` opens it read-only. `connections`: the PostgreSQL pool's size for the work
    (None: the store's default).
    """
    from igsync.errors import ConfigError
    from igsync.store import SQLITE_PREFIX, open_store, open_supabase_store, sqlite_path

    url = db_url(ctx, current)
    chosen = globals_of(ctx).db is not None or current.igsync_database_url
    default_sqlite = not chosen and url.startswith(SQLITE_PREFIX)
    # The default path is no typo of the user's: say why it is the one looked at (an empty
    # IGSYNC_DATABASE_URL= reads as unset, as .env.example ships it).
    if access != "create" and default_sqlite and not (path := sqlite_path(url)).exists():
        raise ConfigError(
            f"no SQLite database at {path}, the default (IGSYNC_DATABASE_URL and"
            " SUPABASE_URL are unset or empty): point --db or IGSYNC_DATABASE_URL at your"
            " database, or create this one with `igsync db init` or a first `igsync fetch`"
        )
    if url != "supabase":
        return open_store(url, access=access, connections=connections)
    if not (current.supabase_url and current.supabase_key):
        raise ConfigError("SUPABASE_URL and SUPABASE_KEY: both are needed for the supabase store")
    return open_supabase_store(current.supabase_url, current.supabase_key.get_secret_value())


def graph_client(current: Settings, *, batch: bool = False, accounts: int = 1) -> GraphClient:
    """The Graph client for the configured hosts and apps (`igsync._api.graph_from_settings`).

    `batch`: share Graph batch requests between concurrent calls; `accounts`: how many
    accounts are synced at once, which sizes the connection pool and the calls in flight.
    """
    from igsync._api import graph_from_settings

    return graph_from_settings(current, batch=batch, accounts=accounts)


#: allocations of container objects between two young-generation collections while the core
#: runs (Python's default: 700). A sync keeps thousands of short-lived JSON bodies, rows and
#: httpx objects alive for a round trip, and at 700 the collector kept rescanning them
#: (gc.callbacks, sync-all of 3,000 accounts: 0.36 s of 6.9 CPU-s at 700; 0.13 s at 2,000,
#: 0.11 s at 20,000). Its cost is memory: garbage cycles wait longer (peak RSS 64 MB at 700,
#: 68 at 2,000, 76 at 20,000).
GC_YOUNG_THRESHOLD = 2_000


def preload_tls() -> None:
    """Start building the TLS context of Graph connections on a thread (its CA bundle is
    25-30 ms that release the GIL: igsync.graph._pools.load_tls_context). The commands whose
    work is Graph calls call this first, once their options are read (never for --help or a
    bad option), so it is ready when their GraphClient is made."""
    from igsync.graph._pools import load_tls_context

    load_tls_context()


def database_file(db: Store) -> Path | None:
    """The file of a SQLite store (what an output file must never replace), else None."""
    from igsync.store.sqlite import SQLiteStore

    return db.path if isinstance(db, SQLiteStore) else None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """The one bridge from the CLI into the async core, with the collector tuned for it
    (`GC_YOUNG_THRESHOLD`) and set back after. The executable holds the collector off through
    its start (`console`): here what the start made is frozen out of every later pass (it
    lives until exit) and the collector goes on."""
    import asyncio
    import gc

    if not gc.isenabled():
        gc.freeze()
        gc.enable()
    previous = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *previous[1:])
    try:
        return asyncio.run(coro)
    finally:
        gc.set_threshold(*previous)
