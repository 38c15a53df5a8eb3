"""What every command shares: option types, global options, settings, the async bridge."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from igsync.cli._render import Output
    from igsync.config import Settings
    from igsync.graph import GraphClient
    from igsync.store import Store

T = TypeVar("T")

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or logs on stderr.")]
VerboseOpt = Annotated[
    int, typer.Option("--verbose", "-v", count=True, help="More detail on stderr (-vv: debug).")
]


@dataclass
class Globals:
    """Options given before the command: `igsync --json fetch` = `igsync fetch --json`."""

    db: str | None = None
    json: bool = False
    quiet: bool = False
    verbose: int = 0


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Globals) else Globals()


def make_output(ctx: typer.Context, json_: bool, quiet: bool = False, verbose: int = 0) -> Output:
    from igsync.cli._render import Output

    g = globals_of(ctx)
    return Output(json_mode=json_ or g.json, quiet=quiet or g.quiet, verbose=verbose + g.verbose)


def settings() -> Settings:
    from igsync.config import load_settings

    return load_settings()


def db_url(ctx: typer.Context, current: Settings) -> str:
    from igsync.config import database_url

    return database_url(current, globals_of(ctx).db)


def open_db(ctx: typer.Context, current: Settings) -> Store:
    """The configured store, not yet entered (`async with open_db(...) as store`)."""
    from igsync.errors import ConfigError
    from igsync.store import open_store, open_supabase_store

    url = db_url(ctx, current)
    if url != "supabase":
        return open_store(url)
    if not (current.supabase_url and current.supabase_key):
        raise ConfigError("SUPABASE_URL and SUPABASE_KEY: both are needed for the supabase store")
    return open_supabase_store(current.supabase_url, current.supabase_key.get_secret_value())


def graph_client(current: Settings) -> GraphClient:
    from igsync.graph import GraphClient

    secret = current.ig_app_secret
    return GraphClient(
        base_url=current.igsync_graph_url,
        instagram_url=current.igsync_instagram_url,
        version=current.igsync_graph_version,
        app_secret=secret.get_secret_value() if secret else None,
        timeout=current.igsync_http_timeout,
    )


def run(coro: Coroutine[Any, Any, T]) -> T:
    """The one bridge from the CLI into the async core."""
    import asyncio

    return asyncio.run(coro)
