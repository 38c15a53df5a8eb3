"""Fetch one account's insights and store them: the job behind `fetch`, `demo` and `sync-all`.

Which account and token, the token policy around the Graph calls (refresh ahead of expiry,
refresh once on 190, else needs_reauth), the verified write and the sync log. The Graph calls
themselves are `igsync.collect`'s.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID, uuid4

from igsync.catalogue import METRIC_CONFIG, MetricSpec
from igsync.collect import Collected, collect, make_rows
from igsync.config import Settings
from igsync.errors import GraphError, InputError, StoreError
from igsync.graph import GraphClient, TokenProblem, infer_token_kind, token_problem
from igsync.models import (
    FetchResult,
    SyncLog,
    SyncReport,
    TokenKind,
    UserToken,
    Window,
)
from igsync.redact import redact
from igsync.store import Store
from igsync.tokens import (
    REAUTH,
    REFRESH_AHEAD,
    AppCredentials,
    RefreshFailed,
    RefreshRaced,
    RefreshSkipped,
    mark_needs_reauth,
    refresh_now,
    reread,
    wrong_kind_message,
)
from igsync.window import WindowPlan, day_label

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Account:
    """Who to fetch for and with what: from `user_tokens`, or the env fallback."""

    user_id: UUID
    account_id: str
    #: kept out of repr: an Account in a log line or a traceback must not print the token
    token: str = field(repr=False)
    #: the `user_tokens` row, None for the env fallback (which cannot be refreshed or marked)
    row: UserToken | None = None
    #: which login issued the token: it decides the host of every call (igsync.graph.LoginApi)
    kind: TokenKind = "facebook_login"


async def resolve_account(
    store: Store, settings: Settings, user_id: UUID, account_id: str | None = None
) -> Account:
    """The user's instagram row of `user_tokens`, else IG_ACCOUNT_ID/IG_LONG_TOKEN."""
    rows = [
        t
        for t in await store.list_tokens(u_id=user_id)
        if account_id is None or t.account_id == account_id
    ]
    if len(rows) > 1:
        ids = ", ".join(str(t.account_id) for t in rows)
        raise InputError(
            f"user {user_id} has several Instagram accounts ({ids}); pass --account-id"
        )
    if rows and rows[0].account_id:
        return account_from_token(rows[0])
    env_id, env_token = settings.ig_account_id, settings.ig_long_token
    if env_id and env_token and account_id in (None, env_id):
        secret = env_token.get_secret_value()
        # The env fallback has no stored kind: its shape tells (EAA… or IG…).
        return Account(user_id, env_id, secret, kind=infer_token_kind(secret) or "facebook_login")
    raise InputError(
        f"no Instagram account for user {user_id}: add a user_tokens row for it, "
        "or set IG_ACCOUNT_ID and IG_LONG_TOKEN (see .env.example)"
    )


def account_from_token(row: UserToken) -> Account:
    """The account a `user_tokens` row names (rows without an account id are not fetchable)."""
    if row.account_id is None:
        raise InputError(f"user {row.u_id} has a token without an account id; add one")
    return Account(
        row.u_id, row.account_id, row.access_token.get_secret_value(), row, row.token_kind
    )


async def _refresh_ahead(
    graph: GraphClient,
    store: Store,
    account: Account,
    app: AppCredentials | None,
    now: datetime,
    notes: list[str],
) -> tuple[Account, bool]:
    """The account to fetch with, and whether this run refreshed its token (DESIGN §4).

    A token due within 7 days is refreshed when it can be; when another process refreshed it
    first, its token is used (and this run did not refresh it).
    """
    row = account.row
    if row is None or row.expires_at is None or row.expires_at > now + REFRESH_AHEAD:
        return account, False
    if row.token_kind == "facebook_login" and app is None:
        notes.append("token: expires within 7 days; set IG_APP_ID and IG_APP_SECRET to refresh it")
        return account, False
    try:
        return account_from_token(await refresh_now(graph, store, row, app, now)), True
    except RefreshRaced as race:
        return _winner(race.winner, row, notes) or account, False
    except (RefreshSkipped, RefreshFailed) as reason:
        notes.append(f"token: not refreshed: {reason}")
        return account, False


def _winner(winner: UserToken | None, mine: UserToken, notes: list[str]) -> Account | None:
    """The account with the token another process saved meanwhile, if it is a usable one."""
    if (
        winner is None
        or winner.status == "needs_reauth"
        or winner.account_id is None
        or winner.access_token == mine.access_token
    ):
        return None
    notes.append("token: another process refreshed it first; using its token")
    return account_from_token(winner)


async def _collect_authorized(
    graph: GraphClient,
    store: Store,
    account: Account,
    specs: Sequence[MetricSpec],
    plan: WindowPlan,
    *,
    app: AppCredentials | None,
    now: datetime,
    dry_run: bool,
) -> tuple[Collected, list[datetime], bool]:
    """`_collect` under the token policy: refresh ahead; on 190 refresh once and retry once.

    What the 190 says decides (igsync.graph.TokenProblem): a token the host cannot parse (the
    other login kind) is reported with the fix and kept usable; an expired, invalidated or
    removed one is marked needs_reauth without a pointless refresh; any other is refreshed once
    and, if it still fails, marked (never erased). Returns whether the token was refreshed.
    A dry run writes nothing, so it neither refreshes nor marks.
    """
    notes: list[str] = []
    refreshed = False
    if account.row is not None and account.row.status == "needs_reauth":
        out = Collected(errors={"token": f"token: needs re-authorization; {REAUTH}"})
        return out, [], False
    if not dry_run:
        account, refreshed = await _refresh_ahead(graph, store, account, app, now, notes)
    for attempt in (1, 2):
        try:
            out, keys = await collect(graph, account, specs, plan, now)
            out.notes[:0] = notes
            return out, keys, refreshed
        except GraphError as error:
            rejected = error
        problem = token_problem(rejected) or TokenProblem.UNKNOWN
        row = account.row
        if problem == TokenProblem.UNPARSEABLE:
            # Not a dead token: a host cannot read the other login's tokens. Never marked.
            if row is None:
                message = (
                    f"token: {graph.api(account.kind).base_url} cannot parse IG_LONG_TOKEN; "
                    "check the token (Facebook Login tokens start EAA, Instagram Login ones "
                    "IG) and IGSYNC_GRAPH_URL / IGSYNC_INSTAGRAM_URL"
                )
            else:
                message = f"token: {wrong_kind_message(graph, row)}"
            break
        if row is None:
            message = f"token: IG_LONG_TOKEN rejected by the Graph API ({rejected}); replace it"
            break
        if dry_run:
            message = f"token: rejected by the Graph API ({rejected}); dry run: not marked"
            break
        # An expired, invalidated or removed token (Meta's subcode says so) cannot be
        # refreshed: only a new login helps, so it is marked at once.
        refreshable = row.token_kind == "instagram_login" or app is not None
        if attempt == 1 and refreshable and not problem.needs_login:
            try:
                # forced: Meta just refused the token, so whatever igsync knows of its age,
                # only Meta's answer to a refresh can tell whether a new one can be had
                fresh = await refresh_now(graph, store, row, app, now, force=True)
                account = account_from_token(fresh)
                refreshed = True
                continue
            except RefreshRaced as race:
                if winner := _winner(race.winner, row, notes):
                    account = winner
                    continue
            except (RefreshSkipped, RefreshFailed) as reason:
                log.info("refresh after 190 failed: %s", reason)
        try:
            marked = await mark_needs_reauth(store, row)
            current = None if marked else await reread(store, row)
        except StoreError as error:
            message = f"token: rejected by the Graph API ({rejected}); {REAUTH} ({error})"
            break
        if marked:
            message = (
                f"token: rejected by the Graph API ({rejected}); marked needs_reauth: {REAUTH}"
            )
            break
        # Nothing was marked: another process changed the row since we read it.
        winner = _winner(current, row, notes)
        if attempt == 1 and winner is not None:
            account = winner
            continue
        message = f"token: rejected by the Graph API ({rejected}); {REAUTH}"
        break
    return Collected(errors={"token": message}, notes=notes), [], refreshed


async def fetch_account(
    graph: GraphClient,
    store: Store,
    account: Account,
    *,
    metrics: Sequence[str],
    plan: WindowPlan,
    app: AppCredentials | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    run_id: UUID | None = None,
) -> FetchResult:
    """Fetch `metrics` for one account over `plan` and upsert them; never raises for a metric.

    Graph and store failures become entries of `errors`; the rows that could be fetched are
    stored all the same. With app credentials the token is refreshed as DESIGN §4 says.
    """
    started = time.monotonic()
    started_at = datetime.now(UTC)
    now = (now or started_at).astimezone(UTC)
    specs = [METRIC_CONFIG[m] for m in metrics]
    out, keys, refreshed = await _collect_authorized(
        graph, store, account, specs, plan, app=app, now=now, dry_run=dry_run
    )
    if not keys and not out.errors:
        out.notes.append("the Graph API had no data for this window")
    rows = make_rows(account, specs, keys, out)

    inserted: Counter[str] = Counter()
    if rows and not dry_run:
        try:
            confirmed = await store.upsert_insights(rows)
            inserted.update(r.metric for r in rows)
            log.info("account %s: %d rows written and verified", account.account_id, confirmed)
        except StoreError as error:
            out.errors["store"] = f"store: {error}"
    if dry_run:
        out.notes.append(f"dry run: {len(rows)} rows fetched, nothing written")
    errors = [redact(e) for e in out.errors.values()]
    window = Window(since=day_label(keys[0]), until=day_label(keys[-1])) if keys else plan.requested
    result = FetchResult(
        success=not errors,
        total_inserted=sum(inserted.values()),
        total_errors=len(errors),
        metrics_inserted=dict(inserted),
        metrics_fetched=dict(Counter(r.metric for r in rows)),
        errors=errors,
        account_id=account.account_id,
        user_id=str(account.user_id),
        token_refreshed=refreshed,
        window=window,
        duration_s=round(time.monotonic() - started, 3),
        dry_run=dry_run,
        notes=[redact(n) for n in out.notes],
    )
    if not dry_run:
        await write_run_log(store, result, started_at, run_id or uuid4())
    return result


async def write_run_log(
    store: Store, result: FetchResult, started_at: datetime, run_id: UUID
) -> None:
    """One `instagram_sync_logs` row for `result`; a store failure here is logged, not raised."""
    status = "ok" if result.success else ("partial" if result.total_inserted else "failed")
    entry = SyncLog(
        run_id=run_id,
        u_id=UUID(result.user_id) if result.user_id else None,
        account_id=result.account_id,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        status=status,
        total_inserted=result.total_inserted,
        total_errors=result.total_errors,
        errors=result.errors,
        token_refreshed=result.token_refreshed,
    )
    try:
        await store.write_sync_log(entry)
    except StoreError as error:
        log.warning("could not write the sync log: %s", error)


class Tally:
    """Totals of a run of many accounts, kept as each result arrives.

    With `keep=False` no result is held (`sync-all --ndjson` prints each as it ends), so memory
    does not grow with the number of accounts; the report then has an empty `results`.
    """

    def __init__(self, *, keep: bool = True) -> None:
        self._keep = keep
        self._results: list[FetchResult] = []
        self.total = self.ok = self.inserted = self.errors = 0

    def add(self, result: FetchResult) -> None:
        self.total += 1
        self.ok += result.success
        self.inserted += result.total_inserted
        self.errors += result.total_errors
        if self._keep:
            self._results.append(result)

    def report(self, duration_s: float) -> SyncReport:
        return SyncReport(
            success=self.ok == self.total,
            accounts_total=self.total,
            accounts_ok=self.ok,
            accounts_failed=self.total - self.ok,
            total_inserted=self.inserted,
            total_errors=self.errors,
            duration_s=round(duration_s, 3),
            results=list(self._results),
        )


def summarize(results: Sequence[FetchResult], duration_s: float) -> SyncReport:
    """Roll per-account results into the report `sync-all` and `demo` print."""
    tally = Tally()
    for result in results:
        tally.add(result)
    return tally.report(duration_s)
