"""sync_all against the in-process simulator on SQLite: every account, isolated, sharded."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import SecretStr

import igsync.sync_all
from bad_token_rows import BAD_ROWS, insert_sql
from igsync.catalogue import DEFAULT_METRICS
from igsync.errors import InputError, StoreError
from igsync.graph import GraphClient
from igsync.models import FetchResult, SyncReport, UserToken
from igsync.simulator import Fault, SimAccount, Simulator
from igsync.store.sqlite import SQLiteStore
from igsync.sync_all import Shard, parse_shard, sync_all
from igsync.window import plan_window

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNTS = [f"1784140000000{i:04d}" for i in range(1, 7)]


@pytest.fixture
def sim() -> Simulator:
    return Simulator([SimAccount(a, tz="America/Los_Angeles") for a in ACCOUNTS], now=lambda: NOW)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "igsync.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(db_path) as s:
        await s.init_schema()
        yield s


@pytest.fixture
async def tokens(sim: Simulator, store: SQLiteStore) -> dict[str, UserToken]:
    """One user_tokens row per simulated account, each with its own token."""
    rows = {}
    for account in ACCOUNTS:
        row = UserToken(
            u_id=uuid4(), access_token=SecretStr(sim.issue_token(account)), account_id=account
        )
        await store.save_token(row)
        rows[account] = row
    return rows


async def run_sync(sim: Simulator, store: SQLiteStore, **options: Any) -> SyncReport:
    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=sim.transport()
    ) as graph:
        return await sync_all(
            graph, store, metrics=DEFAULT_METRICS, plan=plan_window(NOW), now=NOW, **options
        )


def sync_logs(db_path: Path) -> list[tuple[str, str, str, int]]:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(
            "select run_id, account_id, status, total_inserted from instagram_sync_logs"
            " order by account_id"
        ).fetchall()


async def test_every_account_is_fetched_and_stored(
    sim: Simulator, store: SQLiteStore, tokens: dict[str, UserToken], db_path: Path
) -> None:
    heard: list[FetchResult] = []
    report = await run_sync(sim, store, on_result=heard.append)
    assert report.success
    assert (report.accounts_total, report.accounts_ok, report.accounts_failed) == (6, 6, 0)
    assert report.total_inserted == 6 * 12
    assert report.total_errors == 0
    assert sorted(r.account_id or "" for r in report.results) == ACCOUNTS
    assert sorted(r.account_id or "" for r in heard) == ACCOUNTS  # each heard once, as it ended
    rows = await store.read_insights()
    assert {r.account_id for r in rows} == set(ACCOUNTS)
    assert len(rows) == 6 * 12
    logs = sync_logs(db_path)
    assert [(a, s) for _, a, s, _ in logs] == [(a, "ok") for a in ACCOUNTS]
    assert len({run for run, *_ in logs}) == 1  # one run id for the whole run


async def test_failing_accounts_do_not_stop_the_others_and_are_counted(
    sim: Simulator, store: SQLiteStore, tokens: dict[str, UserToken], db_path: Path
) -> None:
    denied, expired = ACCOUNTS[1], ACCOUNTS[4]
    sim.accounts[denied] = SimAccount(
        denied, tz="America/Los_Angeles", denied_metrics=frozenset({"profile_views"})
    )
    sim.expire_token(tokens[expired].access_token.get_secret_value())
    report = await run_sync(sim, store)
    assert not report.success
    assert (report.accounts_total, report.accounts_ok, report.accounts_failed) == (6, 4, 2)
    by_account = {r.account_id: r for r in report.results}
    assert by_account[denied].total_inserted == 9  # the three other metrics were stored
    assert any("profile_views" in e for e in by_account[denied].errors)
    assert by_account[expired].total_inserted == 0
    assert any("needs_reauth" in e for e in by_account[expired].errors)
    assert report.total_inserted == 4 * 12 + 9
    assert report.total_errors == sum(r.total_errors for r in report.results) >= 2
    status = {a: s for _, a, s, _ in sync_logs(db_path)}
    assert status == {a: "ok" for a in ACCOUNTS} | {denied: "partial", expired: "failed"}


async def test_an_account_needing_reauth_fails_without_asking_the_graph_api(
    sim: Simulator, store: SQLiteStore, tokens: dict[str, UserToken]
) -> None:
    dead = ACCOUNTS[0]
    sim.expire_token(tokens[dead].access_token.get_secret_value())
    await run_sync(sim, store)  # marks it needs_reauth
    sim.requests.clear()
    report = await run_sync(sim, store)
    (failed,) = [r for r in report.results if not r.success]
    assert failed.account_id == dead
    assert "needs re-authorization" in failed.errors[0]
    assert sim.requests  # the others were fetched
    assert not [r for r in sim.requests if dead in r.path]
    assert report.accounts_ok == 5


async def test_an_unexpected_igsync_error_is_that_accounts_failure_only(
    sim: Simulator,
    store: SQLiteStore,
    tokens: dict[str, UserToken],
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = igsync.sync_all.gather_account
    broken = ACCOUNTS[2]

    async def fetch(ctx: Any, account: Any) -> Any:
        if account.account_id == broken:
            raise StoreError("database is locked")
        return await real(ctx, account)

    monkeypatch.setattr(igsync.sync_all, "gather_account", fetch)
    report = await run_sync(sim, store)
    assert (report.accounts_ok, report.accounts_failed) == (5, 1)
    (failed,) = [r for r in report.results if not r.success]
    assert (failed.account_id, failed.errors) == (broken, ["store: database is locked"])
    status = {a: s for _, a, s, _ in sync_logs(db_path)}
    assert status[broken] == "failed"
    assert len(status) == 6


async def test_a_bug_in_one_account_is_reported_and_the_run_goes_on(
    sim: Simulator,
    store: SQLiteStore,
    tokens: dict[str, UserToken],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = igsync.sync_all.gather_account
    broken = ACCOUNTS[1]
    secret = tokens[broken].access_token.get_secret_value()

    async def fetch(ctx: Any, account: Any) -> Any:
        if account.account_id == broken:
            raise KeyError(f"unexpected {account.token}")  # a bug that even quotes the token
        return await real(ctx, account)

    monkeypatch.setattr(igsync.sync_all, "gather_account", fetch)
    report = await run_sync(sim, store)
    assert (report.accounts_ok, report.accounts_failed) == (5, 1)
    (failed,) = [r for r in report.results if not r.success]
    assert failed.errors[0].startswith("internal error (please report it): KeyError")
    assert secret not in failed.errors[0]


async def test_a_failing_sync_log_write_is_logged_not_fatal(
    sim: Simulator,
    store: SQLiteStore,
    tokens: dict[str, UserToken],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = ACCOUNTS[3]

    async def fetch(ctx: Any, account: Any) -> Any:
        raise StoreError("database is locked")

    async def no_log(entries: Any) -> None:
        raise StoreError("disk I/O error")

    monkeypatch.setattr(igsync.sync_all, "gather_account", fetch)
    monkeypatch.setattr(store, "write_sync_logs", no_log)
    report = await run_sync(sim, store)
    assert report.accounts_failed == 6
    result = next(r for r in report.results if r.account_id == broken)
    # As for every account (write_run_log): the log row's failure never ends the run, and it
    # is counted in the report, not only logged (issue 11, finding 8)
    assert result.errors == ["store: database is locked"]
    assert result.sync_log_error == "sync log not written: disk I/O error"
    assert report.sync_logs_failed == 6
    assert report.sync_log_error == "sync log not written: disk I/O error"
    assert "sync log not written: disk I/O error" in caplog.text


async def test_a_row_without_an_account_id_is_reported_not_fatal(
    sim: Simulator, store: SQLiteStore, tokens: dict[str, UserToken]
) -> None:
    await store.save_token(UserToken(u_id=uuid4(), access_token=SecretStr("x" * 20)))
    report = await run_sync(sim, store)
    assert (report.accounts_total, report.accounts_ok, report.accounts_failed) == (7, 6, 1)
    (failed,) = [r for r in report.results if not r.success]
    assert failed.account_id is None
    assert "without an account id" in failed.errors[0]


async def test_shards_partition_the_accounts_exactly(
    sim: Simulator, store: SQLiteStore, tokens: dict[str, UserToken]
) -> None:
    everyone = await store.list_tokens()
    for count in (1, 2, 3, 5):
        parts = [
            {(t.u_id, t.account_id) for t in everyone if Shard(k, count).holds(t)}
            for k in range(1, count + 1)
        ]
        assert sum(len(p) for p in parts) == len(everyone)  # disjoint
        assert set().union(*parts) == {(t.u_id, t.account_id) for t in everyone}
    synced: list[str] = []
    for k in (1, 2, 3):
        report = await run_sync(sim, store, shard=Shard(k, 3))
        synced += [r.account_id or "" for r in report.results]
    assert sorted(synced) == ACCOUNTS


def test_shards_are_the_same_in_every_python_process() -> None:
    """Not Python's hash(): a worker started with another PYTHONHASHSEED agrees."""
    users = [UUID(int=i * 7919) for i in range(40)]
    rows = [
        UserToken(u_id=u, access_token=SecretStr("t"), account_id=str(i))
        for i, u in enumerate(users)
    ]
    here = [next(k for k in range(1, 5) if Shard(k, 4).holds(t)) for t in rows]
    script = (
        "from uuid import UUID; from pydantic import SecretStr;"
        "from igsync.models import UserToken; from igsync.sync_all import Shard;"
        "rows=[UserToken(u_id=UUID(int=i*7919), access_token=SecretStr('t'), account_id=str(i))"
        " for i in range(40)];"
        "print([next(k for k in range(1,5) if Shard(k,4).holds(t)) for t in rows])"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == str(here)
    assert len(set(here)) == 4  # every shard gets some of 40 accounts


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "1/0", "1", "1/2/3", "-1/2", "²/3", ""])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="--shard"):
        parse_shard(text)


@pytest.mark.parametrize(
    ("text", "said"),
    [("1/0", "N, the number of shards, must be at least 1"), ("5/4", "between 1 and N (4)")],
)
def test_a_bad_shard_names_the_number_that_is_wrong(text: str, said: str) -> None:
    with pytest.raises(InputError, match=re.escape(said)):
        parse_shard(text)


def test_good_shards_parse() -> None:
    assert parse_shard("2/3") == Shard(2, 3)
    assert parse_shard(" 1/1 ") == Shard(1, 1)


@pytest.mark.parametrize("concurrency", [1, 2, 6])
async def test_no_more_accounts_than_concurrency_are_in_flight(
    sim: Simulator,
    store: SQLiteStore,
    tokens: dict[str, UserToken],
    monkeypatch: pytest.MonkeyPatch,
    concurrency: int,
) -> None:
    sim.latency = 0.02
    real = igsync.sync_all.gather_account
    in_flight, peak = 0, 0

    async def counting(*args: Any, **kw: Any) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await real(*args, **kw)
        finally:
            in_flight -= 1

    monkeypatch.setattr(igsync.sync_all, "gather_account", counting)
    report = await run_sync(sim, store, concurrency=concurrency)
    assert report.accounts_ok == 6
    assert peak == concurrency  # bounded, and the bound is used


@pytest.mark.parametrize("concurrency", [0, 257])
async def test_a_concurrency_out_of_range_is_refused(
    sim: Simulator, store: SQLiteStore, concurrency: int
) -> None:
    with pytest.raises(InputError, match="--concurrency"):
        await run_sync(sim, store, concurrency=concurrency)


async def test_a_dry_run_writes_no_rows_and_no_logs(
    sim: Simulator, store: SQLiteStore, tokens: dict[str, UserToken], db_path: Path
) -> None:
    report = await run_sync(sim, store, dry_run=True)
    assert report.success
    assert all(sum(r.metrics_fetched.values()) == 12 for r in report.results)
    assert await store.read_insights() == []
    assert sync_logs(db_path) == []


async def test_no_accounts_is_an_empty_successful_report(
    sim: Simulator, store: SQLiteStore
) -> None:
    report = await run_sync(sim, store)
    assert report.success
    assert (report.accounts_total, report.results) == (0, [])


async def test_the_sync_log_says_which_streams_ran(
    sim: Simulator, store: SQLiteStore, tokens: dict[str, UserToken], db_path: Path
) -> None:
    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=sim.transport()
    ) as graph:
        report = await sync_all(
            graph, store, streams=["audience", "account"], plan=plan_window(NOW), now=NOW
        )
    assert report.success, [r.errors for r in report.results]
    assert {tuple(r.streams_written) for r in report.results} == {("account", "audience")}
    with closing(sqlite3.connect(db_path)) as conn:
        rows = conn.execute("select streams from instagram_sync_logs").fetchall()
    logged = {tuple(json.loads(s)) for (s,) in rows}
    assert logged == {("account", "audience")}


async def test_bad_token_rows_fail_their_own_accounts_before_any_request(
    sim: Simulator, store: SQLiteStore, tokens: dict[str, UserToken], db_path: Path
) -> None:
    user = str(uuid4())
    with closing(sqlite3.connect(db_path)) as conn, conn:
        for i, bad in enumerate(BAD_ROWS):
            for statement in insert_sql(bad, u_id=user, account_id=f"90000{i}"):
                conn.execute(statement)

    report = await run_sync(sim, store)

    total, bad_count = len(ACCOUNTS) + len(BAD_ROWS), len(BAD_ROWS)
    assert (report.accounts_total, report.accounts_ok, report.accounts_failed) == (
        total,
        len(ACCOUNTS),
        bad_count,
    )
    assert {r.account_id for r in report.results if r.success} == set(ACCOUNTS)
    assert report.total_inserted == len(ACCOUNTS) * 12  # the good accounts, all stored
    failed = [r for r in report.results if not r.success]
    assert all(len(r.errors) == 1 and "\n" not in r.errors[0] for r in failed)
    for bad in BAD_ROWS:  # two rows may share a message (a newline, a space in the token)
        alike = sum(other.message == bad.message for other in BAD_ROWS)
        assert len([r for r in failed if bad.message in r.errors[0]]) == alike
    dumped = report.model_dump_json()
    for bad in BAD_ROWS:
        assert not bad.secret.strip() or bad.secret not in dumped
    # no request went out for a bad row: neither to its account id nor with its token
    assert not [r for r in sim.requests if "me" in r.path.split("/") or "9000" in r.path]
    sent = " ".join(f"{r.headers} {r.query}" for r in sim.requests)
    assert not [bad.name for bad in BAD_ROWS if bad.token in sent]
    logs = sync_logs(db_path)
    assert len(logs) == total
    assert sorted(status for _, _, status, _ in logs) == sorted(
        ["ok"] * len(ACCOUNTS) + ["failed"] * bad_count
    )


async def test_a_dry_runs_summary_counts_the_rows_it_fetched(
    sim: Simulator, store: SQLiteStore, tokens: dict[str, UserToken]
) -> None:
    from igsync.cli._render import sync_summary

    report = await run_sync(sim, store, dry_run=True)
    fetched = sum(sum(r.metrics_fetched.values()) for r in report.results)
    assert report.total_inserted == 0
    assert report.total_fetched == fetched > 0
    message, fields = sync_summary(report, dry_run=True)
    assert f" {fetched:,} rows fetched (dry run)" in message
    assert fields["total_fetched"] == fetched

    written = await run_sync(sim, store)
    assert written.total_fetched == written.total_inserted > 0
    message, _ = sync_summary(written, dry_run=False)
    assert f" {written.total_inserted:,} rows written and verified" in message


def test_the_cron_summary_says_what_was_skipped_and_why_a_run_stopped() -> None:
    from igsync.cli._render import sync_summary
    from igsync.models import SyncReport

    report = SyncReport(
        success=False,
        accounts_total=300,
        accounts_ok=1,
        accounts_failed=0,
        total_inserted=12,
        total_errors=0,
        duration_s=1.0,
        results=[],
        accounts_skipped=299,
    )
    message, _ = sync_summary(report, dry_run=False)
    assert "; 299 skipped: claimed by another run, syncing them or killed before" in message
    stopped = report.model_copy(update={"stopped": "why", "accounts_not_attempted": 5})
    message, _ = sync_summary(stopped, dry_run=False)
    assert message.endswith("; run stopped: why (5 account(s) not attempted)")


async def test_each_accounts_writes_are_logged_as_a_sentence_right_for_a_failure_too(
    sim: Simulator,
    store: SQLiteStore,
    tokens: dict[str, UserToken],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = ACCOUNTS[0]
    sim.faults.append(Fault("invalid_token", times=100, account_id=broken))
    with caplog.at_level(logging.INFO, logger="igsync.sync"):
        report = await run_sync(sim, store)
    (failed,) = [r for r in report.results if not r.success]
    lines = {
        r.getMessage().split(":", 1)[0]: r.getMessage()
        for r in caplog.records
        if r.name == "igsync.sync" and "written and verified" in r.getMessage()
    }
    assert lines[f"account {broken}"] == (
        f"account {broken}: 0 rows written and verified; failed with 1 error: {failed.errors[0]}"
    )
    ok = next(r for r in report.results if r.success)
    assert lines[f"account {ok.account_id}"] == (
        f"account {ok.account_id}: {ok.total_inserted} rows written and verified"
    )
    assert not any("{" in line for line in lines.values())  # no Python dict


def test_the_written_line_names_each_stream_and_counts_errors() -> None:
    from igsync.sync import written_line

    assert written_line("1784", {"account": 9, "audience": 3}, []) == (
        "account 1784: 12 rows written and verified (account 9, audience 3)"
    )
    assert written_line("1784", {"account": 1}, ["a", "b"]) == (
        "account 1784: 1 row written and verified; failed with 2 errors: a (and more)"
    )
