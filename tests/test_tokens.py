"""Token lifecycle against the simulator's token endpoints, on SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from pydantic import SecretStr

from igsync.catalogue import DEFAULT_METRICS
from igsync.errors import InputError, StoreError
from igsync.graph import GraphClient
from igsync.models import FetchResult, TokenUpdate, UserToken
from igsync.simulator import Fault, SimAccount, Simulator
from igsync.store import Store
from igsync.store.postgres import PostgresStore
from igsync.store.sqlite import SQLiteStore
from igsync.sync import Account, account_from_token, fetch_account
from igsync.tokens import (
    ASSUMED_LIFETIME,
    AppCredentials,
    checked_token_times,
    parse_duration,
    refresh_expiring_tokens,
)
from igsync.window import plan_window

pytestmark = pytest.mark.anyio

ACCOUNT = "17841400000000001"
APP = AppCredentials("sim-app-id", "sim-app-secret")
NOW = datetime.now(UTC)
WEEK = timedelta(days=7)
INSTAGRAM = "https://graph.instagram.com"  # the in-process transport's Instagram host


@pytest.fixture
def sim() -> Simulator:
    return Simulator([SimAccount(ACCOUNT, tz="America/Los_Angeles")], strict_tokens=True)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Store
    if request.param == "sqlite":
        opened = SQLiteStore(tmp_path / "igsync.db")
    else:
        opened = PostgresStore(request.getfixturevalue("fresh_postgres_url"))
    async with opened:
        await opened.init_schema()
        yield opened


@pytest.fixture
def graph(sim: Simulator) -> Callable[[], GraphClient]:
    return lambda: GraphClient(
        base_url="http://sim",
        instagram_url=INSTAGRAM,
        version="v27.0",
        transport=sim.transport(),
    )


async def seed(
    sim: Simulator,
    store: Store,
    *,
    expires_in: timedelta | None,
    kind: str = "facebook_login",
    age: timedelta = timedelta(days=50),
) -> UserToken:
    issued = NOW - age
    expires = None if expires_in is None else NOW + expires_in
    secret = sim.issue_token(ACCOUNT, kind=kind, issued_at=issued, expires_at=expires)  # type: ignore[arg-type]
    row = UserToken(
        u_id=uuid4(),
        access_token=SecretStr(secret),
        account_id=ACCOUNT,
        expires_at=expires,
        token_kind=kind,  # type: ignore[arg-type]
        last_refreshed_at=issued,
    )
    await store.save_token(row)
    return row


async def stored(store: Store, user: UUID) -> UserToken:
    (row,) = await store.list_tokens(u_id=user)
    return row


async def fetch_with_app(g: GraphClient, store: Store, token: UserToken) -> FetchResult:
    """The default fetch of the token's account, with app credentials (so it may refresh)."""
    return await fetch_account(
        g, store, account_from_token(token), metrics=DEFAULT_METRICS, plan=plan_window(NOW), app=APP
    )


async def test_a_token_expiring_within_the_window_is_refreshed_and_saved(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=3))
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
    assert [r.user_id for r in report.refreshed] == [str(old.u_id)]
    assert report.failed == []
    assert report.skipped == []
    new = await stored(store, old.u_id)
    secret = new.access_token.get_secret_value()
    assert secret != old.access_token.get_secret_value()
    info = sim.token_info(secret)
    assert info is not None
    assert info.account_id == ACCOUNT
    assert new.expires_at is not None
    assert new.expires_at > NOW + timedelta(days=59)
    assert new.status == "ok"
    assert new.last_refreshed_at is not None
    assert new.last_refreshed_at >= NOW
    assert report.refreshed[0].expires_at == new.expires_at


async def test_a_token_not_expiring_soon_is_skipped_untouched(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=40))
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
    assert report.skipped[0].reason == "expires in 39 days"
    assert (await stored(store, old.u_id)).access_token == old.access_token
    assert not [r for r in sim.requests if "oauth" in r.path]


async def test_an_expired_token_becomes_needs_reauth_and_is_kept(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=-timedelta(hours=1))
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
    assert "the user must log in again" in report.failed[0].error
    row = await stored(store, old.u_id)
    assert row.status == "needs_reauth"
    assert row.access_token == old.access_token


async def test_a_token_meta_rejects_becomes_needs_reauth_and_is_kept(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=2))
    sim.revoke_token(old.access_token.get_secret_value())
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
    assert "[code 190/467]" in report.failed[0].error
    row = await stored(store, old.u_id)
    assert (row.status, row.access_token) == ("needs_reauth", old.access_token)


async def test_a_failed_refresh_never_erases_the_old_token(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=2))
    sim.faults.append(Fault("server_error", times=100, endpoint="oauth/access_token"))
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
    assert report.failed[0].error.startswith("refresh failed, old token kept")
    row = await stored(store, old.u_id)
    assert (row.status, row.access_token, row.expires_at) == (
        "ok",
        old.access_token,
        old.expires_at,
    )


async def test_facebook_tokens_need_app_credentials(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    await seed(sim, store, expires_in=timedelta(days=2))
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=None, within=WEEK)
    assert "IG_APP_ID and IG_APP_SECRET" in report.failed[0].error


async def test_instagram_tokens_are_refreshed_by_metas_word_on_their_age(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    """Finding 2 of issue 8: the age is Meta's to tell. A token Meta itself issued under 24 h
    ago (by our record of its answer) and good for weeks waits for the next run without a call;
    one expiring within a week is tried regardless, and Meta's refusal is then a failure."""
    grown = await seed(
        sim, store, expires_in=timedelta(days=2), kind="instagram_login", age=timedelta(days=58)
    )
    fresh_by_meta = await seed(
        sim, store, expires_in=timedelta(days=40), kind="instagram_login", age=timedelta(hours=3)
    )
    doomed = await seed(
        sim, store, expires_in=timedelta(days=2), kind="instagram_login", age=timedelta(hours=3)
    )
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=None, within=timedelta(days=60))
    assert [r.user_id for r in report.refreshed] == [str(grown.u_id)]
    (skip,) = report.skipped
    assert (skip.user_id, "24 h" in skip.reason) == (str(fresh_by_meta.u_id), True)
    (failure,) = report.failed
    assert failure.user_id == str(doomed.u_id)
    assert "before it can be refreshed" in failure.error
    assert "log in again" in failure.error
    refreshes = [r for r in sim.requests if r.path.endswith("refresh_access_token")]
    assert [r.host for r in refreshes] == ["instagram", "instagram"]  # never the young+safe one
    for row in (fresh_by_meta, doomed):
        assert (await stored(store, row.u_id)).access_token == row.access_token


async def test_an_instagram_token_of_unknown_age_is_asked_about_not_assumed_young(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    """`accounts add` used to write last_refreshed_at = now, and the token was then skipped as
    'refreshed less than 24 h ago' until it died. Unknown age: Meta is asked."""
    old = await seed(
        sim, store, expires_in=timedelta(days=2), kind="instagram_login", age=timedelta(days=58)
    )
    await store.save_token(old.model_copy(update={"last_refreshed_at": None}))
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=None, within=WEEK)
    assert [r.user_id for r in report.refreshed] == [str(old.u_id)]
    row = await stored(store, old.u_id)
    assert row.expires_at is not None
    assert row.expires_at > NOW + timedelta(days=59)
    assert row.last_refreshed_at is not None  # Meta's answer: issued now


async def test_dry_run_changes_nothing(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=2))
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK, dry_run=True)
    assert [w.user_id for w in report.would_refresh] == [str(old.u_id)]
    assert report.refreshed == []
    assert (await stored(store, old.u_id)).access_token == old.access_token


async def test_dry_run_foretells_a_refresh_that_would_fail_without_app_credentials(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=2))
    async with graph() as g:
        dry = await refresh_expiring_tokens(g, store, app=None, within=WEEK, dry_run=True)
        real = await refresh_expiring_tokens(g, store, app=None, within=WEEK)
    assert dry.would_refresh == []
    assert [f.error for f in dry.failed] == [f.error for f in real.failed]
    assert "IG_APP_ID and IG_APP_SECRET" in dry.failed[0].error
    assert (await stored(store, old.u_id)).access_token == old.access_token


async def test_unknown_expiry_is_learned_from_debug_token(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=30))
    await store.save_token(old.model_copy(update={"expires_at": None}))
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
    assert report.skipped[0].reason.startswith("expires in 29 days")
    learned = (await stored(store, old.u_id)).expires_at
    assert learned is not None
    assert abs(learned - (NOW + timedelta(days=30))) < timedelta(seconds=5)


@pytest.mark.parametrize(
    "app",
    [AppCredentials(APP.app_id, "not-the-secret"), AppCredentials("1", APP.app_secret)],
    ids=["wrong_secret", "wrong_id"],
)
async def test_debug_token_refusing_the_app_names_the_app_s_settings_not_the_token(
    sim: Simulator, graph: Callable[[], GraphClient], app: AppCredentials
) -> None:
    """Meta answers 190 'Invalid OAuth access token signature.' for an app token that is not
    IG_APP_ID|IG_APP_SECRET of one app; the user token it was asked about is fine."""
    token = sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=50))
    async with graph() as g:
        with pytest.raises(InputError) as refused:
            await checked_token_times(g, token, app)
        assert (await checked_token_times(g, token, APP))[0] is not None
    assert str(refused.value).startswith("debug_token refused this app's credentials")
    assert "IG_APP_ID and IG_APP_SECRET" in str(refused.value)
    assert "signature" in str(refused.value)
    assert app.app_secret not in str(refused.value)


async def test_concurrent_refreshes_leave_one_valid_token(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=2))
    async with graph() as g1, graph() as g2:
        first, second = await asyncio.gather(
            refresh_expiring_tokens(g1, store, app=APP, within=WEEK),
            refresh_expiring_tokens(g2, store, app=APP, within=WEEK),
        )
    outcomes = sorted([len(first.refreshed), len(second.refreshed)])
    assert outcomes == [0, 1]
    loser = first if not first.refreshed else second
    assert "another process" in loser.skipped[0].reason
    row = await stored(store, old.u_id)
    info = sim.token_info(row.access_token.get_secret_value())
    assert row.access_token != old.access_token
    assert info is not None
    assert info.account_id == ACCOUNT
    assert not info.revoked


async def test_fetch_refreshes_a_token_about_to_expire_first(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=3))
    async with graph() as g:
        result = await fetch_with_app(g, store, old)
    assert result.success
    assert result.token_refreshed
    new = (await stored(store, old.u_id)).access_token.get_secret_value()
    insights = [r for r in sim.requests if r.path.endswith("/insights")]
    assert {r.headers["authorization"] for r in insights} == {f"Bearer {new}"}


async def test_fetch_on_190_refreshes_once_and_retries_once(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=40))
    sim.faults.append(Fault("invalid_token", times=1))  # 190 without a subcode: may refresh
    async with graph() as g:
        result = await fetch_with_app(g, store, old)
    assert result.success, result.errors
    assert result.token_refreshed
    assert result.total_inserted == 12
    assert (await stored(store, old.u_id)).access_token != old.access_token


@pytest.mark.parametrize("fault", ["expired_token", "logged_out"])
async def test_a_190_that_needs_a_new_login_is_marked_without_a_pointless_refresh(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient], fault: str
) -> None:
    """463 (expired) and 467 (logged out): Meta refreshes neither, so none is attempted."""
    old = await seed(sim, store, expires_in=timedelta(days=40))
    sim.faults.append(Fault(fault, times=1))  # type: ignore[arg-type]
    async with graph() as g:
        result = await fetch_with_app(g, store, old)
    assert not result.success
    assert "needs_reauth" in result.errors[0]
    row = await stored(store, old.u_id)
    assert (row.status, row.access_token) == ("needs_reauth", old.access_token)
    assert not [r for r in sim.requests if r.path.endswith("oauth/access_token")]


@pytest.mark.parametrize("kind", ["facebook_login", "instagram_login"])
async def test_a_cannot_parse_190_never_marks_needs_reauth(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient], kind: str
) -> None:
    """The host cannot read the token: a kind mismatch, reported with the fix; the token is
    kept usable (status ok) and no refresh is tried."""
    old = await seed(sim, store, expires_in=timedelta(days=40), kind=kind)
    sim.faults.append(Fault("unparseable_token", times=1))
    async with graph() as g:
        result = await fetch_with_app(g, store, old)
    assert not result.success
    (error,) = result.errors
    # the token's shape fits its kind, so the host URL is what is named as the fault
    variable = "IGSYNC_GRAPH_URL" if kind == "facebook_login" else "IGSYNC_INSTAGRAM_URL"
    assert f"cannot parse this {kind} token; check that {variable}" in error
    assert "(the token was kept)" in error
    row = await stored(store, old.u_id)
    assert (row.status, row.access_token) == ("ok", old.access_token)
    assert not [r for r in sim.requests if "access_token" in r.path]


async def test_fetch_marks_needs_reauth_when_the_refresh_cannot_save_it(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=40))
    sim.revoke_token(old.access_token.get_secret_value())
    async with graph() as g:
        result = await fetch_with_app(g, store, old)
    assert not result.success
    assert not result.token_refreshed
    assert "needs_reauth" in result.errors[0]
    assert "log in again" in result.errors[0]
    row = await stored(store, old.u_id)
    assert (row.status, row.access_token) == ("needs_reauth", old.access_token)
    calls = len(sim.requests)
    async with graph() as g:
        again = await fetch_with_app(g, store, row)
    assert "needs re-authorization" in again.errors[0]
    assert len(sim.requests) == calls  # a dead token costs no more API calls


async def test_appsecret_proof_is_sent_when_the_app_requires_it(store: Store) -> None:
    sim = Simulator([SimAccount(ACCOUNT)], require_appsecret_proof=True)
    token = sim.issue_token(ACCOUNT)
    row = UserToken(u_id=uuid4(), access_token=SecretStr(token), account_id=ACCOUNT)
    for secret, ok in ((None, False), ("sim-app-secret", True)):
        async with GraphClient(
            base_url="http://sim", version="v27.0", app_secret=secret, transport=sim.transport()
        ) as g:
            result = await fetch_account(
                g, store, account_from_token(row), metrics=("reach",), plan=plan_window(NOW)
            )
        assert result.success is ok, result.errors


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", WEEK),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize(
    "text", ["7", "d", "0d", "-1d", "1.5d", "7days", "", "²d", "٣d", "7d ", "99999999999d", "366d"]
)
def test_bad_durations_are_input_errors(text: str) -> None:
    from igsync.errors import InputError

    with pytest.raises(InputError, match="--expiring-within"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["366d", "99999999999d", "9" * 5000 + "d", "0008760000h"])
def test_a_duration_too_long_says_the_bound_whatever_its_digits(text: str) -> None:
    """20 digits said "expected a duration" (the pattern took 7 at most); 5,000 would have
    been int()'s ValueError past its 4,300-digit limit."""
    from igsync.errors import InputError

    with pytest.raises(InputError, match="at most 365d"):
        parse_duration(text)
    assert parse_duration("0007d") == WEEK  # leading zeros are no length


# -- a refreshed token is always saved ---------------------------------------------------------


class WithoutExpiresIn(httpx.AsyncBaseTransport):
    """The simulator, but token grants come without `expires_in` (GRAPH_API §4: it may)."""

    def __init__(self, sim: Simulator) -> None:
        self._inner = sim.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if not request.url.path.endswith(("oauth/access_token", "refresh_access_token")):
            return response
        body = json.loads(await response.aread())
        body.pop("expires_in", None)
        return httpx.Response(response.status_code, json=body)


def graph_without_expires_in(sim: Simulator) -> GraphClient:
    return GraphClient(
        base_url="http://sim",
        instagram_url=INSTAGRAM,
        version="v27.0",
        transport=WithoutExpiresIn(sim),
    )


async def test_a_grant_without_expiry_is_saved_even_when_debug_token_fails(
    sim: Simulator, store: Store
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=2))
    sim.faults.append(Fault("server_error", times=100, endpoint="debug_token"))
    before = datetime.now(UTC)
    async with graph_without_expires_in(sim) as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
    after = datetime.now(UTC)
    assert report.failed == []
    assert [r.user_id for r in report.refreshed] == [str(old.u_id)]
    row = await stored(store, old.u_id)
    assert row.access_token != old.access_token
    assert sim.token_info(row.access_token.get_secret_value()) is not None
    assert row.status == "ok"
    # unknown expiry: a conservative guess, well short of Meta's 60 days
    assert row.expires_at is not None
    # (from the clock of the refresh: NOW is taken at import, maybe minutes earlier)
    assert before + ASSUMED_LIFETIME <= row.expires_at <= after + ASSUMED_LIFETIME


async def test_a_grant_without_expiry_learns_it_from_debug_token(
    sim: Simulator, store: Store
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=2))
    async with graph_without_expires_in(sim) as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
    row = await stored(store, old.u_id)
    assert row.expires_at is not None
    assert row.expires_at > NOW + timedelta(days=59)
    assert report.refreshed[0].expires_at == row.expires_at


async def test_fetch_saves_a_refreshed_token_even_when_debug_token_fails(
    sim: Simulator, store: Store
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=3))
    sim.faults.append(Fault("server_error", times=100, endpoint="debug_token"))
    async with graph_without_expires_in(sim) as g:
        result = await fetch_with_app(g, store, old)
    assert result.success, result.errors
    assert result.token_refreshed
    assert (await stored(store, old.u_id)).access_token != old.access_token


class FailingSaves:
    """A store whose token writes fail for one row: a database error mid-run."""

    def __init__(self, inner: Store, broken: UUID) -> None:
        self._inner = inner
        self._broken = broken

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def update_token(self, token_id: UUID, expected: str, update: TokenUpdate) -> bool:
        if token_id == self._broken:
            raise StoreError("the database refused the write")
        return await self._inner.update_token(token_id, expected, update)


async def test_one_accounts_failure_never_aborts_the_others(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    broken = await seed(sim, store, expires_in=timedelta(days=2))
    fine = await seed(sim, store, expires_in=timedelta(days=2))
    async with graph() as g:
        report = await refresh_expiring_tokens(
            g,
            FailingSaves(store, broken.token_id),  # type: ignore[arg-type]
            app=APP,
            within=WEEK,
        )
    assert [r.user_id for r in report.refreshed] == [str(fine.u_id)]
    assert [f.user_id for f in report.failed] == [str(broken.u_id)]
    assert "the database refused the write" in report.failed[0].error
    assert (await stored(store, broken.u_id)).access_token == broken.access_token


# -- dry run, needs_reauth, unknown expiry --------------------------------------------------------


async def test_dry_run_writes_nothing_and_calls_no_graph_api(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    due = await seed(sim, store, expires_in=timedelta(days=2))
    expired = await seed(sim, store, expires_in=-timedelta(hours=1))
    unknown = await seed(sim, store, expires_in=timedelta(days=3))
    await store.save_token(unknown.model_copy(update={"expires_at": None}))
    rejected = await seed(sim, store, expires_in=timedelta(days=1))
    sim.revoke_token(rejected.access_token.get_secret_value())
    before = [t.model_dump() for t in await store.list_tokens()]
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK, dry_run=True)
    assert [t.model_dump() for t in await store.list_tokens()] == before
    assert sim.requests == []
    assert {w.user_id for w in report.would_refresh} == {str(due.u_id), str(rejected.u_id)}
    assert [f.user_id for f in report.failed] == [str(expired.u_id)]
    assert "expiry unknown" in report.skipped[0].reason


async def test_a_token_needing_reauth_stays_failed_on_every_later_run(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=2))
    sim.revoke_token(old.access_token.get_secret_value())
    async with graph() as g:
        first = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
        calls = len(sim.requests)
        later = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
        dry = await refresh_expiring_tokens(g, store, app=APP, within=WEEK, dry_run=True)
    for report in (first, later, dry):
        assert [f.user_id for f in report.failed] == [str(old.u_id)]
        assert "the user must log in again" in report.failed[0].error
        assert report.skipped == []
    assert len(sim.requests) == calls  # a dead token costs no more API calls


async def test_unknown_expiry_within_the_window_is_learned_then_refreshed(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=3))
    await store.save_token(old.model_copy(update={"expires_at": None}))
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
    assert [r.user_id for r in report.refreshed] == [str(old.u_id)]
    row = await stored(store, old.u_id)
    assert row.access_token != old.access_token
    assert row.expires_at is not None
    assert row.expires_at > NOW + timedelta(days=59)


async def test_unknown_expiry_without_app_credentials_is_skipped_saying_why(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient]
) -> None:
    old = await seed(sim, store, expires_in=timedelta(days=3))
    await store.save_token(old.model_copy(update={"expires_at": None}))
    async with graph() as g:
        report = await refresh_expiring_tokens(g, store, app=None, within=WEEK)
    (skip,) = report.skipped
    assert "expiry unknown" in skip.reason
    assert "IG_APP_ID" in skip.reason
    assert "--expires-at" in skip.reason
    assert sim.requests == []


async def test_refresh_works_when_the_app_requires_appsecret_proof(store: Store) -> None:
    sim = Simulator([SimAccount(ACCOUNT)], strict_tokens=True, require_appsecret_proof=True)
    fb = await seed(sim, store, expires_in=timedelta(days=2))
    ig = await seed(sim, store, expires_in=timedelta(days=2), kind="instagram_login")
    unknown = await seed(sim, store, expires_in=timedelta(days=30))
    await store.save_token(unknown.model_copy(update={"expires_at": None}))
    async with GraphClient(
        base_url="http://sim",
        instagram_url=INSTAGRAM,
        version="v27.0",
        app_secret="sim-app-secret",
        instagram_app_secret="sim-instagram-app-secret",
        transport=sim.transport(),
    ) as g:
        report = await refresh_expiring_tokens(g, store, app=APP, within=WEEK)
    assert report.failed == []
    assert {r.user_id for r in report.refreshed} == {str(fb.u_id), str(ig.u_id)}
    assert (await stored(store, unknown.u_id)).expires_at is not None  # debug_token answered
    assert {r.status for r in sim.requests} == {200}


# -- fetch and the compare-and-swap race ---------------------------------------------------------


def test_an_accounts_repr_never_shows_its_token() -> None:
    secret = "EAAG" + "x" * 60
    row = UserToken(u_id=uuid4(), access_token=SecretStr(secret), account_id=ACCOUNT)
    account = account_from_token(row)
    assert account.token == secret
    assert secret not in repr(account)
    assert secret not in str(account)
    assert secret not in repr(Account(row.u_id, ACCOUNT, secret))


class RacedStore:
    """Another process saves `winner` into the row just before our first token write."""

    def __init__(self, inner: Store, winner: str) -> None:
        self._inner = inner
        self._winner = winner
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def update_token(self, token_id: UUID, expected: str, update: TokenUpdate) -> bool:
        if not self.raced:
            self.raced = True
            other = TokenUpdate(
                access_token=SecretStr(self._winner),
                expires_at=NOW + timedelta(days=60),
                status="ok",
                last_refreshed_at=NOW,
            )
            assert await self._inner.update_token(token_id, expected, other)
        return await self._inner.update_token(token_id, expected, update)


@pytest.mark.parametrize("when", ["ahead of expiry", "after 190"])
async def test_fetch_losing_the_refresh_race_carries_on_with_the_winners_token(
    sim: Simulator, store: Store, graph: Callable[[], GraphClient], when: str
) -> None:
    if when == "ahead of expiry":
        old = await seed(sim, store, expires_in=timedelta(days=3))
    else:
        old = await seed(sim, store, expires_in=timedelta(days=40))
        sim.faults.append(Fault("expired_token", times=1))
    winner = sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=60))
    raced = RacedStore(store, winner)
    async with graph() as g:
        result = await fetch_account(
            g,
            raced,  # type: ignore[arg-type]
            account_from_token(old),
            metrics=DEFAULT_METRICS,
            plan=plan_window(NOW),
            app=APP,
        )
    assert raced.raced
    assert result.success, result.errors
    assert result.total_inserted == 12
    assert not result.token_refreshed  # the other process refreshed it, not this one
    assert any("another process" in note for note in result.notes)
    assert not any("needs_reauth" in text for text in result.errors + result.notes)
    row = await stored(store, old.u_id)
    assert (row.access_token.get_secret_value(), row.status) == (winner, "ok")
    insights = [r for r in sim.requests if r.path.endswith("/insights")]
    assert insights[-1].headers["authorization"] == f"Bearer {winner}"
