"""fetch_account against the simulator in-process: what lands in the store, and what is said."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from igsync.catalogue import DEFAULT_METRICS, METRIC_CONFIG
from igsync.errors import InputError
from igsync.graph import GraphClient
from igsync.local_day import day_label
from igsync.models import FetchResult
from igsync.simulator import Fault, SimAccount, Simulator
from igsync.store.sqlite import SQLiteStore
from igsync.sync import Account, fetch_account
from igsync.window import WindowPlan, plan_window
from samples import sample

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
LA, KOLKATA = "17841400000000001", "17841400000000002"
TOKEN = "EAAJ-sync-test-token-0123456789abcdef"


@pytest.fixture
def sim() -> Simulator:
    return Simulator(
        [SimAccount(LA, tz="America/Los_Angeles"), SimAccount(KOLKATA, tz="Asia/Kolkata")],
        now=lambda: NOW,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "igsync.db") as s:
        await s.init_schema()
        yield s


class Run:
    def __init__(self, sim: Simulator, store: SQLiteStore) -> None:
        self.sim, self.store, self.user = sim, store, uuid4()

    async def __call__(
        self,
        account_id: str = LA,
        *,
        metrics: tuple[str, ...] = DEFAULT_METRICS,
        plan: WindowPlan | None = None,
        dry_run: bool = False,
        user: UUID | None = None,
    ) -> FetchResult:
        account = Account(user or self.user, account_id, TOKEN)
        async with GraphClient(
            base_url="http://sim", version="v27.0", transport=self.sim.transport()
        ) as graph:
            return await fetch_account(
                graph,
                self.store,
                account,
                metrics=metrics,
                plan=plan or plan_window(NOW),
                dry_run=dry_run,
                now=NOW,
            )


@pytest.fixture
def run(sim: Simulator, store: SQLiteStore) -> Run:
    return Run(sim, store)


async def test_default_fetch_stores_four_metrics_for_three_days(run: Run) -> None:
    result = await run()
    assert result.success, result.errors
    assert result.total_inserted == 12
    assert result.metrics_inserted == dict.fromkeys(DEFAULT_METRICS, 3)
    assert result.window is not None
    assert (result.window.since, result.window.until) == (date(2026, 11, 22), date(2026, 11, 24))
    rows = await run.store.read_insights()
    assert len(rows) == 12


async def test_every_account_stream_metric_is_fetched_and_stored_per_day(
    run: Run, sim: Simulator
) -> None:
    account_metrics = tuple(n for n, s in METRIC_CONFIG.items() if s.stream == "account")
    result = await run(metrics=account_metrics)
    assert result.success, result.errors
    assert result.metrics_inserted == dict.fromkeys(account_metrics, 3)
    rows = await run.store.read_insights()
    keys = {r.end_time for r in rows}
    assert len(keys) == 3  # every metric of a day shares that day's key
    for row in rows:
        assert row.metric_type == METRIC_CONFIG[row.metric].metric_type
        assert row.value == sim.daily_value(LA, row.metric, day_label(row.end_time))


async def test_both_metric_types_share_the_utc_day_keys(run: Run, sim: Simulator) -> None:
    await run()
    rows = await run.store.read_insights()
    keys = {m: {r.end_time for r in rows if r.metric == m} for m in DEFAULT_METRICS}
    expected = {sim.day_end(LA, date(2026, 11, d)) for d in (22, 23, 24)}
    assert all(k == expected for k in keys.values())
    assert all(k.utcoffset() == timedelta(0) and k.hour == 8 for k in expected)


async def test_stored_values_are_what_the_api_served_for_each_local_day(
    run: Run, sim: Simulator
) -> None:
    await run()
    for row in await run.store.read_insights():
        assert row.value == sim.daily_value(LA, row.metric, day_label(row.end_time))


async def test_an_account_east_of_utc_gets_its_own_day_keys(run: Run, sim: Simulator) -> None:
    result = await run(KOLKATA)
    assert result.success, result.errors
    rows = await run.store.read_insights(account_id=KOLKATA)
    assert {r.end_time for r in rows} == {
        datetime(2026, 11, d, 18, 30, tzinfo=UTC) for d in (22, 23, 24)
    }
    for row in rows:
        assert row.value == sim.daily_value(KOLKATA, row.metric, day_label(row.end_time))


async def test_a_window_across_a_dst_change_keeps_one_key_per_day(run: Run, sim: Simulator) -> None:
    plan = plan_window(NOW, since=date(2026, 10, 30), until=date(2026, 11, 2))
    result = await run(plan=plan)
    assert result.success, result.errors
    rows = await run.store.read_insights()
    by_day = {day_label(r.end_time) for r in rows}
    assert by_day == {date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)}
    assert {r.end_time.hour for r in rows if day_label(r.end_time) < date(2026, 11, 1)} == {7}
    assert {r.end_time.hour for r in rows if day_label(r.end_time) >= date(2026, 11, 1)} == {8}
    for row in rows:
        assert row.value == sim.daily_value(LA, row.metric, day_label(row.end_time))


async def test_rerun_adds_no_rows_and_revised_values_win(run: Run, sim: Simulator) -> None:
    await run()
    first = {r.key: r.value for r in await run.store.read_insights()}
    sim.revision += 1
    result = await run()
    assert result.total_inserted == 12  # updated rows count as written and verified
    second = {r.key: r.value for r in await run.store.read_insights()}
    assert second.keys() == first.keys()
    assert second != first
    for row in await run.store.read_insights():
        assert row.value == sim.daily_value(LA, row.metric, day_label(row.end_time))


async def test_failed_metric_does_not_lose_the_others(run: Run, sim: Simulator) -> None:
    sim.accounts[LA] = SimAccount(
        LA, tz="America/Los_Angeles", denied_metrics=frozenset({"profile_views"})
    )
    result = await run()
    assert not result.success
    assert result.total_errors == 1
    assert result.errors[0].startswith("profile_views: ")
    assert "[code 10]" in result.errors[0]
    assert result.metrics_inserted == {"reach": 3, "accounts_engaged": 3, "follower_count": 3}


async def test_grouped_request_falls_back_to_one_metric_per_request(
    run: Run, sim: Simulator
) -> None:
    sim.accounts[LA] = SimAccount(
        LA, tz="America/Los_Angeles", denied_metrics=frozenset({"accounts_engaged"})
    )
    await run()
    total_value = [r for r in sim.requests if r.query.get("metric_type") == "total_value"]
    grouped = [r for r in total_value if "," in r.query["metric"]]
    single = [r for r in total_value if r.query["metric"] == "profile_views"]
    assert grouped
    assert len(single) == 3


async def test_empty_is_stored_as_null_never_zero(run: Run, sim: Simulator) -> None:
    sim.accounts[LA] = SimAccount(LA, tz="America/Los_Angeles", followers=50)
    result = await run()
    assert result.success
    rows = await run.store.read_insights()
    followers = [r for r in rows if r.metric == "follower_count"]
    assert len(followers) == 3
    assert all(r.value is None for r in followers)
    assert all(r.value is not None for r in rows if r.metric == "reach")


async def test_an_account_without_data_stores_nothing_and_says_so(run: Run, sim: Simulator) -> None:
    sim.accounts[LA] = SimAccount(LA, tz="America/Los_Angeles", empty=True)
    result = await run()
    assert result.success
    assert result.total_inserted == 0
    assert any("no data" in n for n in result.notes)


async def test_total_value_only_learns_day_keys_without_storing_the_probe(
    run: Run, sim: Simulator
) -> None:
    result = await run(metrics=("profile_views",))
    assert result.success
    rows = await run.store.read_insights()
    assert {r.metric for r in rows} == {"profile_views"}
    assert {r.end_time for r in rows} == {sim.day_end(LA, date(2026, 11, d)) for d in (22, 23, 24)}


async def test_total_value_metrics_are_reported_when_no_day_keys_could_be_learned(
    run: Run, sim: Simulator
) -> None:
    sim.accounts[LA] = SimAccount(
        LA, tz="America/Los_Angeles", denied_metrics=frozenset({"reach", "follower_count"})
    )
    result = await run()
    assert not result.success
    assert result.total_errors == 4
    failed = {e.split(":", 1)[0] for e in result.errors}
    assert failed == {"reach", "follower_count", "profile_views", "accounts_engaged"}
    assert any(
        e.startswith("profile_views: could not learn the day keys") and "[code 10]" in e
        for e in result.errors
    )


async def test_total_value_metrics_do_not_depend_on_a_time_series_metric_having_data(
    run: Run, sim: Simulator
) -> None:
    # Under 100 followers, follower_count serves no data; profile_views must still be fetched.
    sim.accounts[LA] = SimAccount(LA, tz="America/Los_Angeles", followers=50)
    result = await run(metrics=("follower_count", "profile_views"))
    assert result.success
    assert result.metrics_inserted == {"follower_count": 3, "profile_views": 3}
    rows = await run.store.read_insights()
    assert all(r.value is not None for r in rows if r.metric == "profile_views")
    assert all(r.value is None for r in rows if r.metric == "follower_count")


async def test_every_request_names_its_metric_type(run: Run, sim: Simulator) -> None:
    await run()
    assert sim.requests
    for request in sim.requests:
        assert request.query["metric_type"] in ("time_series", "total_value")
        assert "access_token" not in request.query


async def test_an_expired_token_fails_the_account_and_stores_nothing(
    run: Run, sim: Simulator
) -> None:
    sim.expire_token(TOKEN)
    result = await run()
    assert not result.success
    assert result.errors[0].startswith("token: IG_LONG_TOKEN rejected by the Graph API")
    assert "[code 190/463]" in result.errors[0]
    assert await run.store.read_insights() == []


async def test_throttled_then_ok_is_retried(run: Run, sim: Simulator) -> None:
    sim.faults += [Fault("throttle_ig"), Fault("throttle"), Fault("server_error")]
    result = await run()
    assert result.success, result.errors
    assert result.total_inserted == 12


async def test_a_long_backfill_is_split_and_follower_count_clamped(
    run: Run, sim: Simulator
) -> None:
    plan = plan_window(NOW, since=date(2026, 9, 1), until=date(2026, 11, 14))
    result = await run(plan=plan)
    assert result.success, result.errors
    for request in sim.requests:
        assert int(request.query["until"]) - int(request.query["since"]) <= 30 * 86400
    assert result.metrics_inserted["reach"] == 75
    assert 0 < result.metrics_inserted["follower_count"] < 30
    assert any(n.startswith("follower_count: window clamped") for n in result.notes)


async def test_an_until_not_over_yet_is_cut_back_to_now_and_said(run: Run) -> None:
    """--since in the future is refused; an --until in the future ends the window now, and
    the result says so (it ended at the last complete day without a word)."""
    until = NOW.date() + timedelta(days=400)
    result = await run(plan=plan_window(NOW, since=NOW.date() - timedelta(days=3), until=until))
    assert result.success, result.errors
    assert result.total_inserted > 0
    assert any(n.startswith(f"--until {until} is not over yet: the window") for n in result.notes)
    past = await run(plan=plan_window(NOW, since=NOW.date() - timedelta(days=3)))
    assert not any("not over yet" in n for n in past.notes)


async def test_follower_count_takes_all_of_its_30_days(run: Run, sim: Simulator) -> None:
    result = await run(plan=plan_window(NOW, days=60))
    assert result.success, result.errors
    assert result.metrics_inserted["reach"] == 60
    assert result.metrics_inserted["follower_count"] == 30


@pytest.mark.parametrize(("tz", "kept"), [("America/Los_Angeles", 30), ("Asia/Tokyo", 29)])
async def test_the_last_30_days_lose_a_day_of_follower_count_only_where_meta_s_limit_cuts_it(
    run: Run, sim: Simulator, tz: str, kept: int
) -> None:
    """Meta's limit counts back 30 days from its clock (NOW: 15:00 UTC). Day 2026-10-26 ends at
    07:00 UTC the next day in Los Angeles, inside the limit; at 15:00 UTC that day in Tokyo,
    not inside it with igsync's 10 minutes of margin: only there is a day left out, and only
    there is it said."""
    account = "17841400000000077"
    sim.accounts[account] = SimAccount(account, tz=tz)
    result = await run(
        account, plan=plan_window(NOW, since=date(2026, 10, 26), until=date(2026, 11, 24))
    )
    assert result.success, result.errors
    assert result.metrics_inserted["reach"] == 30
    assert result.metrics_inserted["follower_count"] == kept
    clamped = [n for n in result.notes if n.startswith("follower_count: window clamped")]
    assert clamped == (
        []
        if kept == 30
        else ["follower_count: window clamped to its last 30 days (1 day(s) left out)"]
    )


async def test_dry_run_fetches_but_writes_nothing(run: Run) -> None:
    result = await run(dry_run=True)
    assert result.success
    assert result.total_inserted == 0
    assert result.metrics_fetched == dict.fromkeys(DEFAULT_METRICS, 3)
    assert await run.store.read_insights() == []


async def test_each_run_leaves_a_sync_log_without_the_token(run: Run, sim: Simulator) -> None:
    sim.accounts[LA] = SimAccount(
        LA, tz="America/Los_Angeles", denied_metrics=frozenset({"profile_views"})
    )
    await run()
    conn = run.store._connect()
    logs = conn.execute(
        "select status, total_inserted, total_errors, errors from instagram_sync_logs"
    ).fetchall()
    assert logs == [("partial", 9, 1, logs[0][3])]
    assert "profile_views" in logs[0][3]
    assert TOKEN not in logs[0][3]


class _MetaRetired(httpx.AsyncBaseTransport):
    """The simulator, but Meta has retired `gone` since igsync's catalogue was written: asking
    for it is refused with Meta's real "must be one of" body, whose list leaves it out."""

    def __init__(self, inner: httpx.AsyncBaseTransport, gone: str) -> None:
        self.inner, self.gone = inner, gone

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.gone in request.url.params.get("metric", "").split(","):
            body = sample("error_100_metric_must_be_one_of_partial.json")
            message = body["error"]["message"]
            body["error"]["message"] = message.replace(f" {self.gone},", "")
            assert body["error"]["message"] != message
            return httpx.Response(400, json=body)
        return await self.inner.handle_async_request(request)


async def test_a_metric_meta_retired_is_named_so_and_the_others_are_kept(
    sim: Simulator, store: SQLiteStore
) -> None:
    transport = _MetaRetired(sim.transport(), "accounts_engaged")
    async with GraphClient(base_url="http://sim", version="v27.0", transport=transport) as graph:
        result = await fetch_account(
            graph,
            store,
            Account(uuid4(), LA, TOKEN),
            metrics=DEFAULT_METRICS,
            plan=plan_window(NOW),
            now=NOW,
        )
    assert result.metrics_inserted == {"reach": 3, "profile_views": 3, "follower_count": 3}
    (error,) = result.errors
    assert error.startswith(
        "accounts_engaged: retired by Meta: not among the metrics it accepts today ((#100)"
    )


async def test_retired_and_unknown_metrics_are_refused_before_any_request(
    run: Run, sim: Simulator
) -> None:
    with pytest.raises(InputError, match=r"impressions.*views"):
        await run(metrics=("reach", "impressions"))
    with pytest.raises(InputError, match="unknown metric reech"):
        await run(metrics=("reech",))
    assert sim.requests == []
