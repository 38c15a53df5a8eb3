"""Stopping `sync-all` part way (SIGINT, SIGTERM: Ctrl-C, `kill`, a scheduler's stop).

The first signal ends the run cleanly: the accounts in flight finish and are written, no more
start or are read, each one read but not started is reported not attempted, every claim is
released, and the report says why. A cancelled run (a second signal, not the first one
delivered twice) ends at once, never hangs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from igsync.cli._sync import SAME_STOP_S, _Stop, _stopping
from igsync.graph import GraphClient
from igsync.models import FetchResult, SyncReport
from igsync.simulator import SimAccount, Simulator, serve_in_thread
from igsync.store.sqlite import SQLiteStore
from sync_runs import add_tokens, sync_over
from test_cli_e2e import IGSYNC

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNTS = [f"1784170000000{i:04d}" for i in range(1, 1201)]
STOPPED = "interrupted (SIGTERM): no more accounts were started"


@pytest.fixture
def sim() -> Simulator:
    return Simulator([SimAccount(a, tz="Europe/Berlin") for a in ACCOUNTS], now=lambda: NOW)


def claims_held(db: Path) -> int:
    """Claims still in force: neither released nor ended (a claim ended early expires now)."""
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    with closing(sqlite3.connect(db)) as conn:
        query = "select count(*) from igsync_claims where released_at is null and claimed_until > ?"
        return int(conn.execute(query, (now,)).fetchone()[0])


def sync_logs(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("select count(*) from instagram_sync_logs").fetchone()[0])


async def run(sim: Simulator, store: SQLiteStore, **options: Any) -> SyncReport:
    return await sync_over(store, sim.transport(), now=NOW, concurrency=4, **options)


@pytest.mark.anyio
async def test_a_stop_finishes_the_accounts_in_flight_and_starts_no_more(
    sim: Simulator, tmp_path: Path
) -> None:
    db = tmp_path / "x.db"
    heard: list[FetchResult] = []
    async with SQLiteStore(db) as store:
        await add_tokens(store, sim, ACCOUNTS)
        report = await run(
            sim,
            store,
            on_result=heard.append,
            stop=lambda: STOPPED if len(heard) >= 10 else None,
        )
    assert report.success is False
    assert report.stopped == STOPPED
    ok = [r for r in heard if r.success]
    skipped = [r for r in heard if not r.attempted]
    # the accounts in flight when it stopped finished: nothing is left half done
    assert len(ok) + len(skipped) == len(heard) == report.accounts_total
    assert all(r.errors == [f"not attempted: {STOPPED}"] for r in skipped)
    assert report.accounts_not_attempted == len(skipped) > 0
    # the rows not read yet are in no count: a stop does not walk the rest of the table
    assert report.accounts_total < len(ACCOUNTS) // 2
    assert sync_logs(db) == len(ok)
    assert claims_held(db) == 0


@pytest.mark.anyio
async def test_a_cancelled_run_ends_at_once_with_a_full_queue(
    sim: Simulator, tmp_path: Path
) -> None:
    """A second Ctrl-C cancels the run: the reader's end-of-work marks must not wait for
    room in a queue whose workers are cancelled too (it used to hang there for ever)."""
    heard: list[FetchResult] = []
    under_way = asyncio.Event()

    def on_result(result: FetchResult) -> None:
        heard.append(result)
        if len(heard) == 10:
            under_way.set()

    db = tmp_path / "x.db"
    async with SQLiteStore(db) as store:
        await add_tokens(store, sim, ACCOUNTS)
        task = asyncio.create_task(run(sim, store, on_result=on_result))
        await under_way.wait()
        task.cancel()
        # a bound on a hang, not a speed: cancelling takes milliseconds
        done, _ = await asyncio.wait([task], timeout=30)
    assert done == {task}
    assert task.cancelled()
    # the claims of the accounts dropped in flight and in the queue were ended, not left to
    # make the next runs skip them for minutes
    assert claims_held(db) == 0


@pytest.mark.anyio
async def test_a_signal_delivered_twice_in_one_turn_of_the_loop_is_one_stop(
    sim: Simulator,
) -> None:
    """`uv run` passes on at once a SIGTERM igsync had already: both reach the loop together."""
    said: list[str] = []
    stop = _Stop()
    async with (
        GraphClient(base_url="http://sim", version="v27.0", transport=sim.transport()) as graph,
        _stopping(stop, said.append, graph),
    ):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # no await between: one turn of the loop
        await asyncio.sleep(0.1)
    assert (stop.signal, stop.cancelled_by) == (signal.SIGTERM, None)
    (message,) = said
    assert message.startswith("SIGTERM: finishing the accounts in flight")


@pytest.mark.anyio
async def test_a_second_signal_cancels_the_run_only_same_stop_s_after_the_first(
    sim: Simulator,
) -> None:
    stop = _Stop()
    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=sim.transport()
    ) as graph:

        async def run() -> None:
            async with _stopping(stop, lambda _: None, graph):
                await asyncio.sleep(30)

        task = asyncio.create_task(run())
        await asyncio.sleep(0.05)
        for _ in range(2):  # the first, then the same again (a forwarder's copy)
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
        assert (task.done(), stop.signal, stop.cancelled_by) == (False, signal.SIGTERM, None)
        await asyncio.sleep(SAME_STOP_S)
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(asyncio.CancelledError):
            await task
    assert stop.cancelled_by == signal.SIGINT


@pytest.fixture
def started(sim: Simulator, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The simulator's accounts in a SQLite file, and the environment of an igsync run on
    them over loopback: (the file, the environment)."""
    sim.latency = 0.05  # the run lasts seconds: the signal finds it mid-way
    db = tmp_path / "x.db"

    async def seed() -> None:
        async with SQLiteStore(db) as store:
            await add_tokens(store, sim, ACCOUNTS)

    asyncio.run(seed())
    with serve_in_thread(sim) as served:
        yield (
            db,
            {
                "PATH": os.environ.get("PATH", ""),
                "HOME": str(tmp_path),
                "NO_COLOR": "1",
                "IGSYNC_DATABASE_URL": f"sqlite:///{db}",
                "IGSYNC_GRAPH_URL": served.graph_url,
            },
        )


@pytest.mark.e2e
def test_sigterm_ends_the_run_with_its_report_and_exit_1(
    started: tuple[Path, dict[str, str]],
) -> None:
    db, env = started
    with subprocess.Popen(
        [IGSYNC, "sync-all", "--ndjson", "--concurrency", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()  # an account is done: the run is under way
        proc.send_signal(signal.SIGTERM)
        # Through the same buffered reader: communicate() reads the pipe itself, and would
        # miss the lines readline() already took into its buffer (three, on a loaded machine).
        rest = proc.stdout.read()
        err = proc.stderr.read()  # two lines: no full pipe while stdout is read to its end
        proc.wait(timeout=120)
    lines = [first, *rest.splitlines()]
    summary = json.loads(lines[-1])["summary"]
    assert proc.returncode == 1, err
    assert summary["stopped"] == STOPPED
    assert summary["accounts_not_attempted"] > 0
    assert summary["accounts_total"] == len(lines) - 1 < len(ACCOUNTS)
    assert err.startswith(
        "igsync: SIGTERM: finishing the accounts in flight, starting no more"
        " (SIGTERM again to stop at once)\n"
    )
    assert err.endswith(
        f"; run stopped: {STOPPED} ({summary['accounts_not_attempted']} account(s) not attempted)\n"
    )
    assert sync_logs(db) == summary["accounts_total"] - summary["accounts_not_attempted"]
    assert claims_held(db) == 0


@pytest.mark.e2e
def test_a_second_sigterm_stops_at_once_and_leaves_no_claim(
    sim: Simulator, started: tuple[Path, dict[str, str]]
) -> None:
    db, env = started
    with subprocess.Popen(
        [IGSYNC, "sync-all", "--ndjson"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.readline()  # under way
        # stdout drained meanwhile: a full pipe would block the run's writes, and its loop
        drained = threading.Thread(target=proc.stdout.read, daemon=True)
        drained.start()
        # the accounts in flight at the first signal still are SAME_STOP_S later
        sim.latency = 4 * SAME_STOP_S
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr.readline().startswith("igsync: SIGTERM: finishing the accounts")
        time.sleep(SAME_STOP_S + 0.3)
        proc.send_signal(signal.SIGTERM)
        err = proc.stderr.read()
        proc.wait(timeout=120)
        drained.join(timeout=120)
    assert proc.returncode == 1
    assert err == (
        "igsync: error: stopped at once (SIGTERM twice): the accounts in flight were dropped"
        " and their claims ended; no report, the sync logs hold what was written\n"
    )
    assert claims_held(db) == 0
