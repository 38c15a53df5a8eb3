"""The job queue (igsync.queue, procrastinate) on the real PostgreSQL, as users run it:
`igsync sync-all --enqueue` and `igsync worker` subprocesses against the loopback simulator.

One job per account, never two queued for one; two workers process each account once; a
worker killed mid-job (SIGKILL: no goodbye) has its job retried by another. Without PostgreSQL
the queue is refused with one line and exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from pydantic import SecretStr

from igsync.models import UserToken
from igsync.simulator import Served, SimAccount, Simulator, serve_in_thread
from igsync.store.postgres import PostgresStore
from test_cli_e2e import IGSYNC

pytestmark = pytest.mark.e2e

ACCOUNTS = [f"178414000000{n:05d}" for n in range(1, 7)]


@pytest.fixture
def sim() -> Simulator:
    return Simulator([SimAccount(a) for a in ACCOUNTS], latency=0.3)


@pytest.fixture
def served(sim: Simulator) -> Iterator[Served]:
    with serve_in_thread(sim) as urls:
        yield urls


def seed(url: str, accounts: list[str]) -> None:
    async def save() -> None:
        async with PostgresStore(url) as store:
            for account in accounts:
                token = SecretStr(f"EAAJ-queue-secret-{account}-Zq81kLmN")
                await store.save_token(
                    UserToken(u_id=uuid4(), access_token=token, account_id=account)
                )

    asyncio.run(save())


def env_for(url: str, served: Served, tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "NO_COLOR": "1",
        "IGSYNC_GRAPH_URL": served.graph_url,
        "IGSYNC_INSTAGRAM_URL": served.instagram_url,
        "IGSYNC_DATABASE_URL": url,
        "IGSYNC_HTTP_TIMEOUT": "10",
    }


def igsync(
    env: dict[str, str], *args: str, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IGSYNC, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def start_worker(env: dict[str, str], *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [IGSYNC, "worker", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def sync_jobs(url: str) -> list[tuple[object, ...]]:
    return query(
        url,
        "select queueing_lock, status from procrastinate_jobs"
        " where task_name = 'igsync.sync_account' order by id",
    )


def synced_accounts(url: str) -> Counter[object]:
    return Counter(r[0] for r in query(url, "select account_id from instagram_sync_logs"))


def test_enqueue_defers_one_job_per_account_and_never_two_while_one_waits(
    fresh_postgres_url: str, served: Served, tmp_path: Path
) -> None:
    seed(fresh_postgres_url, ACCOUNTS)
    env = env_for(fresh_postgres_url, served, tmp_path)

    first = igsync(env, "sync-all", "--enqueue", "--json", cwd=tmp_path)
    again = igsync(env, "sync-all", "--enqueue", "--json", cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "accounts_total": 6,
        "enqueued": 6,
        "already_queued": 0,
        "not_queued": 0,
    }
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_queued"] == 6
    backfill = igsync(env, "sync-all", "--enqueue", "--since", "2026-11-01", cwd=tmp_path)
    assert backfill.returncode == 0, backfill.stderr
    assert "keep the window their job was queued with" in backfill.stdout  # not this one
    jobs = sync_jobs(fresh_postgres_url)
    assert len(jobs) == 6
    assert len({lock for lock, _ in jobs}) == 6
    assert {status for _, status in jobs} == {"todo"}
    assert synced_accounts(fresh_postgres_url) == Counter()  # nothing synced by enqueueing
    # Supabase's REST roles get nothing of the queue: RLS on, as on the igsync tables
    flags = query(
        fresh_postgres_url,
        "select bool_and(relrowsecurity), count(*) from pg_class"
        " where relname like 'procrastinate%' and relkind = 'r'",
    )
    assert flags[0][0] is True
    assert int(str(flags[0][1])) >= 4


def test_two_workers_process_each_account_once(
    fresh_postgres_url: str, served: Served, sim: Simulator, tmp_path: Path
) -> None:
    seed(fresh_postgres_url, ACCOUNTS)
    env = env_for(fresh_postgres_url, served, tmp_path)
    assert igsync(env, "sync-all", "--enqueue", cwd=tmp_path).returncode == 0

    workers = [
        start_worker(env, "--until-empty", "--concurrency", "2", "--json", cwd=tmp_path)
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=110) for w in workers]

    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
    reports = [json.loads(out) for out, _ in outputs]  # each a WorkerReport of its own jobs
    assert sum(r["jobs"] for r in reports) == sum(r["accounts_ok"] for r in reports) == 6
    assert all(r["success"] and r["accounts_failed"] == 0 for r in reports)
    assert sum(r["total_inserted"] for r in reports) > 0
    assert synced_accounts(fresh_postgres_url) == Counter(ACCOUNTS)
    assert {status for _, status in sync_jobs(fresh_postgres_url)} == {"succeeded"}
    calls = Counter(a for r in sim.requests for a in ACCOUNTS if a in r.path)
    assert set(calls) == set(ACCOUNTS)
    assert len(set(calls.values())) == 1, calls  # no account's calls made twice
    assert all("EAAJ-queue-secret" not in out + err for out, err in outputs)


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_a_row_that_cannot_be_queued_fails_the_enqueue_as_it_fails_sync_all(
    fresh_postgres_url: str, served: Served, tmp_path: Path
) -> None:
    from bad_token_rows import BAD_ROWS, insert_sql

    seed(fresh_postgres_url, ACCOUNTS[:1])
    (bad,) = [b for b in BAD_ROWS if b.name == "token_newline"]
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        for statement in insert_sql(bad, u_id=str(uuid4()), account_id="17841499999999999"):
            conn.execute(statement)  # type: ignore[arg-type]
    env = env_for(fresh_postgres_url, served, tmp_path)
    proc = igsync(env, "sync-all", "--enqueue", "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout) == {
        "accounts_total": 2,
        "enqueued": 1,
        "already_queued": 0,
        "not_queued": 1,
    }


def test_a_job_whose_account_fails_ends_failed_and_an_until_empty_worker_exits_1(
    fresh_postgres_url: str, served: Served, tmp_path: Path
) -> None:
    ok, refused = ACCOUNTS[:2]
    seed(fresh_postgres_url, [ok, refused])
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute(
            "update user_tokens set status = 'needs_reauth' where account_id = %s", [refused]
        )
    env = env_for(fresh_postgres_url, served, tmp_path)
    assert igsync(env, "sync-all", "--enqueue", cwd=tmp_path).returncode == 0
    done = igsync(env, "worker", "--until-empty", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # a one-off run with a failed account, as sync-all
    assert "2 job(s): 1 accounts ok, 1 failed, 0 skipped" in done.stdout
    jobs = query(
        fresh_postgres_url,
        "select args->>'account_id', status from procrastinate_jobs"
        " where task_name = 'igsync.sync_account'",
    )
    assert dict(jobs) == {ok: "succeeded", refused: "failed"}
    logs = query(fresh_postgres_url, "select account_id, status from instagram_sync_logs")
    assert dict(logs) == {ok: "ok", refused: "failed"}


def test_a_killed_workers_job_is_retried_by_another_worker(
    fresh_postgres_url: str, served: Served, sim: Simulator, tmp_path: Path
) -> None:
    account = ACCOUNTS[0]
    sim.latency = 2.0  # the job is still running when its worker is killed
    seed(fresh_postgres_url, [account])
    env = env_for(fresh_postgres_url, served, tmp_path)
    assert igsync(env, "sync-all", "--enqueue", cwd=tmp_path).returncode == 0
    opts = ("--stalled-after", "3")

    doomed = start_worker(env, *opts, cwd=tmp_path)
    try:
        wait_for(lambda: sync_jobs(fresh_postgres_url)[0][1] == "doing", 60, "the job to start")
        wait_for(lambda: any(account in r.path for r in sim.requests), 30, "a Graph call")
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=10)
    assert synced_accounts(fresh_postgres_url) == Counter()
    sim.latency = 0.0

    rescuer = start_worker(env, *opts, "-v", cwd=tmp_path)
    try:
        wait_for(lambda: sync_jobs(fresh_postgres_url)[0][1] == "succeeded", 60, "the job's retry")
    finally:
        rescuer.send_signal(signal.SIGTERM)
        out, err = rescuer.communicate(timeout=30)

    assert rescuer.returncode == 0, err  # stopped by a signal, its job done
    assert out.startswith("1 job(s): 1 accounts ok, 0 failed"), out
    assert synced_accounts(fresh_postgres_url) == Counter([account])
    [(status,)] = query(fresh_postgres_url, "select status from instagram_sync_logs")
    assert status == "ok"
    assert "its worker stopped; retrying it" in err


def test_a_killed_workers_account_queued_again_syncs_in_an_until_empty_worker(
    fresh_postgres_url: str, served: Served, sim: Simulator, tmp_path: Path
) -> None:
    """The dead worker's job holds the account's lock and a new job for it waits: putting the
    old one back would break the queueing lock at every tick and block the account for good.
    The old job ends failed, the new one runs; an until-empty worker does it as it starts."""
    account = ACCOUNTS[0]
    sim.latency = 2.0
    seed(fresh_postgres_url, [account])
    env = env_for(fresh_postgres_url, served, tmp_path)
    assert igsync(env, "sync-all", "--enqueue", cwd=tmp_path).returncode == 0
    doomed = start_worker(env, "--stalled-after", "3", cwd=tmp_path)
    try:
        wait_for(lambda: sync_jobs(fresh_postgres_url)[0][1] == "doing", 60, "the job to start")
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=10)
    sim.latency = 0.0
    queued = igsync(env, "sync-all", "--enqueue", "--json", cwd=tmp_path)
    assert json.loads(queued.stdout)["enqueued"] == 1  # the dead job is doing, not waiting
    time.sleep(3.5)  # its heartbeat is now older than --stalled-after

    done = igsync(env, "worker", "--until-empty", "--stalled-after", "3", "-v", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "is queued again: that job runs instead" in done.stderr
    assert [status for _, status in sync_jobs(fresh_postgres_url)] == ["failed", "succeeded"]
    assert synced_accounts(fresh_postgres_url) == Counter([account])


def test_the_queue_without_postgresql_is_one_line_and_exit_2(
    served: Served, tmp_path: Path
) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'igsync.db'}", served, tmp_path)
    for args in (("sync-all", "--enqueue"), ("worker",)):
        proc = igsync(env, *args, cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stdout == ""
        assert proc.stderr.count("\n") == 1
        assert "the job queue needs PostgreSQL" in proc.stderr
        assert "IGSYNC_QUEUE_URL" in proc.stderr


@pytest.mark.anyio
async def test_a_queue_that_cannot_be_reached_or_used_is_one_line_not_a_30_s_wait(
    fresh_postgres_url: str,
) -> None:
    from igsync.errors import StoreConfigError
    from igsync.queue import JobWindow, enqueue
    from postgres_server import login_role, with_database

    async with PostgresStore(fresh_postgres_url) as store:
        with pytest.raises(StoreConfigError) as missing:
            await enqueue(with_database(fresh_postgres_url, "nosuchq"), store, JobWindow())
        grant = "grant usage on schema public to {role}"
        with (
            login_role(fresh_postgres_url, grant) as url,
            pytest.raises(StoreConfigError) as refused,
        ):
            await enqueue(url, store, JobWindow())
    assert str(missing.value).startswith("the job queue cannot connect: ")
    assert 'database "nosuchq" does not exist' in str(missing.value)
    assert str(refused.value).startswith(
        "the job queue: permission denied for schema public [42501]; its tables"
    )
    assert "README, 'A cron role on PostgreSQL'" in str(refused.value)


@pytest.mark.anyio
async def test_a_worker_schedule_enqueues_every_account_and_runs_them(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    from igsync.graph import GraphClient
    from igsync.queue import Runtime, run_worker

    sim = Simulator([SimAccount(a) for a in ACCOUNTS[:3]])
    await asyncio.to_thread(seed, fresh_postgres_url, ACCOUNTS[:3])
    async with (
        PostgresStore(fresh_postgres_url) as store,
        GraphClient(base_url="http://sim", version="v27.0", transport=sim.transport()) as graph,
    ):
        runtime = Runtime(store, graph, None, stalled_after_s=3)
        worker = asyncio.create_task(
            run_worker(runtime, fresh_postgres_url, concurrency=2, schedule="* * * * * */1")
        )
        try:
            for _ in range(150):  # the first tick comes within a second or two
                if len(synced_accounts(fresh_postgres_url)) == 3:
                    break
                await asyncio.sleep(0.2)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    synced = synced_accounts(fresh_postgres_url)
    assert set(synced) == set(ACCOUNTS[:3])
    scheduled = query(
        fresh_postgres_url,
        "select count(*) from procrastinate_jobs where task_name = 'igsync.enqueue_all'",
    )
    assert int(str(scheduled[0][0])) >= 1


def test_a_schedule_that_is_not_cron_is_refused_with_exit_2(
    fresh_postgres_url: str, served: Served, tmp_path: Path
) -> None:
    env = env_for(fresh_postgres_url, served, tmp_path)
    proc = igsync(env, "worker", "--schedule", "every day", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--schedule 'every day': not a cron expression" in proc.stderr


def test_a_workers_report_counts_every_job_a_raised_one_as_failed() -> None:
    """--until-empty exits 1 on `success` false: a job whose sync raised (its store failed
    before the account had a result) must count as a failed account too."""
    from igsync.models import FetchResult
    from igsync.queue import WorkerReport

    def result(*, success: bool = True, skipped: bool = False, rows: int = 0) -> FetchResult:
        return FetchResult.model_construct(success=success, skipped=skipped, total_inserted=rows)

    report = WorkerReport()
    report.add(result(rows=12))
    report.add(result(skipped=True))
    report.add(None)  # the row was deleted after its job was queued
    assert report.success
    report.add_error()
    assert (report.jobs, report.accounts_ok, report.accounts_skipped) == (4, 1, 1)
    assert (report.accounts_gone, report.accounts_failed, report.total_inserted) == (1, 1, 12)
    assert not report.success
