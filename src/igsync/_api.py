"""The public Python API (DESIGN §10): the seed's functions under the seed's names, over the
same async core the CLI runs, each with a blocking twin for scripts and Streamlit.

    async (the one implementation)               blocking twin (asyncio.run of it)
    fetch_and_store_instagram_insights_async     fetch_and_store_instagram_insights
    get_user_instagram_account_async             get_user_instagram_account
    refresh_instagram_token_async                refresh_instagram_token
    list_instagram_accounts_async                list_instagram_accounts
    read_insights_async                          read_insights
    normalize_timestamp                          (pure: no I/O)
    open_store                                   (a Store to `async with`)

Every function takes keyword options `store` (a URL, or an open Store that stays the caller's),
`settings` (default: env and `.env`, as the CLI reads them) and, where Meta is called, `graph`
(an open GraphClient, e.g. on the simulator's transport). What it opens, it closes.
A blocking twin called where an event loop already runs (a notebook cell, an async web app)
raises RuntimeError naming the async function to await instead: it cannot block that loop.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from uuid import UUID

from pydantic import SecretStr

from igsync.config import Settings, database_url, load_settings
from igsync.errors import ConfigError, InputError
from igsync.graph import GraphClient, TokenGrant, infer_token_kind, pool_sizes
from igsync.models import AccountInfo, FetchResult, InsightRow, TokenKind, UserToken, as_utc
from igsync.redact import register_secret
from igsync.store import Store

if TYPE_CHECKING:
    from igsync.window import WindowPlan

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(name: str, work: Callable[P, Coroutine[Any, Any, T]], /) -> Callable[P, T]:
    """`work` run to completion on a new event loop (asyncio.run), from code that has none."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        if _loop_running():
            raise RuntimeError(
                f"igsync.{name}() blocks, and an event loop is running in this thread:"
                f" use `await igsync.{work.__name__}(...)` here instead"
            )
        # Outside any `except` block, so the caller's errors are not chained after
        # get_running_loop's "no running event loop".
        return asyncio.run(work(*args, **kwargs))

    run.__name__ = run.__qualname__ = name
    run.__doc__ = (
        f"Blocking: runs `{work.__name__}` (its arguments, result and errors) to completion;"
        f" in async code, await that instead.\n\n{work.__doc__ or ''}"
    )
    return run


def _loop_running() -> bool:
    """Whether an event loop runs in this thread (a notebook cell, an async web app)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _names(given: str | Sequence[str] | None) -> Sequence[str] | None:
    """A metric or stream list as a sequence: a str is the CLI's comma list (`"reach"`,
    `"reach,follower_count"`), not a sequence of one-letter names."""
    if isinstance(given, str):
        return [n.strip() for n in given.split(",") if n.strip()]
    return given


#: the CLI flags the shared core names in its InputError messages, and the API's parameters
_FLAG = re.compile(r"--(days|since|until)\b( N\b)?")


def _plan(days: int | None, since: date | None, until: date | None) -> WindowPlan:
    """plan_window for API callers: its InputError names the parameter (`days`), not the
    CLI flag (`--days`)."""
    from igsync.window import plan_window

    try:
        return plan_window(datetime.now().astimezone(), days=days, since=since, until=until)
    except InputError as err:
        raise InputError(_FLAG.sub(r"\1", str(err))) from None


def _settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else load_settings()


def open_store(url: str | None = None, *, settings: Settings | None = None) -> Store:
    """The store at `url` (`sqlite:///path.db`, `postgresql://…`, or `supabase`), not yet open:
    use it as `async with open_store(url) as store:`.

    `url` None: the configured one (IGSYNC_DATABASE_URL, else Supabase when SUPABASE_URL and
    SUPABASE_KEY are set, else igsync's SQLite file; DESIGN §3). `supabase` takes the project
    and key from `settings`. Raises ConfigError for an unsupported URL or missing settings.
    """
    from igsync.store import open_store as store_at
    from igsync.store import open_supabase_store

    if url is not None and url != "supabase":
        return store_at(url)
    current = _settings(settings)
    chosen = database_url(current, url)
    if chosen != "supabase":
        return store_at(chosen)
    if not (current.supabase_url and current.supabase_key):
        raise ConfigError("SUPABASE_URL and SUPABASE_KEY: both are needed for the supabase store")
    return open_supabase_store(current.supabase_url, current.supabase_key.get_secret_value())


@asynccontextmanager
async def _store(store: Store | str | None, settings: Settings | None) -> AsyncIterator[Store]:
    """The caller's open store as it is, or the one `store` (a URL) or settings name, opened
    here and closed on the way out."""
    if store is not None and not isinstance(store, str):
        yield store
        return
    async with open_store(store, settings=settings) as opened:
        yield opened


def graph_from_settings(
    settings: Settings, *, batch: bool = False, accounts: int = 1
) -> GraphClient:
    """The Graph client for the configured hosts, version, apps and timeout.

    `batch`: share Graph batch requests between concurrent calls; `accounts`: how many
    accounts are synced at once, which sizes the connection pool and the calls in flight.
    """
    secret, ig_secret = settings.ig_app_secret, settings.ig_instagram_app_secret
    sizes = pool_sizes(accounts, batch=batch)
    return GraphClient(
        base_url=settings.igsync_graph_url,
        instagram_url=settings.igsync_instagram_url,
        version=settings.igsync_graph_version,
        app_secret=secret.get_secret_value() if secret else None,
        instagram_app_secret=ig_secret.get_secret_value() if ig_secret else None,
        app_id=settings.ig_app_id,
        batch=batch,
        max_in_flight=sizes.calls,
        connections=sizes.connections,
        batch_size=sizes.batch_size,
        timeout=settings.igsync_http_timeout,
    )


@asynccontextmanager
async def _graph(graph: GraphClient | None, settings: Settings) -> AsyncIterator[GraphClient]:
    if graph is not None:
        yield graph
        return
    async with graph_from_settings(settings, batch=True) as opened:
        yield opened


def _user(user_id: UUID | str) -> UUID:
    try:
        return user_id if isinstance(user_id, UUID) else UUID(str(user_id))
    except ValueError:
        raise InputError(f"user_id {user_id!r} is not a UUID (users.u_id)") from None


async def fetch_and_store_instagram_insights_async(
    user_id: UUID | str,
    *,
    account_id: str | None = None,
    metrics: str | Sequence[str] | None = None,
    streams: str | Sequence[str] | None = None,
    days: int | None = None,
    since: date | None = None,
    until: date | None = None,
    dry_run: bool = False,
    store: Store | str | None = None,
    settings: Settings | None = None,
    graph: GraphClient | None = None,
) -> FetchResult:
    """Fetch one user's Instagram insights and upsert them, as `igsync fetch` does.

    The account and token come from the user's `user_tokens` row (platform instagram), else
    IG_ACCOUNT_ID / IG_LONG_TOKEN (the seed's secrets fallback). `streams` (account,
    audience, media, stories) and `metrics` (catalogue names, `igsync metrics`), each a
    sequence of names or a comma-separated str (`"reach,follower_count"`), default as
    for the CLI; the window is `days` (default 3) most recent complete account-local days,
    or the inclusive local dates `since`..`until`. The token is refreshed first when it
    expires within 7 days and app credentials are set. `dry_run` fetches and writes nothing.

    Returns the FetchResult (DESIGN §5): `success` only when `total_errors == 0`; a failed
    metric or write is an entry of `errors`, never an exception. Raises InputError (bad
    user, stream, metric or window, or no account for the user) and ConfigError (settings)
    before any request; StoreError when the store cannot be opened.
    """
    from igsync.sync import fetch_account, resolve_account
    from igsync.tokens import app_credentials

    current = _settings(settings)
    plan = _plan(days, since, until)
    async with _store(store, current) as opened, _graph(graph, current) as client:
        try:
            account = await resolve_account(opened, current, _user(user_id), account_id)
        except InputError as err:
            raise InputError(str(err).replace("pass --account-id", "pass account_id")) from None
        return await fetch_account(
            client,
            opened,
            account,
            streams=_names(streams),
            metrics=_names(metrics),
            plan=plan,
            app=app_credentials(current),
            dry_run=dry_run,
        )


async def get_user_instagram_account_async(
    user_id: UUID | str,
    *,
    account_id: str | None = None,
    store: Store | str | None = None,
    settings: Settings | None = None,
) -> UserToken | None:
    """The user's Instagram row of `user_tokens` (account_id, access_token as a SecretStr,
    expires_at, token_kind, status …), or None when the user has none: then fall back to
    IG_ACCOUNT_ID / IG_LONG_TOKEN as the seed does (fetch_and_store_instagram_insights
    already does).

    Raises InputError when the user has several accounts and `account_id` does not pick one,
    or when the row holds a value igsync cannot use (the message names the column).
    """
    from igsync.tokens import account_from_token

    user = _user(user_id)
    async with _store(store, settings) as opened:
        rows = [
            t
            for t in await opened.list_tokens(u_id=user)
            if account_id is None or t.account_id == account_id
        ]
    if len(rows) > 1:
        ids = ", ".join(str(t.account_id) for t in rows)
        raise InputError(f"user {user} has several Instagram accounts ({ids}); pass account_id")
    if not rows:
        return None
    account_from_token(rows[0])  # raises InputError, saying why, for a row igsync cannot use
    token = rows[0]
    assert isinstance(token, UserToken)
    return token


async def refresh_instagram_token_async(
    access_token: str | SecretStr,
    *,
    token_kind: TokenKind | None = None,
    app_id: str | None = None,
    app_secret: str | SecretStr | None = None,
    settings: Settings | None = None,
    graph: GraphClient | None = None,
) -> TokenGrant:
    """A fresh long-lived token for `access_token`, with its expiry (the seed's helper).

    Facebook Login tokens (`EAA…`) go through `oauth/access_token` with fb_exchange_token and
    need the app: `app_id`/`app_secret`, else IG_APP_ID/IG_APP_SECRET; Instagram Login tokens
    (`IG…`) through `refresh_access_token`, which Meta allows from 24 h after issue
    (GRAPH_API.md §4). `token_kind` overrides the kind the token's shape shows.

    Nothing is saved: store the new token yourself, at once (a refreshed token never saved is
    the classic bug), or let `igsync refresh-token` refresh and save stored tokens atomically.
    Returns TokenGrant (`access_token` a SecretStr, `expires_at` UTC or None when Meta left it
    out). Raises ConfigError without app credentials for a Facebook Login token, GraphError
    when Meta refuses.
    """
    current = _settings(settings)
    old = access_token.get_secret_value() if isinstance(access_token, SecretStr) else access_token
    register_secret(old)
    kind = token_kind or infer_token_kind(old) or "facebook_login"
    async with _graph(graph, current) as client:
        if kind == "instagram_login":
            grant = await client.refresh_instagram_token(old)
        else:
            secret = app_secret or current.ig_app_secret
            app = app_id or current.ig_app_id
            if not (app and secret):
                raise ConfigError(
                    "IG_APP_ID and IG_APP_SECRET: both are needed to refresh a Facebook Login"
                    " token (or pass app_id and app_secret)"
                )
            plain = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
            register_secret(plain)
            grant = await client.exchange_token(old, app_id=app, app_secret=plain)
    register_secret(grant.access_token.get_secret_value())
    return grant


async def list_instagram_accounts_async(
    *, store: Store | str | None = None, settings: Settings | None = None
) -> list[AccountInfo]:
    """Every stored Instagram account (then the IG_ACCOUNT_ID fallback, if set), as `igsync
    accounts list` shows them: user, account, expiry, status; never a token, only its last
    four characters (`token_hint`)."""
    from igsync.tokens import list_accounts

    current = _settings(settings)
    async with _store(store, current) as opened:
        return await list_accounts(opened, current, datetime.now(UTC))


async def read_insights_async(
    user_id: UUID | str | None = None,
    *,
    account_id: str | None = None,
    since: date | None = None,
    until: date | None = None,
    store: Store | str | None = None,
    settings: Settings | None = None,
) -> list[InsightRow]:
    """Stored `instagram_insights` rows of one user (None: all) and account (None: all),
    by account, metric and end_time; `since`/`until` are inclusive account-local dates on
    `local_date`. `value` is None where Meta had no data: draw it as a gap, not a zero.
    For a whole table, stream it instead (`igsync export`)."""
    from igsync.store.streaming import RowFilter
    from igsync.store.tables import INSIGHTS

    rows = RowFilter(u_id=None if user_id is None else _user(user_id), since=since, until=until)
    order = ("account_id", "metric", "end_time", "u_id")
    async with _store(store, settings) as opened:
        return [
            r
            async for r in opened.stream_rows(INSIGHTS, rows=rows, order=order)
            if account_id is None or r.account_id == account_id
        ]


def normalize_timestamp(timestamp: str | datetime | None) -> str | None:
    """An instant as UTC ISO-8601 text (`2026-11-20T08:00:00+00:00`), the seed's helper: the
    same instant always gives the same text, so it can key a row.

    Takes ISO-8601 with `Z`, `+00:00` or Meta's `+0000`, or a datetime; naive means UTC
    already. None or "" gives None. Raises ValueError for text that is not ISO-8601.
    """
    if timestamp is None or timestamp == "":
        return None
    if isinstance(timestamp, str):
        timestamp = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return as_utc(timestamp).isoformat()


fetch_and_store_instagram_insights = _blocking(
    "fetch_and_store_instagram_insights", fetch_and_store_instagram_insights_async
)
get_user_instagram_account = _blocking(
    "get_user_instagram_account", get_user_instagram_account_async
)
refresh_instagram_token = _blocking("refresh_instagram_token", refresh_instagram_token_async)
list_instagram_accounts = _blocking("list_instagram_accounts", list_instagram_accounts_async)
read_insights = _blocking("read_insights", read_insights_async)
