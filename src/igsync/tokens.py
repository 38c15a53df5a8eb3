"""Token lifecycle: which tokens to refresh, refreshing them, and saving the result atomically.

The bug other tools ship most is a refreshed token that is never persisted (GRAPH_API.md §4):
here a refresh is done only through `Store.update_token`, a compare-and-swap on the old token,
so two processes refreshing at once leave one valid token, and a failed refresh never erases
the old one.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import SecretStr

from igsync.config import Settings
from igsync.errors import ErrorKind, GraphError, IgsyncError, InputError, StoreError
from igsync.models import (
    Account,
    AccountInfo,
    BadTokenRow,
    FailedToken,
    RefreshedToken,
    RefreshReport,
    SkippedToken,
    TokenKind,
    TokenRow,
    TokenStatus,
    TokenUpdate,
    UserToken,
)
from igsync.redact import redact
from igsync.store import Store
from igsync.token_crypto import is_sealed
from igsync.token_shape import KIND_HOSTS, infer_token_kind

if TYPE_CHECKING:
    # igsync.graph (httpx, h2) is imported only where a call to Meta is made: `accounts add`
    # without one starts a third faster (benchmarks/import.py)
    from igsync.graph import GraphClient, TokenGrant

log = logging.getLogger(__name__)

#: fetch refreshes first when the token expires within this (DESIGN §4)
REFRESH_AHEAD = timedelta(days=7)
#: Instagram refuses to refresh a token younger than this (GRAPH_API.md §4)
MIN_INSTAGRAM_AGE = timedelta(hours=24)
#: tokens refreshed at once by `refresh-token --all`
REFRESH_CONCURRENCY = 8
REAUTH = "the user must log in again"
#: the expiry saved for a refreshed token when neither Meta's answer nor debug_token says it.
#: Long-lived tokens live ~60 days (GRAPH_API.md §4); half of that, so the daily cron (7-day
#: window) refreshes it weeks early rather than a day late. Storing null instead would make
#: refresh-token skip the token until debug_token answers, and without app credentials (an
#: instagram_login token) it would never be refreshed at all and die quietly.
ASSUMED_LIFETIME = timedelta(days=30)
#: `--expiring-within` above this is a typo: no Meta token lives longer than ~60 days
MAX_WITHIN = timedelta(days=365)


@dataclass(frozen=True)
class AppCredentials:
    app_id: str
    app_secret: str


def app_credentials(settings: Settings) -> AppCredentials | None:
    if settings.ig_app_id and settings.ig_app_secret:
        return AppCredentials(settings.ig_app_id, settings.ig_app_secret.get_secret_value())
    return None


class RefreshSkipped(Exception):
    """Nothing to do, or nothing that may be done now; the message says why."""


class RefreshRaced(RefreshSkipped):
    """Another process changed the row first (compare-and-swap lost); its token was kept.

    `winner` is the row as it is now (None: it was removed meanwhile), so a caller that needs
    a working token carries on with the winner's instead of calling the token dead.
    """

    def __init__(self, message: str, winner: UserToken | None) -> None:
        super().__init__(message)
        self.winner = winner


class RefreshTooEarly(RefreshSkipped):
    """Instagram refreshes only tokens at least 24 h old (GRAPH_API.md §4): Meta said not yet,
    or Meta's own answer when it issued the token says so. The old token is untouched."""


class RefreshFailed(Exception):
    """The refresh was attempted and did not succeed; the old token is untouched."""


def account_from_token(row: TokenRow) -> Account:
    """The account a `user_tokens` row names (rows without an account id are not fetchable).

    Raises InputError, before any request, for a row igsync cannot use (its problem says the
    column and the fix) and for a row without an account id.
    """
    if isinstance(row, BadTokenRow):
        raise InputError(row.problem)
    if row.account_id is None:
        raise InputError(f"user {row.u_id} has a token without an account id; add one")
    return Account(
        row.u_id, row.account_id, row.access_token.get_secret_value(), row, row.token_kind
    )


def other_kind(kind: TokenKind) -> TokenKind:
    return "instagram_login" if kind == "facebook_login" else "facebook_login"


def wrong_kind_message(graph: GraphClient, token: UserToken) -> str:
    """What to say when a host cannot parse a stored token, and the fix.

    A token whose shape fits its stored kind is of that kind: then the host URL is what is
    wrong. Otherwise the token is most likely of the other kind (docs/instagram-login.md §1).
    """
    kind, secret = token.token_kind, token.access_token.get_secret_value()
    url = graph.api(kind).base_url
    if infer_token_kind(secret) == kind:
        variable = "IGSYNC_INSTAGRAM_URL" if kind == "instagram_login" else "IGSYNC_GRAPH_URL"
        return (
            f"{url} cannot parse this {kind} token; check that {variable} points at "
            f"{KIND_HOSTS[kind]} (the token was kept)"
        )
    other = other_kind(kind)
    return (
        f"{url} cannot parse this token, so it is probably not a {kind} token; if it came from "
        f"{other.replace('_', ' ').title()}, add it again with `igsync accounts add --user "
        f"{token.u_id} --account-id {token.account_id} --kind {other} --token-stdin` "
        "(the token was kept)"
    )


def token_status(token: UserToken, now: datetime, ahead: timedelta = REFRESH_AHEAD) -> TokenStatus:
    if token.status == "needs_reauth":
        return "needs_reauth"
    if token.expires_at is None:
        return "ok"
    if token.expires_at <= now:
        return "expired"
    return "expiring" if token.expires_at <= now + ahead else "ok"


def token_hint(secret: str) -> str:
    """The last four characters, and only for a token long enough that they give nothing away."""
    return f"…{secret[-4:]}" if len(secret) >= 20 else "…"


def account_info(token: TokenRow, now: datetime) -> AccountInfo:
    if isinstance(token, BadTokenRow):
        secret = None if token.access_token is None else token.access_token.get_secret_value()
        return AccountInfo(
            user_id=token.u_id,
            account_id=token.account_id,
            source="db",
            token_kind=(secret and infer_token_kind(secret)) or "facebook_login",
            expires_at=None,
            days_left=None,
            status="invalid",
            # a malformed token's last characters could be anything: no hint at all; one that
            # could not be decrypted (token_crypto.py) says so
            token_hint="encrypted" if secret and is_sealed(secret) else "…",
            last_refreshed_at=None,
            problem=token.problem,
        )
    days = None if token.expires_at is None else (token.expires_at - now).days
    return AccountInfo(
        user_id=str(token.u_id),
        account_id=token.account_id,
        source="db",
        token_kind=token.token_kind,
        expires_at=token.expires_at,
        days_left=days,
        status=token_status(token, now),
        token_hint=token_hint(token.access_token.get_secret_value()),
        last_refreshed_at=token.last_refreshed_at,
    )


async def list_accounts(store: Store, settings: Settings, now: datetime) -> list[AccountInfo]:
    """Stored accounts, each with its last sync (instagram_sync_logs), then the env fallback
    account if one is configured."""
    infos = [account_info(t, now) for t in await store.list_tokens()]
    stored = [(i.user_id, i.account_id) for i in infos if i.user_id is not None]
    last = await store.latest_sync_logs(stored) if stored else {}
    for i, info in enumerate(infos):
        if info.user_id is not None and (log := last.get((info.user_id, info.account_id))):
            infos[i] = info.model_copy(
                update={
                    "last_sync_at": log.started_at,
                    "last_sync_status": log.status,
                    "last_sync_rows": log.total_inserted,
                }
            )
    if settings.ig_account_id and settings.ig_long_token:
        secret = settings.ig_long_token.get_secret_value()
        infos.append(
            AccountInfo(
                user_id=None,
                account_id=settings.ig_account_id,
                source="env",
                token_kind=infer_token_kind(secret) or "facebook_login",  # as fetch uses it
                expires_at=None,
                days_left=None,
                status="ok",
                token_hint=token_hint(secret),
                last_refreshed_at=None,
            )
        )
    return infos


def resolve_kind(token: str, kind: TokenKind | None) -> TokenKind:
    """The kind to store a token as: the one given, else the one its shape shows.

    Raises InputError when no kind was given and the shape says none, or when the given kind
    contradicts the shape (docs/instagram-login.md: `EAA…` Facebook Login, `IG…` Instagram).
    """
    shape = infer_token_kind(token)
    if kind is None:
        if shape is None:
            raise InputError(
                "--kind: cannot tell from the token which login issued it (Facebook Login tokens "
                "start with EAA, Instagram Login tokens with IG); pass --kind facebook_login or "
                "--kind instagram_login"
            )
        return shape
    if shape is not None and shape != kind:
        article = "an" if shape == "instagram_login" else "a"
        raise InputError(
            f"--kind {kind}: this token looks like {article} {shape} token "
            f"({'EAA' if shape == 'facebook_login' else 'IG'}…); "
            f"pass --kind {shape}, or check that you piped the right token"
        )
    return kind


def asks_meta_on_add(
    expires_at: datetime | None, kind: TokenKind, app: AppCredentials | None
) -> bool:
    """Whether `add_account` calls debug_token: a Facebook-Login token with no expiry given,
    when app credentials are set. Otherwise it needs no Graph client (pass None)."""
    return expires_at is None and app is not None and kind == "facebook_login"


async def checked_token_times(
    graph: GraphClient, token: str, app: AppCredentials
) -> tuple[datetime | None, datetime | None]:
    """The token's (expires_at, issued_at), UTC, from Meta's debug_token (None where Meta gives
    none). Raises InputError when Meta says the token is not valid or cannot be asked."""
    try:
        info = await graph.debug_token(token, app_id=app.app_id, app_secret=app.app_secret)
    except GraphError as error:
        if error.kind == ErrorKind.AUTH:
            # debug_token answers a token it finds invalid with is_valid false; a 190 is about
            # its own access_token, the app token made of IG_APP_ID|IG_APP_SECRET
            raise InputError(
                f"debug_token refused this app's credentials ({error}): check that IG_APP_ID"
                " and IG_APP_SECRET are the id and secret of one app (Meta's App Dashboard,"
                " Settings > Basic)"
            ) from None
        raise InputError(f"could not check the token with debug_token: {error}") from None
    if not info.is_valid:
        raise InputError(f"the token is not valid ({info.error or 'debug_token'}); log in again")
    return info.expires_at, info.issued_at


async def add_account(
    graph: GraphClient | None,
    store: Store,
    *,
    user_id: UUID,
    account_id: str,
    token: str,
    expires_at: datetime | None,
    kind: TokenKind | None,
    app: AppCredentials | None,
) -> AccountInfo:
    """Save (or replace) a user's account and token, of `kind` (None: from the token's shape).

    A Facebook-Login token without `expires_at` is checked with debug_token when app
    credentials are set: its expiry and issue time come from Meta. An Instagram-Login token has
    no debug_token (the Facebook host cannot parse it): without `expires_at` its expiry stays
    unknown until `refresh-token` asks Meta. `last_refreshed_at` is only ever what Meta said
    (debug_token's `issued_at`), never the time of saving: a token's age is Meta's to tell.
    Raises InputError for a token Meta calls invalid, or a kind that cannot be told or fits not.
    `graph` may be None when `asks_meta_on_add` says no call is made (ValueError if one is).
    """
    kind = resolve_kind(token, kind)
    now = datetime.now(UTC)
    issued_at = None
    if asks_meta_on_add(expires_at, kind, app):
        assert app is not None
        if graph is None:
            raise ValueError("add_account needs a Graph client to ask debug_token")
        expires_at, issued_at = await checked_token_times(graph, token, app)
    row = UserToken(
        u_id=user_id,
        access_token=SecretStr(token),
        account_id=account_id,
        expires_at=expires_at,
        token_kind=kind,
        status="ok",
        last_refreshed_at=issued_at,
    )
    await store.save_token(row)
    return account_info(row, now)


async def mark_needs_reauth(store: Store, token: UserToken) -> bool:
    """Flag the row without touching its token (a failed refresh never erases it).

    False when the row no longer holds that token (another process refreshed it meanwhile):
    then nothing was marked.
    """
    return await store.update_token(
        token.token_id,
        token.access_token.get_secret_value(),
        TokenUpdate(
            expires_at=token.expires_at,
            status="needs_reauth",
            last_refreshed_at=token.last_refreshed_at,
        ),
    )


async def reread(store: Store, token: UserToken) -> UserToken | None:
    """The row as it is in the store now (None: removed)."""
    rows = await store.list_tokens(u_id=token.u_id, platform=token.platform)
    return next(
        (row for row in rows if isinstance(row, UserToken) and row.token_id == token.token_id),
        None,
    )


async def _raced(store: Store, token: UserToken) -> RefreshRaced:
    try:
        winner = await reread(store, token)
    except StoreError:
        winner = None  # the caller then treats the token as not refreshed, as before the race
    return RefreshRaced("another process changed this token first; its token was kept", winner)


def can_wait(token: UserToken, now: datetime) -> bool:
    """Whether a token not refreshed now is in no danger: it outlives the refresh-ahead margin.

    A token that cannot be refreshed now and expires within REFRESH_AHEAD is a failure to
    report; one with more life left is retried by the next run.
    """
    return token.expires_at is None or token.expires_at > now + REFRESH_AHEAD


def check_refreshable(
    token: UserToken, app: AppCredentials | None, now: datetime, *, force: bool = False
) -> None:
    """Refusals known before asking Meta: RefreshTooEarly or RefreshFailed, else nothing.

    Too early is only ever known from Meta's own word: `last_refreshed_at` is when Meta issued
    the token (the answer of a refresh igsync made, or debug_token's `issued_at`). Even then the
    token is refreshed regardless when it cannot wait for the next run, or with `force` (Meta
    just refused the token: only its answer to a refresh tells whether a new one can be had).
    """
    if token.token_kind == "instagram_login":
        if force:
            return
        issued = token.last_refreshed_at
        if issued is not None and now - issued < MIN_INSTAGRAM_AGE and can_wait(token, now):
            hours = (now - issued) / timedelta(hours=1)
            raise RefreshTooEarly(
                f"Meta issued this token {hours:.0f} h ago and refreshes Instagram tokens only "
                "from 24 h on; the next run will try again"
            )
    elif app is None:
        raise RefreshFailed("set IG_APP_ID and IG_APP_SECRET to refresh facebook_login tokens")


async def refresh_now(
    graph: GraphClient,
    store: Store,
    token: UserToken,
    app: AppCredentials | None,
    now: datetime,
    *,
    force: bool = False,
) -> UserToken:
    """Refresh one token and save token, expiry, status and time in one write.

    Raises RefreshTooEarly when Meta does (or, by its own earlier word, would) refuse an
    Instagram token younger than 24 h, RefreshRaced when another process saved a token first,
    RefreshFailed when the refresh failed; a token Meta calls invalid or expired is marked
    needs_reauth on the way, one the host cannot parse (the other login kind) is not.
    Never raises GraphError or StoreError.
    """
    old = token.access_token.get_secret_value()
    check_refreshable(token, app, now, force=force)
    try:
        if token.token_kind == "instagram_login":
            grant = await graph.refresh_instagram_token(old)
        else:
            assert app is not None  # check_refreshable refused facebook_login without it
            grant = await graph.exchange_token(old, app_id=app.app_id, app_secret=app.app_secret)
    except GraphError as error:
        from igsync.graph import TokenProblem, token_problem

        problem = token_problem(error)
        if problem == TokenProblem.UNPARSEABLE:
            # The host cannot read it: a token of the other kind, not a dead one (kept as is).
            raise RefreshFailed(wrong_kind_message(graph, token)) from None
        if problem is not None:
            try:
                marked = await mark_needs_reauth(store, token)
            except StoreError as store_error:
                raise RefreshFailed(
                    f"token rejected by Meta ({error}); {REAUTH} (could not mark it: {store_error})"
                ) from None
            if not marked:
                raise await _raced(store, token) from None
            raise RefreshFailed(f"token rejected by Meta ({error}); {REAUTH}") from None
        if token.token_kind == "instagram_login" and error.code == 100:
            # Meta's refusal of a token younger than 24 h (GRAPH_API.md §4); no body for it is
            # on record, so any code 100 here is read as "not yet" and the old token is kept.
            raise RefreshTooEarly(f"Meta refused to refresh it yet ({error})") from None
        raise RefreshFailed(f"refresh failed, old token kept: {error}") from None
    # From here on Meta has issued a new token: it must be saved whatever else goes wrong
    # (GRAPH_API.md §4: a refreshed token that is never persisted is the classic bug).
    expires_at = await _expiry_of(graph, grant, token.token_kind, app, now)
    update = TokenUpdate(
        access_token=grant.access_token,
        expires_at=expires_at,
        status="ok",
        last_refreshed_at=now,
    )
    try:
        saved = await store.update_token(token.token_id, old, update)
    except StoreError as error:
        # The old token stays valid (Meta does not revoke it), so nothing is lost yet.
        raise RefreshFailed(f"could not save the new token, old token kept: {error}") from None
    if not saved:
        raise await _raced(store, token)
    return token.model_copy(
        update={
            "access_token": grant.access_token,
            "expires_at": expires_at,
            "status": "ok",
            "last_refreshed_at": now,
        }
    )


async def _expiry_of(
    graph: GraphClient,
    grant: TokenGrant,
    kind: TokenKind,
    app: AppCredentials | None,
    now: datetime,
) -> datetime | None:
    """When a just-issued token expires: Meta's `expires_in`, else debug_token, else a guess.

    `expires_in` may be absent (GRAPH_API.md §4). debug_token (Facebook Login only: the
    Facebook host cannot parse Instagram tokens) failing must not lose the token, so its
    failure falls back to ASSUMED_LIFETIME like a missing answer does.
    """
    if grant.expires_at is not None:
        return grant.expires_at
    if app is not None and kind == "facebook_login":
        try:
            info = await graph.debug_token(
                grant.access_token.get_secret_value(), app_id=app.app_id, app_secret=app.app_secret
            )
        except GraphError as error:
            log.info("debug_token of a refreshed token failed (%s); assuming 30 days", error)
        else:
            if info.is_valid:
                return info.expires_at  # None: Meta says it never expires
    return now + ASSUMED_LIFETIME


async def _learn_expiry(
    graph: GraphClient, store: Store, token: UserToken, app: AppCredentials | None
) -> UserToken:
    """A Facebook-Login token saved without an expiry: ask debug_token, remember the answer."""
    if app is None:
        raise RefreshSkipped(
            "expiry unknown and IG_APP_ID/IG_APP_SECRET are not set to ask debug_token: "
            "add it with `accounts add --expires-at`, or set them"
        )
    secret = token.access_token.get_secret_value()
    try:
        info = await graph.debug_token(secret, app_id=app.app_id, app_secret=app.app_secret)
    except GraphError as error:
        raise RefreshFailed(f"debug_token failed: {error}") from None
    if not info.is_valid:
        if not await mark_needs_reauth(store, token):
            raise await _raced(store, token)
        raise RefreshFailed(f"token is not valid ({info.error or 'debug_token'}); {REAUTH}")
    issued_at = info.issued_at or token.last_refreshed_at
    update = TokenUpdate(expires_at=info.expires_at, status="ok", last_refreshed_at=issued_at)
    if not await store.update_token(token.token_id, secret, update):
        raise await _raced(store, token)
    return token.model_copy(update={"expires_at": info.expires_at, "last_refreshed_at": issued_at})


async def _consider(
    graph: GraphClient,
    store: Store,
    token: UserToken,
    *,
    app: AppCredentials | None,
    within: timedelta,
    dry_run: bool,
    now: datetime,
    report: RefreshReport,
) -> None:
    """Refresh one token if due, reporting the outcome; a dry run writes and calls nothing.

    Whatever goes wrong with this token lands in `report.failed`: it never aborts the others.
    """
    user, account = str(token.u_id), token.account_id
    try:
        if token.status == "needs_reauth":
            # failed, not skipped: cron must keep exiting 1 until someone logs in again
            raise RefreshFailed(f"needs re-authorization: {REAUTH}")
        if token.expires_at is None and token.token_kind == "facebook_login":
            if dry_run:
                raise RefreshSkipped("expiry unknown: a real run asks debug_token for it")
            token = await _learn_expiry(graph, store, token, app)
            if token.expires_at is None:
                raise RefreshSkipped("never expires")
        if token.expires_at is not None:
            if token.expires_at <= now:
                if not dry_run and not await mark_needs_reauth(store, token):
                    raise await _raced(store, token)
                raise RefreshFailed(f"expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; {REAUTH}")
            if token.expires_at > now + within:
                raise RefreshSkipped(f"expires in {(token.expires_at - now).days} days")
        # Due, or an Instagram token of unknown expiry (no debug_token for those): then only
        # a refresh tells, so Meta is asked rather than the token left to die unseen.
        if dry_run:
            check_refreshable(token, app, now)  # a dry run foretells these refusals too
            report.would_refresh.append(
                RefreshedToken(user_id=user, account_id=account, expires_at=token.expires_at)
            )
            return
        fresh = await refresh_now(graph, store, token, app, now)
    except RefreshTooEarly as early:
        if can_wait(token, now):
            report.skipped.append(SkippedToken(user_id=user, account_id=account, reason=str(early)))
        else:
            assert token.expires_at is not None  # can_wait holds for an unknown expiry
            error = (
                f"{early}, and it expires on {token.expires_at:%Y-%m-%d %H:%M} UTC, before it "
                f"can be refreshed: {REAUTH}"
            )
            report.failed.append(FailedToken(user_id=user, account_id=account, error=error))
    except RefreshSkipped as skip:
        report.skipped.append(SkippedToken(user_id=user, account_id=account, reason=str(skip)))
    except RefreshFailed as failure:
        report.failed.append(FailedToken(user_id=user, account_id=account, error=str(failure)))
    except IgsyncError as error:  # a store or Graph failure of this token only
        report.failed.append(
            FailedToken(user_id=user, account_id=account, error=redact(f"failed: {error}"))
        )
    else:
        report.refreshed.append(
            RefreshedToken(user_id=user, account_id=account, expires_at=fresh.expires_at)
        )


async def refresh_expiring_tokens(
    graph: GraphClient,
    store: Store,
    *,
    app: AppCredentials | None,
    within: timedelta,
    user_id: UUID | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> RefreshReport:
    """Refresh every instagram token (of one user, or all) expiring within `within`."""
    now = now or datetime.now(UTC)
    tokens = await store.list_tokens(u_id=user_id)
    if user_id is not None and not tokens:
        raise InputError(f"no Instagram token stored for user {user_id}")
    report = RefreshReport(dry_run=dry_run)
    limit = asyncio.Semaphore(REFRESH_CONCURRENCY)

    async def one(token: TokenRow) -> None:
        if isinstance(token, BadTokenRow):
            # failed, not skipped: the row needs fixing, and cron must say so (exit 1)
            report.failed.append(
                FailedToken(
                    user_id=token.u_id or "", account_id=token.account_id, error=token.problem
                )
            )
            return
        async with limit:
            await _consider(
                graph, store, token, app=app, within=within, dry_run=dry_run, now=now, report=report
            )

    await asyncio.gather(*(one(t) for t in tokens))
    return report


#: ASCII digits only: str.isdigit() takes "²" and int() then fails
_DURATION = re.compile(r"([0-9]+)([mhdwMHDW])", re.ASCII)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` -> timedelta, up to 365 days; anything else is an InputError."""
    match = _DURATION.fullmatch(text)
    if match is None or not (digits := match[1].lstrip("0")):
        raise InputError(
            f"--expiring-within: expected a duration such as 30m, 12h, 7d or 2w, got {text!r}"
        )
    too_long = InputError(f"--expiring-within: at most 365d (tokens live ~60 days), got {text!r}")
    # 8 digits of any unit are past the bound already, and more would overflow timedelta
    # (or int(), past 4,300 digits)
    if len(digits) > 7:
        raise too_long
    within = timedelta(**{_UNITS[match[2].lower()]: int(digits)})
    if within > MAX_WITHIN:
        raise too_long
    return within
