"""Issue 4, item 7: the installed `igsync`, run as a subprocess against the simulator over real
loopback HTTP, stores into a fresh PostgreSQL database exactly what it stores into SQLite.

Both databases are read back with plain SQL (sqlite3, psycopg) and compared row by row on the
key (u_id, account_id, metric, end_time as a UTC instant): same keys, same values, same nulls.
The simulator's values depend only on (account, metric, day), so two runs seconds apart fetch
the same numbers. The PostgreSQL database runs in a time zone far from UTC, and nobody runs
`igsync db init` on it: the store creates its schema on first open, as SQLite does.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql

from igsync.simulator import SimAccount, Simulator, serve_in_thread
from simulator_process import standalone_simulator

pytestmark = pytest.mark.e2e

IGSYNC = str(Path(sys.executable).parent / "igsync")
ACCOUNT = "17841400000000001"  # the first account `python -m igsync.simulator` serves
TOKEN = "EAAJ-pg-e2e-secret-token-Hq72mNbV"
USER = str(uuid4())

Key = tuple[str, str, str, datetime]
Stored = tuple[str, str, int | None, Any]  # metric_type, period, value, value_json
Rows = dict[Key, Stored]


def utc(value: datetime | str) -> datetime:
    """One UTC instant, whether SQLite's ISO text or PostgreSQL's timestamptz in any zone."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert moment.tzinfo is not None, value
    return moment.astimezone(UTC)


def sqlite_rows(path: Path) -> Rows:
    with closing(sqlite3.connect(path)) as conn:
        found = conn.execute(
            "select u_id, account_id, metric, end_time, metric_type, period, value, value_json"
            " from instagram_insights"
        ).fetchall()
    rows = {
        (str(UUID(u)), a, m, utc(t)): (mt, p, v, None if j is None else json.loads(j))
        for u, a, m, t, mt, p, v, j in found
    }
    assert len(rows) == len(found)
    return rows


def postgres_rows(url: str) -> Rows:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "select u_id, account_id, metric, end_time, metric_type, period, value, value_json"
            " from instagram_insights"
        ).fetchall()
    rows = {(str(u), a, m, utc(t)): (mt, p, v, j) for u, a, m, t, mt, p, v, j in found}
    assert len(rows) == len(found)
    return rows


@dataclass
class Databases:
    sqlite_path: Path
    postgres_url: str

    @property
    def urls(self) -> dict[str, str]:
        return {"sqlite": f"sqlite:///{self.sqlite_path}", "postgres": self.postgres_url}

    def rows(self) -> dict[str, Rows]:
        return {
            "sqlite": sqlite_rows(self.sqlite_path),
            "postgres": postgres_rows(self.postgres_url),
        }


@pytest.fixture
def databases(tmp_path: Path, fresh_postgres_url: str) -> Databases:
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        database = sql.Identifier(conn.info.dbname)
        conn.execute(sql.SQL("alter database {} set timezone = 'Asia/Kolkata'").format(database))
    return Databases(tmp_path / "igsync.db", fresh_postgres_url)


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    """`python -m igsync.simulator --port 0`, as a user starts it; its first line is its URL."""
    with standalone_simulator() as served:
        yield served.graph_url


def igsync(tmp: Path, graph_url: str, db_url: str, *args: str) -> tuple[int, dict[str, Any], str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
        "NO_COLOR": "1",
        "IGSYNC_GRAPH_URL": graph_url,
        "IG_ACCOUNT_ID": ACCOUNT,
        "IG_LONG_TOKEN": TOKEN,
        "IGSYNC_HTTP_TIMEOUT": "5",
    }
    proc = subprocess.run(
        [IGSYNC, "--db", db_url, *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=120,
        check=False,
    )
    assert proc.stdout.count("\n") == 1, proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def run_on_both(dbs: Databases, tmp: Path, graph_url: str, *args: str) -> dict[str, dict[str, Any]]:
    results = {}
    for name, url in dbs.urls.items():
        code, result, stderr = igsync(tmp, graph_url, url, *args)
        assert code == 0, (name, result, stderr)
        assert TOKEN not in stderr
        results[name] = result
    return results


def assert_same_rows(dbs: Databases, expected: int) -> Rows:
    rows = dbs.rows()
    assert len(rows["sqlite"]) == expected
    assert rows["postgres"] == rows["sqlite"]
    return rows["sqlite"]


def test_fetch_stores_the_same_rows_in_a_fresh_postgres_as_in_sqlite(
    databases: Databases, simulator_url: str, tmp_path: Path
) -> None:
    results = run_on_both(databases, tmp_path, simulator_url, "fetch", "--user", USER)
    assert results["postgres"]["total_inserted"] == results["sqlite"]["total_inserted"] == 12

    rows = assert_same_rows(databases, 12)
    assert {k[0] for k in rows} == {USER}
    assert {k[3].hour for k in rows} == {8}  # Los Angeles midnight, as a UTC instant

    again = run_on_both(databases, tmp_path, simulator_url, "fetch", "--user", USER)
    assert again["postgres"]["total_inserted"] == again["sqlite"]["total_inserted"] == 12
    assert assert_same_rows(databases, 12) == rows  # upserts on the same keys: no new rows


def test_days_without_data_are_null_in_postgres_as_in_sqlite(
    databases: Databases, tmp_path: Path
) -> None:
    # Below 100 followers Meta serves no follower_count: stored as null, never as 0.
    sim = Simulator([SimAccount(ACCOUNT, tz="Asia/Kolkata", followers=40)])
    with serve_in_thread(sim) as served:
        run_on_both(databases, tmp_path, served.graph_url, "fetch", "--user", USER, "--days", "5")

    rows = assert_same_rows(databases, 20)
    nulls = {k[2] for k, v in rows.items() if v[2] is None}
    assert nulls == {"follower_count"}


def test_demo_stores_the_same_rows_in_a_fresh_postgres_as_in_sqlite(
    databases: Databases, tmp_path: Path
) -> None:
    unused = "http://127.0.0.1:9"  # the demo runs its simulator in-process
    results = run_on_both(databases, tmp_path, unused, "demo", "--accounts", "4", "--days", "5")
    assert results["postgres"]["total_inserted"] == results["sqlite"]["total_inserted"] == 4 * 20

    rows = assert_same_rows(databases, 4 * 20)
    assert len({k[1] for k in rows}) == 4
    assert len({k[3] for k in rows}) > 5  # accounts in several zones: several UTC day ends

    run_on_both(databases, tmp_path, unused, "demo", "--accounts", "4", "--days", "5")
    assert assert_same_rows(databases, 4 * 20) == rows
