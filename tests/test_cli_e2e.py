"""The installed `igsync`, run as a subprocess the way users run it, against the simulator over
real loopback HTTP; the database is checked afterwards with plain SQL."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from contract_keys import FETCH_RESULT_KEYS
from igsync.simulator import Fault, Served, SimAccount, Simulator, serve_in_thread
from simulator_process import standalone_simulator

pytestmark = pytest.mark.e2e

IGSYNC = str(Path(sys.executable).parent / "igsync")
LA, KOLKATA = "17841400000000001", "17841400000000002"
TOKEN = "EAAJ-e2e-secret-token-Zq81kLmN0pQrStUv"
USER = str(uuid4())


@dataclass
class Env:
    sim: Simulator
    served: Served
    tmp: Path

    @property
    def db(self) -> Path:
        return self.tmp / "igsync.db"

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        command: Sequence[str] = (IGSYNC,),
    ) -> subprocess.CompletedProcess[str]:
        base = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.tmp),
            "XDG_DATA_HOME": str(self.tmp / "data"),
            "NO_COLOR": "1",
            "IGSYNC_GRAPH_URL": self.served.graph_url,
            "IGSYNC_INSTAGRAM_URL": self.served.instagram_url,
            "IGSYNC_DATABASE_URL": f"sqlite:///{self.db}",
            "IG_ACCOUNT_ID": LA,
            "IG_LONG_TOKEN": TOKEN,
            "IGSYNC_HTTP_TIMEOUT": "5",
        }
        merged = {k: v for k, v in {**base, **(env or {})}.items() if v is not None}
        return subprocess.run(
            [*command, *args],
            capture_output=True,
            text=True,
            env=merged,
            cwd=self.tmp,
            input=stdin,
            timeout=120,
            check=False,
        )

    def rows(self) -> list[tuple[str, str, str, int | None]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(
                "select metric, metric_type, end_time, value from instagram_insights"
                " order by metric, end_time"
            ).fetchall()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    sim = Simulator(
        [SimAccount(LA, tz="America/Los_Angeles"), SimAccount(KOLKATA, tz="Asia/Kolkata")]
    )
    with serve_in_thread(sim) as served:
        yield Env(sim, served, tmp_path)


def fetch_json(
    e: Env, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    proc = e.run("fetch", "--user", USER, "--json", *args, env=env)
    assert proc.stdout.count("\n") == 1, proc.stdout + proc.stderr  # one JSON document
    return proc.returncode, json.loads(proc.stdout)


def test_default_fetch_stores_four_metrics_for_three_days_under_shared_utc_keys(env: Env) -> None:
    code, result = fetch_json(env)
    assert code == 0, result
    assert set(result) >= FETCH_RESULT_KEYS
    assert result["success"] is True
    assert result["total_inserted"] == 12
    assert result["account_id"] == LA
    assert result["user_id"] == USER
    rows = env.rows()
    assert len(rows) == 12
    keys = {m: {r[2] for r in rows if r[0] == m} for m in {r[0] for r in rows}}
    assert len(keys) == 4
    assert len({frozenset(k) for k in keys.values()}) == 1
    assert {r[1] for r in rows} == {"time_series", "total_value"}
    # Each key is a Los Angeles midnight written in UTC: 08:00 in winter, 07:00 in summer.
    la = ZoneInfo("America/Los_Angeles")
    for key in keys["reach"]:
        assert key.endswith(":00:00+00:00")
        assert datetime.fromisoformat(key).astimezone(la).time() == time(0, 0)


def test_rerun_adds_no_rows_and_revised_values_win(env: Env) -> None:
    assert env.run("fetch", "--user", USER).returncode == 0
    before = env.rows()
    env.sim.revision += 1
    assert env.run("fetch", "--user", USER).returncode == 0
    after = env.rows()
    assert len(after) == len(before) == 12
    assert [r[:3] for r in after] == [r[:3] for r in before]
    assert after != before


def test_metric_refused_for_permission_is_named_and_the_others_stored(env: Env) -> None:
    env.sim.accounts[LA] = SimAccount(
        LA, tz="America/Los_Angeles", denied_metrics=frozenset({"profile_views"})
    )
    code, result = fetch_json(env)
    assert code == 1
    assert result["success"] is False
    assert result["total_errors"] == 1
    errors = result["errors"]
    assert isinstance(errors, list)
    assert errors[0].startswith("profile_views: (#10)")
    assert {r[0] for r in env.rows()} == {"reach", "accounts_engaged", "follower_count"}


def test_human_output_shows_graph_error_codes_verbatim(env: Env) -> None:
    # `[code 10]` looks like rich markup; it must reach the reader, not be eaten as a tag.
    env.sim.accounts[LA] = SimAccount(
        LA, tz="America/Los_Angeles", denied_metrics=frozenset({"profile_views"})
    )
    proc = env.run("fetch", "--user", USER)
    assert proc.returncode == 1
    assert "error: profile_views: (#10)" in proc.stdout
    assert "[code 10]" in proc.stdout


@pytest.mark.parametrize("kind", ["throttle", "throttle_ig", "server_error", "bad_gateway"])
def test_throttled_or_failing_then_ok_succeeds_through_retries(env: Env, kind: str) -> None:
    env.sim.faults.append(Fault(kind, times=1))  # type: ignore[arg-type]
    code, result = fetch_json(env)
    assert code == 0, result
    assert len(env.rows()) == 12
    assert [r.status for r in env.sim.requests].count(200) == len(env.sim.requests) - 1


def test_an_account_east_of_utc_gets_its_own_day_keys(env: Env) -> None:
    code, result = fetch_json(env, env={"IG_ACCOUNT_ID": KOLKATA})
    assert code == 0, result
    assert {r[2][10:] for r in env.rows()} == {"T18:30:00+00:00"}
    window = result["window"]
    assert isinstance(window, dict)
    days = sorted({r[2][:10] for r in env.rows()})  # Kolkata's day ends on its own UTC date
    assert len(days) == 3
    assert (days[0], days[-1]) == (window["since"], window["until"])


def test_human_output_is_a_table_and_names_the_window(env: Env) -> None:
    proc = env.run("fetch", "--user", USER)
    assert proc.returncode == 0, proc.stderr
    assert "follower_count" in proc.stdout
    assert "12 rows written and verified" in proc.stdout
    # the env fallback says so: its rows go under a user with no account of their own
    assert f"note: account {LA} and its token from IG_ACCOUNT_ID/IG_LONG_TOKEN" in proc.stdout
    assert not proc.stdout.lstrip().startswith("{")
    assert proc.stderr == ""  # not a TTY: no progress, no logs


def test_a_user_tokens_row_wins_over_the_env_fallback(env: Env) -> None:
    assert env.run("db", "init").returncode == 0
    with sqlite3.connect(env.db) as conn:
        conn.execute("insert into users (u_id) values (?)", (USER,))
        conn.execute(
            "insert into user_tokens (token_id, u_id, platform, access_token, account_id)"
            " values (?, ?, 'instagram', ?, ?)",
            (str(uuid4()), USER, TOKEN + "-db", KOLKATA),
        )
    code, result = fetch_json(env, env={"IG_ACCOUNT_ID": "", "IG_LONG_TOKEN": ""})
    assert code == 0, result
    assert result["account_id"] == KOLKATA
    assert not [n for n in result["notes"] if "IG_ACCOUNT_ID" in n]


def test_the_token_never_leaks_into_output_logs_or_tables(env: Env) -> None:
    env.sim.faults += [Fault("throttle"), Fault("server_error")]
    env.sim.accounts[LA] = SimAccount(
        LA, tz="America/Los_Angeles", denied_metrics=frozenset({"accounts_engaged"})
    )
    outputs = [
        env.run("fetch", "--user", USER, "--json", "-vv"),
        env.run("fetch", "--user", USER, "-vv"),
        env.run("fetch", "--user", USER, "--dry-run", "-vv"),
    ]
    env.sim.expire_token(TOKEN)
    outputs.append(env.run("fetch", "--user", USER, "--json", "-vv"))
    outputs.append(env.run("fetch", "--user", USER, "--since", "2020-01-01"))
    assert outputs[-2].returncode == 1
    assert "rejected by the Graph API" in outputs[-2].stdout
    for proc in outputs:
        assert TOKEN not in proc.stdout
        assert TOKEN not in proc.stderr
    dump = "\n".join(sqlite3.connect(env.db).iterdump())
    assert dump.count(TOKEN) == 0  # the env token is never written anywhere


def test_sqlite_file_is_owner_only_in_the_user_data_dir(env: Env) -> None:
    proc = env.run("fetch", "--user", USER, env={"IGSYNC_DATABASE_URL": None})  # type: ignore[dict-item]
    assert proc.returncode == 0, proc.stderr
    db = env.tmp / "data" / "igsync" / "igsync.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


def test_demo_runs_offline_and_reports_every_account(env: Env) -> None:
    proc = env.run(
        "demo", "--json", "--accounts", "4", env={"IGSYNC_GRAPH_URL": "http://127.0.0.1:9"}
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["accounts_total"] == report["accounts_ok"] == 4
    assert report["total_inserted"] == 4 * 12


def test_demo_into_a_kept_database_leaves_insights_but_no_simulated_tokens(env: Env) -> None:
    # env.db is the IGSYNC_DATABASE_URL of every other command here: the user's own database.
    proc = env.run("--db", f"sqlite:///{env.db}", "demo", "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(env.rows()) == 3 * 12
    listed = env.run("accounts", "list", "--json", env={"IG_ACCOUNT_ID": "", "IG_LONG_TOKEN": ""})
    assert json.loads(listed.stdout) == []


def test_standalone_simulator_serves_a_fetch(tmp_path: Path) -> None:
    """The issue's 'done when': python -m igsync.simulator, then fetch against it."""
    with standalone_simulator() as served:
        env = Env(Simulator(), served, tmp_path)
        code, result = fetch_json(env)
        assert code == 0, result
        assert len(env.rows()) == 12


TOMORROW = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()


@pytest.mark.parametrize(
    ("args", "extra_env", "needle"),
    [
        (["fetch", "--user", "not-a-uuid"], {}, "--user"),
        (["fetch"], {}, "--user"),
        (["fetch", "--user", USER, "--days", "0"], {}, "--days"),
        (["fetch", "--user", USER, "--days", "abc"], {}, "--days"),
        (["fetch", "--user", USER, "--since", "2026-13-01"], {}, "--since"),
        (["fetch", "--user", USER, "--since", "yesterday"], {}, "--since"),
        (["fetch", "--user", USER, "--since", "2026-11-10", "--until", "2026-11-01"], {}, "before"),
        (["fetch", "--user", USER, "--since", TOMORROW], {}, "not a complete day"),
        (["fetch", "--user", USER, "--since", "2020-01-01"], {}, "lookback"),
        (["fetch", "--user", USER, "--until", "2026-11-01"], {}, "--until needs --since"),
        (["fetch", "--user", USER, "--days", "3", "--since", "2026-11-01"], {}, "either"),
        (["fetch", "--user", USER, "--metrics", "reach,bogus"], {}, "unknown metric bogus"),
        (["fetch", "--user", USER, "--metrics", ","], {}, "--metrics"),
        (["fetch", "--user", USER, "--metrics", "impressions"], {}, "ask for views instead"),
        (["fetch", "--user", USER, "--bogus"], {}, "--bogus"),
        (["--db", "mysql://x/y", "fetch", "--user", USER], {}, "--db: unsupported database"),
        (["fetch", "--user", USER], {"IG_ACCOUNT_ID": "", "IG_LONG_TOKEN": ""}, "IG_LONG_TOKEN"),
        (["fetch", "--user", USER], {"IGSYNC_GRAPH_URL": "not a url"}, "IGSYNC_GRAPH_URL"),
        (["fetch", "--user", USER], {"IGSYNC_METRICS": "bogus"}, "IGSYNC_METRICS"),
        (["fetch", "--user", USER], {"IGSYNC_GRAPH_VERSION": "24"}, "IGSYNC_GRAPH_VERSION"),
        (["fetch", "--user", USER], {"IG_ACCOUNT_ID": "@me"}, "IG_ACCOUNT_ID"),
        (["fetch", "--user", USER], {"IGSYNC_DATABASE_URL": "oracle://"}, "IGSYNC_DATABASE_URL"),
        (["db", "schema", "--dialect", "oracle"], {}, "--dialect"),
        (["db", "schema", "--migration", "99"], {}, "--migration 99 does not exist"),
        (["db", "schema", "--migration", "0"], {}, "--migration"),
        (["demo", "--accounts", "0"], {}, "--accounts"),
        (["nosuchcommand"], {}, "nosuchcommand"),
        (["fetch", "--user", USER], {"IGSYNC_GRAPH_URL": "http://127.0.0.1:port"}, "GRAPH_URL"),
        (["fetch", "--user", USER], {"IGSYNC_GRAPH_URL": "http://127.0.0.1:99999"}, "out of range"),
        (["fetch", "--user", USER, "EAAG-pasted-token-0123456789"], {}, "not shown"),
        (["--db", "sqlite:////proc/igsync/x.db", "fetch", "--user", USER], {}, "writable file"),
        (["--db", "sqlite:////", "fetch", "--user", USER], {}, "Is a directory"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_2(
    env: Env, args: list[str], extra_env: dict[str, str], needle: str
) -> None:
    proc = env.run(*args, env=extra_env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("igsync: error: ")
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "pasted-token" not in proc.stderr  # an argument that may be a token is never echoed
    assert env.sim.requests == []  # refused before a single Graph call


def test_version_and_help(env: Env) -> None:
    from igsync import __version__

    assert env.run("--version").stdout.strip() == f"igsync {__version__}"
    for args in ([], ["--help"], ["fetch", "--help"], ["demo", "--help"]):
        proc = env.run(*args)
        assert proc.returncode == 0, args
        assert "Usage:" in proc.stdout, args
