"""A Graph API that cannot be reached at all stops `sync-all` from starting more accounts.

A wrong IGSYNC_GRAPH_URL, a dead network or proxy: every call spends its retries without a
connection, and each account would wait out those retries in turn. The network is cut by a
transport that raises httpx.ConnectError (what a refused connection or a failed DNS lookup
raises) once told to; stamina's test mode spends the retries without waiting (conftest).
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import stamina

from igsync.errors import GraphError
from igsync.graph import GraphClient, RetryPolicy
from igsync.graph._client import UNREACHABLE_AFTER
from igsync.models import FetchResult, SyncReport
from igsync.simulator import SimAccount, Simulator
from igsync.store.sqlite import SQLiteStore
from sync_runs import add_tokens, sync_over

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNTS = [f"1784160000000{i:04d}" for i in range(1, 61)]


class Network(httpx.AsyncBaseTransport):
    """The simulator behind a network that can be cut (`down`), or that refuses every
    `flaky`-th connection."""

    def __init__(self, sim: Simulator, *, flaky: int = 0) -> None:
        self._inner = sim.transport()
        self.down = False
        self._flaky = flaky
        self.requests = 0
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.down or (self._flaky and self.requests % self._flaky == 0):
            self.refused += 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self._inner.handle_async_request(request)


@pytest.fixture
def sim() -> Simulator:
    return Simulator([SimAccount(a, tz="Europe/Berlin") for a in ACCOUNTS], now=lambda: NOW)


async def run(
    network: Network, store: SQLiteStore, *, batch: bool, cut_after: int | None = None
) -> SyncReport:
    done: list[FetchResult] = []

    def heard(result: FetchResult) -> None:
        done.append(result)
        if cut_after is not None and len(done) == cut_after:
            network.down = True

    return await sync_over(
        store, network, now=NOW, batch=batch, app_id="a", concurrency=4, on_result=heard
    )


def logged_accounts(db: Path) -> set[str]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("select account_id from instagram_sync_logs").fetchall()
    return {account for (account,) in rows}


async def test_calls_that_never_connect_make_the_client_take_the_api_for_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    async with GraphClient(
        base_url="http://nowhere.invalid",
        version="v27.0",
        transport=httpx.MockTransport(refuse),
    ) as graph:
        for _ in range(UNREACHABLE_AFTER):
            assert graph.unreachable_reason is None
            with pytest.raises(GraphError) as raised:
                await graph.get_insights(
                    "17841600000000001", "EAAG-x", metrics=["reach"], metric_type="time_series"
                )
            assert raised.value.unreachable
            assert str(raised.value).startswith("could not reach the Graph API (ConnectError")
        reason = graph.unreachable_reason
    assert reason is not None
    assert reason.startswith(
        f"the Graph API could not be reached: {UNREACHABLE_AFTER} calls in a row found no"
        " connection, each after its retries (the last: ConnectError at"
        " http://nowhere.invalid on /v27.0/17841600000000001/insights); check the network"
    )
    assert reason.endswith("or run `igsync doctor`")
    assert "IGSYNC_GRAPH_URL" in reason
    assert "EAAG-x" not in reason


async def test_any_answer_between_failed_connections_starts_the_count_again() -> None:
    calls = 0

    def sometimes(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls % UNREACHABLE_AFTER == 0:  # a refusal from Meta is an answer
            return httpx.Response(400, json={"error": {"message": "(#100) bad", "code": 100}})
        raise httpx.ConnectError("refused", request=request)

    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=httpx.MockTransport(sometimes)
    ) as graph:
        # every call spends its 5 attempts: the 16th request of each run of 16 answers
        for _ in range(3 * UNREACHABLE_AFTER):
            with pytest.raises(GraphError):
                await graph.get_insights(
                    "17841600000000001", "EAAG-x", metrics=["reach"], metric_type="time_series"
                )
        assert graph.unreachable_reason is None


@pytest.mark.parametrize("batch", [False, True], ids=["alone", "batched"])
async def test_a_network_cut_mid_run_stops_starting_accounts(
    sim: Simulator, tmp_path: Path, batch: bool
) -> None:
    db = tmp_path / "x.db"
    network = Network(sim)
    async with SQLiteStore(db) as store:
        await add_tokens(store, sim, ACCOUNTS)
        report = await run(network, store, batch=batch, cut_after=5)
        assert report.success is False
        assert report.stopped is not None
        assert report.stopped.startswith("the Graph API could not be reached: 16 calls in a row")
        assert report.accounts_total == len(ACCOUNTS)
        failed = [r for r in report.results if r.attempted and not r.success]
        skipped = [r for r in report.results if not r.attempted]
        # the accounts whose calls made up the count, and those in flight as it tripped
        assert 0 < len(failed) <= UNREACHABLE_AFTER + 4
        assert len(skipped) == report.accounts_not_attempted
        assert len(skipped) >= len(ACCOUNTS) - report.accounts_ok - (UNREACHABLE_AFTER + 4)
        assert report.accounts_ok + len(failed) + len(skipped) == len(ACCOUNTS)
        assert all(r.errors == [f"not attempted: {report.stopped}"] for r in skipped)
        assert all("could not reach the Graph API (ConnectError" in r.errors[0] for r in failed)
        # what was attempted is logged; what was not leaves no row
        assert logged_accounts(db) == {
            r.account_id for r in report.results if r.attempted and r.account_id
        }

        # the network back, the next run syncs every account: no claim was left behind
        network.down = False
        again = await run(network, store, batch=batch)
    assert again.stopped is None
    assert again.accounts_ok == len(ACCOUNTS)


async def test_a_flaky_network_never_stops_the_run(sim: Simulator, tmp_path: Path) -> None:
    network = Network(sim, flaky=3)  # every third connection refused; retries get through
    async with SQLiteStore(tmp_path / "x.db") as store:
        await add_tokens(store, sim, ACCOUNTS)
        report = await run(network, store, batch=False)
    assert network.refused > UNREACHABLE_AFTER
    assert report.stopped is None
    assert report.accounts_ok == len(ACCOUNTS)


async def test_a_call_waiting_to_retry_gives_up_at_once_when_told_to_stop() -> None:
    """A run told to stop (SIGTERM) must not sit out its calls' backoffs: Docker and
    Kubernetes kill a process 10 to 30 s after their SIGTERM."""
    requests = 0
    first = asyncio.Event()

    def down(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        first.set()
        raise httpx.ConnectError("refused", request=request)

    # backoffs of a minute, really waited (the suite's stamina test mode waits none)
    policy = RetryPolicy(wait_initial=60.0, wait_max=60.0, wait_jitter=0.0)
    with stamina.set_testing(False):
        async with GraphClient(
            base_url="http://sim",
            version="v27.0",
            transport=httpx.MockTransport(down),
            retry=policy,
        ) as graph:
            call = asyncio.ensure_future(
                graph.get_insights(
                    "17841600000000001", "EAAG-x", metrics=["reach"], metric_type="time_series"
                )
            )
            await first.wait()
            graph.stop_waiting()
            # a bound on a hang, not a speed: the call ends in milliseconds, not in a minute
            with pytest.raises(GraphError) as raised:
                await asyncio.wait_for(call, timeout=20)
            # once stopped, a failing call is not retried at all, and calls cut short prove
            # nothing of the network: the run's reason stays the stop
            for _ in range(UNREACHABLE_AFTER):
                with pytest.raises(GraphError):
                    await graph.get_insights(
                        "17841600000000001", "EAAG-x", metrics=["reach"], metric_type="time_series"
                    )
            assert graph.unreachable_reason is None
    assert str(raised.value).endswith("(not retried: the run was stopped)")
    assert raised.value.unreachable
    assert requests == 1 + UNREACHABLE_AFTER
