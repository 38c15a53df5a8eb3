"""The installed `igsync sync-all` as a subprocess against the simulator over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import SecretStr

from contract_keys import FETCH_RESULT_KEYS, SYNC_REPORT_KEYS
from igsync.models import UserToken
from igsync.simulator import SimAccount, Simulator, serve_in_thread
from igsync.store.sqlite import SQLiteStore
from test_cli_e2e import IGSYNC, KOLKATA, LA, TOKEN, Env

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    sim = Simulator(
        [SimAccount(LA, tz="America/Los_Angeles"), SimAccount(KOLKATA, tz="Asia/Kolkata")]
    )
    with serve_in_thread(sim) as served:
        yield Env(sim, served, tmp_path)


def seed(env: Env, *accounts: str) -> dict[str, str]:
    """A user_tokens row per account; returns account id -> its token."""
    tokens = {a: f"EAAJ-sync-all-secret-{a}-Zq81kLmN0pQr" for a in accounts}

    async def save() -> None:
        async with SQLiteStore(env.db) as store:
            await store.init_schema()
            for account, token in tokens.items():
                row = UserToken(u_id=uuid4(), access_token=SecretStr(token), account_id=account)
                await store.save_token(row)

    asyncio.run(save())
    return tokens


def sync_logs(env: Env) -> list[tuple[str, ...]]:
    with closing(sqlite3.connect(env.db)) as conn:
        return conn.execute(
            "select account_id, status, errors, token_refreshed from instagram_sync_logs"
            " order by account_id"
        ).fetchall()


def test_json_is_one_sync_report_and_every_account_is_stored(env: Env) -> None:
    seed(env, LA, KOLKATA)
    proc = env.run("sync-all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    report = json.loads(proc.stdout)
    assert set(report) >= SYNC_REPORT_KEYS | {"results"}
    assert (report["accounts_total"], report["accounts_ok"], report["accounts_failed"]) == (2, 2, 0)
    assert report["success"] is True
    assert report["total_inserted"] == 24
    assert all(set(r) >= FETCH_RESULT_KEYS for r in report["results"])
    assert sorted(r["account_id"] for r in report["results"]) == [LA, KOLKATA]
    assert len(env.rows()) == 24
    assert [(a, s) for a, s, *_ in sync_logs(env)] == [(LA, "ok"), (KOLKATA, "ok")]


def test_a_machine_output_run_imports_neither_httpx_command_line_nor_rich(env: Env) -> None:
    """`import httpx` brings its own CLI (click, rich.syntax, pygments) that igsync never
    runs; the executable skips it, 40-50 ms of every run's start, and still syncs. Off a
    terminal, --json (and its stderr summary line) needs no console from rich either."""
    seed(env, LA)
    probe = (
        "import atexit, sys\n"
        "names = ('httpx', 'httpx._main', 'pygments', 'rich')\n"
        "loaded = lambda: sorted(m for m in names if sys.modules.get(m))\n"
        "atexit.register(lambda: sys.stderr.write(f'modules: {loaded()}\\n'))\n"
        "sys.argv[0] = 'igsync'\n"
        "from igsync.cli import console\n"
        "console()\n"
    )
    proc = env.run("sync-all", "--json", command=(sys.executable, "-c", probe))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accounts_ok"] == 1
    assert "modules: ['httpx']" in proc.stderr


def test_ndjson_streams_each_account_then_the_summary_and_one_failure_exits_1(env: Env) -> None:
    seed(env, LA, KOLKATA)
    env.sim.accounts[KOLKATA] = SimAccount(
        KOLKATA, tz="Asia/Kolkata", denied_metrics=frozenset({"profile_views"})
    )
    proc = env.run("sync-all", "--ndjson")
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 3
    *results, last = lines
    assert all(set(r) >= FETCH_RESULT_KEYS for r in results)
    assert {r["account_id"]: r["success"] for r in results} == {LA: True, KOLKATA: False}
    summary = last["summary"]
    assert set(summary) >= SYNC_REPORT_KEYS
    assert "results" not in summary
    assert (summary["accounts_ok"], summary["accounts_failed"]) == (1, 1)
    assert summary["total_inserted"] == 12 + 9
    assert [(a, s) for a, s, *_ in sync_logs(env)] == [(LA, "ok"), (KOLKATA, "partial")]


def test_human_output_is_the_report_table_and_one_line_per_error(env: Env) -> None:
    seed(env, LA, KOLKATA)
    env.sim.accounts[KOLKATA] = SimAccount(
        KOLKATA, tz="Asia/Kolkata", denied_metrics=frozenset({"profile_views"})
    )
    proc = env.run("sync-all", "--days", "2")
    assert proc.returncode == 1
    assert LA in proc.stdout
    assert "1/2 accounts ok" in proc.stdout
    (error,) = [line for line in proc.stdout.splitlines() if "profile_views" in line]
    assert error.startswith(f"{KOLKATA}: ")
    # not a terminal (cron): no progress bar, no log line, one summary line
    assert proc.stderr.startswith("igsync sync-all: 1/2 accounts ok, 1 failed, ")
    assert proc.stderr.count("\n") == 1


def test_shards_split_the_accounts_between_workers(env: Env) -> None:
    seed(env, LA, KOLKATA)
    seen: list[str] = []
    for k in (1, 2):
        proc = env.run("sync-all", "--shard", f"{k}/2", "--json", "--dry-run")
        assert proc.returncode == 0, proc.stderr
        seen += [r["account_id"] for r in json.loads(proc.stdout)["results"]]
    assert sorted(seen) == [LA, KOLKATA]
    assert env.rows() == []  # dry runs


def test_no_accounts_is_said_clearly_and_is_a_failure_unless_allowed(env: Env) -> None:
    """Issue 12: a run that syncs nothing must not pass for a good one."""
    seed(env)
    proc = env.run("sync-all")  # IG_ACCOUNT_ID/IG_LONG_TOKEN are set, and not used
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith("igsync: error: no accounts to sync: SQLite file")
    assert "IG_ACCOUNT_ID/IG_LONG_TOKEN are set, but sync-all syncs user_tokens rows only" in (
        proc.stderr
    )
    proc = env.run("sync-all", "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert (report["accounts_total"], report["results"], report["success"]) == (0, [], False)
    proc = env.run("sync-all", "--json", "--allow-empty")
    assert proc.returncode == 0
    assert proc.stderr.startswith("igsync sync-all: 0/0 accounts ok")  # cron's summary line
    assert json.loads(proc.stdout)["success"] is True
    assert env.sim.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ("--json", "--ndjson"),
        ("--shard", "0/2"),
        ("--shard", "3/2"),
        ("--shard", "a/b"),
        ("--shard", "1/0"),
        ("--concurrency", "0"),
        ("--concurrency", "257"),
        ("--days", "0"),
        ("--metrics", "reach,nope"),
        ("--since", "2026-13-01"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_nothing_on_stdout(
    env: Env, args: tuple[str, ...]
) -> None:
    seed(env, LA)
    proc = env.run("sync-all", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("igsync: error: ")
    assert env.sim.requests == []


def test_no_token_reaches_output_or_sync_logs(env: Env) -> None:
    tokens = seed(env, LA, KOLKATA)
    env.sim.expire_token(tokens[KOLKATA])
    outputs = [
        env.run("sync-all", "--json", "-vv"),
        env.run("sync-all", "--ndjson", "-vv"),
        env.run("sync-all", "-vv"),
    ]
    assert [p.returncode for p in outputs] == [1, 1, 1]
    assert "needs_reauth" in outputs[0].stdout
    logs = sync_logs(env)
    assert {s for _, s, *_ in logs} == {"ok", "failed"}
    for secret in [*tokens.values(), TOKEN]:
        for proc in outputs:
            assert secret not in proc.stdout
            assert secret not in proc.stderr
        assert not [row for row in logs if secret in repr(row)]


@pytest.mark.parametrize("output", ["--ndjson", "--table"])
def test_a_reader_that_stops_reading_ends_the_output_never_the_work(env: Env, output: str) -> None:
    """DESIGN §4: `sync-all --ndjson | head -1` prints one line, and the human table to a reader
    that already left prints nothing; either way every account is still synced and logged,
    the exit code is the run's, and no traceback is printed."""
    seed(env, LA, KOLKATA)
    env.sim.latency = 0.2  # the reader is gone long before the second account's line
    reader_env = {
        **os.environ,
        "HOME": str(env.tmp),
        "NO_COLOR": "1",
        "IGSYNC_GRAPH_URL": env.served.graph_url,
        "IGSYNC_INSTAGRAM_URL": env.served.instagram_url,
        "IGSYNC_DATABASE_URL": f"sqlite:///{env.db}",
    }
    ndjson = output == "--ndjson"
    proc = subprocess.Popen(
        [IGSYNC, "sync-all", "--concurrency", "1", *(["--ndjson"] if ndjson else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=reader_env,
        cwd=env.tmp,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline() if ndjson else b""
    proc.stdout.close()  # the reader goes away, as `head -1` (or `head -0`) does
    _, stderr = proc.communicate(timeout=120)
    if ndjson:
        assert json.loads(first)["success"] is True
    assert proc.returncode == 0  # rich's own broken-pipe hook would have exited 1
    assert b"Traceback" not in stderr
    assert b"BrokenPipe" not in stderr
    assert [row[:2] for row in sync_logs(env)] == [(LA, "ok"), (KOLKATA, "ok")]
