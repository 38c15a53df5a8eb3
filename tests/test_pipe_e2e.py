"""`igsync sync-all --ndjson | head -1` through a real shell pipe (issue 12, item 7).

Issue 12 saw a 60-line BrokenPipeError traceback, exit 1, and 6 of 201 accounts synced. DESIGN
§4: a reader that stops reading ends the output, never the work. igsync finishes every account
(each gets its sync-log row), stops writing stdout, prints no traceback, and exits with the
run's own code (0 here: every account succeeded).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from igsync.simulator import SimAccount, Simulator, serve_in_thread
from test_cli_e2e import IGSYNC
from test_cli_output import Env

pytestmark = pytest.mark.e2e

ACCOUNTS = [f"1784140000000{i:04d}" for i in range(1, 6)]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Env, dict[str, str]]]:
    sim = Simulator([SimAccount(a, tz="America/Los_Angeles") for a in ACCOUNTS])
    sim.latency = 0.1  # `head` has long left before the last account ends
    with serve_in_thread(sim) as served:
        db = tmp_path / "igsync.db"
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "NO_COLOR": "1",
            "IGSYNC_GRAPH_URL": served.graph_url,
            "IGSYNC_INSTAGRAM_URL": served.instagram_url,
            "IGSYNC_DATABASE_URL": f"sqlite:///{db}",
            "IGSYNC_HTTP_TIMEOUT": "5",
        }
        yield Env(sim, db), environ


def test_head_1_ends_the_output_never_the_work(env: tuple[Env, dict[str, str]]) -> None:
    e, environ = env
    tokens = e.seed(*ACCOUNTS)
    proc = subprocess.run(
        # PIPESTATUS: igsync's own exit code, not head's
        [
            "bash",
            "-c",
            f'"{IGSYNC}" sync-all --ndjson --concurrency 1 | head -1; '
            'echo "igsync exited ${PIPESTATUS[0]}" >&2',
        ],
        capture_output=True,
        text=True,
        env=environ,
        cwd=e.db.parent,
        timeout=120,
        check=False,
    )
    (line,) = proc.stdout.splitlines()
    assert json.loads(line)["success"] is True
    assert "Traceback" not in proc.stderr
    assert "BrokenPipe" not in proc.stderr
    summary, exited = proc.stderr.splitlines()
    assert summary.startswith("igsync sync-all: 5/5 accounts ok, 0 failed, 60 rows")
    assert exited == "igsync exited 0"
    with closing(sqlite3.connect(e.db)) as conn:
        logs = conn.execute(
            "select account_id, status from instagram_sync_logs order by account_id"
        ).fetchall()
        runs = conn.execute("select count(distinct run_id) from instagram_sync_logs").fetchone()
        stored = conn.execute("select count(*) from instagram_insights").fetchone()[0]
    assert logs == [(a, "ok") for a in ACCOUNTS]
    assert runs == (1,)
    assert stored == 60
    for token in tokens.values():
        assert token not in proc.stdout + proc.stderr


def _closed_stdout() -> None:
    os.close(1)  # `igsync … >&-`: Python then starts with sys.stdout None


def test_sync_all_with_stdout_closed_syncs_every_account_then_says_so(
    env: tuple[Env, dict[str, str]],
) -> None:
    e, environ = env
    e.sim.latency = 0
    e.seed(*ACCOUNTS)
    proc = subprocess.run(
        [IGSYNC, "sync-all", "--ndjson", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_closed_stdout,
        text=True,
        env=environ,
        cwd=e.db.parent,
        timeout=120,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (
        1,
        "igsync: error: cannot write the output: stdout is closed\n",
    )
    with closing(sqlite3.connect(e.db)) as conn:
        logs = conn.execute("select status from instagram_sync_logs").fetchall()
    assert logs == [("ok",)] * len(ACCOUNTS)


@pytest.mark.parametrize(
    ("args", "where", "reason"),
    [
        ((), "/dev/full", "No space left on device"),
        ((), None, "stdout is closed"),
        (("--format", "parquet"), None, "stdout is closed"),
    ],
)
def test_export_to_a_stdout_it_cannot_write_is_one_line_and_exit_1(
    env: tuple[Env, dict[str, str]], args: tuple[str, ...], where: str | None, reason: str
) -> None:
    e, environ = env
    e.seed(*ACCOUNTS[:1])
    with e.db.parent.joinpath("out").open("w") if where is None else open(where, "w") as out:
        proc = subprocess.run(
            [IGSYNC, "export", *args],
            stdout=out,
            stderr=subprocess.PIPE,
            preexec_fn=_closed_stdout if where is None else None,
            text=True,
            env=environ,
            cwd=e.db.parent,
            timeout=120,
            check=False,
        )
    assert (proc.returncode, proc.stderr) == (
        1,
        f"igsync: error: cannot write the output: {reason}\n",
    )
