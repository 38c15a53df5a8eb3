"""Two and three `igsync sync-all` processes at once, on SQLite and on the real PostgreSQL, against
the simulator over loopback with a second of latency per call: every account is synced by
exactly one of them (one sync-log row, one set of Graph calls), the others report it skipped,
and every process exits 0.

The latency makes one account take seconds, longer than the processes take to start one after
another, so the runs really overlap (a run that started after another had finished an account
would rightly sync it again: claims stop concurrent work, not the next scheduled run).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from pydantic import SecretStr

from igsync.models import UserToken
from igsync.simulator import Served, SimAccount, Simulator, serve_in_thread
from igsync.store import Store, open_store
from test_cli_e2e import IGSYNC

pytestmark = pytest.mark.e2e

ACCOUNTS = [f"178414000000{n:05d}" for n in range(1, 5)]
LATENCY_S = 1.0


@pytest.fixture
def served() -> Iterator[tuple[Simulator, Served]]:
    sim = Simulator([SimAccount(a) for a in ACCOUNTS], latency=LATENCY_S)
    with serve_in_thread(sim) as urls:
        yield sim, urls


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("fresh_postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'igsync.db'}"


def seed(url: str) -> None:
    async def save() -> None:
        store: Store = open_store(url)
        async with store:
            for account in ACCOUNTS:
                token = SecretStr(f"EAAJ-overlap-secret-{account}-Zq81kLmN")
                await store.save_token(
                    UserToken(u_id=uuid4(), access_token=token, account_id=account)
                )

    asyncio.run(save())


def sync_log_accounts(url: str) -> Counter[str]:
    query = "select account_id from instagram_sync_logs"
    if url.startswith("sqlite"):
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return Counter(r[0] for r in conn.execute(query))
    with psycopg.connect(url) as conn:
        return Counter(r[0] for r in conn.execute(query))


def start(url: str, urls: Served, tmp_path: Path) -> subprocess.Popen[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "NO_COLOR": "1",
        "IGSYNC_GRAPH_URL": urls.graph_url,
        "IGSYNC_INSTAGRAM_URL": urls.instagram_url,
        "IGSYNC_DATABASE_URL": url,
        "IGSYNC_HTTP_TIMEOUT": "10",
    }
    return subprocess.Popen(
        [IGSYNC, "sync-all", "--ndjson", "--concurrency", "1", "--no-batch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


@pytest.mark.parametrize("processes", [2, 3])
def test_overlapping_runs_sync_every_account_exactly_once(
    served: tuple[Simulator, Served], database_url: str, tmp_path: Path, processes: int
) -> None:
    sim, urls = served
    seed(database_url)

    runs = [start(database_url, urls, tmp_path) for _ in range(processes)]
    outputs = [run.communicate(timeout=110) for run in runs]

    assert [run.returncode for run in runs] == [0] * processes, [err for _, err in outputs]
    lines = [[json.loads(line) for line in out.splitlines()] for out, _ in outputs]
    results: list[dict[str, Any]] = [r for run in lines for r in run if "summary" not in r]
    summaries = [run[-1]["summary"] for run in lines]
    synced = Counter(r["account_id"] for r in results if not r["skipped"])
    skipped = [r for r in results if r["skipped"]]

    assert synced == Counter(ACCOUNTS), lines  # each account by exactly one process
    assert all(r["success"] for r in results)
    assert skipped, "the runs did not overlap: each synced every account"
    # held by another run at that moment, or finished by one while this run went on
    reasons = ("skipped: being synced by another run (", "skipped: synced by another run while")
    assert all(n.startswith(reasons) for r in skipped for n in r["notes"])
    assert sum(s["accounts_ok"] for s in summaries) == len(ACCOUNTS)
    assert sum(s["accounts_skipped"] for s in summaries) == len(skipped)
    assert all(s["accounts_failed"] == 0 and s["success"] for s in summaries)
    assert sync_log_accounts(database_url) == Counter(ACCOUNTS)
    # Meta saw each account's calls once: the same number for every account
    calls = Counter(a for r in sim.requests for a in ACCOUNTS if a in r.path)
    assert set(calls) == set(ACCOUNTS)
    assert len(set(calls.values())) == 1, calls
