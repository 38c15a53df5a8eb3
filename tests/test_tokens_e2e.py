"""`igsync accounts …` and `igsync refresh-token` as subprocesses against the simulator over
loopback: what they print, what they store, and that no secret ever shows."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from igsync.simulator import Fault, SimAccount, Simulator, serve_in_thread

pytestmark = pytest.mark.e2e

IGSYNC = str(Path(sys.executable).parent / "igsync")
ACCOUNT = "17841400000000001"
APP_SECRET = "sim-app-secret-Very-Secret-42"
NOW = datetime.now(UTC)


@dataclass
class Env:
    sim: Simulator
    url: str
    tmp: Path

    @property
    def db(self) -> Path:
        return self.tmp / "igsync.db"

    def cmd(self, *args: str, stdin: str | None = None, app: bool = True) -> list[str]:
        return [IGSYNC, *args]

    def environ(self, app: bool = True) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.tmp),
            "NO_COLOR": "1",
            "IGSYNC_GRAPH_URL": self.url,
            "IGSYNC_INSTAGRAM_URL": self.url,
            "IGSYNC_DATABASE_URL": f"sqlite:///{self.db}",
            "IGSYNC_HTTP_TIMEOUT": "5",
        }
        if app:
            env |= {"IG_APP_ID": "sim-app-id", "IG_APP_SECRET": APP_SECRET}
        return env

    def run(
        self, *args: str, stdin: str | None = None, app: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [IGSYNC, *args],
            capture_output=True,
            text=True,
            env=self.environ(app),
            cwd=self.tmp,
            input=stdin,
            timeout=120,
            check=False,
        )

    def add(
        self,
        token: str,
        *,
        user: str,
        expires: datetime | None = None,
        kind: str = "facebook_login",
    ) -> subprocess.CompletedProcess[str]:
        args = [
            "accounts",
            "add",
            "--user",
            user,
            "--account-id",
            ACCOUNT,
            "--token-stdin",
            "--kind",
            kind,
        ]
        if expires is not None:
            args += ["--expires-at", expires.isoformat()]
        return self.run(*args, stdin=token + "\n")

    def token_row(self, user: str) -> tuple[str, str, str | None]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(
                "select access_token, status, expires_at from user_tokens where u_id = ?", (user,)
            ).fetchone()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    sim = Simulator(
        [SimAccount(ACCOUNT, tz="America/Los_Angeles")], strict_tokens=True, app_secret=APP_SECRET
    )
    with serve_in_thread(sim) as url:
        yield Env(sim, url, tmp_path)


def test_add_list_remove_round_trip_shows_only_the_last_four(env: Env) -> None:
    user = str(uuid4())
    token = env.sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=50))
    added = env.add(token, user=user)
    assert added.returncode == 0, added.stderr
    assert token not in added.stdout
    assert f"…{token[-4:]}" in added.stdout
    assert "expires" in added.stdout  # learned from debug_token
    listed = env.run("accounts", "list", "--json")
    (info,) = json.loads(listed.stdout)
    assert info["user_id"] == user
    assert info["source"] == "db"
    assert info["status"] == "ok"
    assert info["days_left"] in (49, 50)
    assert info["token_hint"] == f"…{token[-4:]}"
    assert token not in listed.stdout
    removed = env.run("accounts", "remove", "--user", user, "--json")
    assert json.loads(removed.stdout) == {"removed": 1}
    assert json.loads(env.run("accounts", "list", "--json").stdout) == []


def test_add_refuses_an_invalid_token_without_saving_it(env: Env) -> None:
    token = env.sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=50))
    env.sim.revoke_token(token)
    proc = env.add(token, user=str(uuid4()))
    assert proc.returncode == 2
    assert proc.stderr.startswith("igsync: error: the token is not valid")
    assert token not in proc.stderr
    assert json.loads(env.run("accounts", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (["--user", "U", "--account-id", ACCOUNT, "--token-stdin"], "t", "--user"),
        (["--account-id", ACCOUNT, "--token-stdin"], "t", "--user"),
        (["--account-id", "me", "--token-stdin"], "t", "--account-id"),
        ([], "EAAGsomething", "--token-stdin"),
        (["--token-stdin"], "", "standard input was empty"),
        (["--token-stdin"], "two words", "white space"),
        (["--token-stdin", "--expires-at", "soon"], "EAAGx", "--expires-at"),
        (["--token-stdin", "--kind", "oauth"], "EAAGx", "--kind"),
    ],
)
def test_bad_account_input_is_one_line_and_exit_2(
    env: Env, args: list[str], stdin: str, needle: str
) -> None:
    base = ["accounts", "add"]
    if "--user" not in args and needle != "--user":
        base += ["--user", str(uuid4())]
    if "--account-id" not in args:
        base += ["--account-id", ACCOUNT]
    proc = env.run(*base, *args, stdin=stdin)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert needle in proc.stderr


def test_refresh_token_saves_the_new_token_and_reports_it(env: Env) -> None:
    user = str(uuid4())
    old = env.sim.issue_token(
        ACCOUNT, issued_at=NOW - timedelta(days=55), expires_at=NOW + timedelta(days=5)
    )
    assert env.add(old, user=user, expires=NOW + timedelta(days=5)).returncode == 0
    proc = env.run("refresh-token", "--all", "--expiring-within", "7d", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [r["user_id"] for r in report["refreshed"]] == [user]
    assert report["failed"] == []
    new, status, expires = env.token_row(user)
    assert new != old
    assert status == "ok"
    info = env.sim.token_info(new)
    assert info is not None
    assert info.account_id == ACCOUNT
    assert expires is not None
    assert expires.startswith(str((NOW + timedelta(days=60)).date())[:7])


def test_refresh_token_marks_dead_tokens_and_exits_1(env: Env) -> None:
    user = str(uuid4())
    old = env.sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=2))
    assert env.add(old, user=user, expires=NOW + timedelta(days=2)).returncode == 0
    env.sim.revoke_token(old)
    proc = env.run("refresh-token", "--user", user)
    assert proc.returncode == 1
    assert "failed" in proc.stdout
    assert "log in again" in proc.stdout
    assert env.token_row(user)[:2] == (old, "needs_reauth")
    listed = json.loads(env.run("accounts", "list", "--json").stdout)
    assert listed[0]["status"] == "needs_reauth"


def test_two_processes_refreshing_one_token_leave_one_valid_token(env: Env) -> None:
    user = str(uuid4())
    old = env.sim.issue_token(
        ACCOUNT, issued_at=NOW - timedelta(days=55), expires_at=NOW + timedelta(days=3)
    )
    assert env.add(old, user=user, expires=NOW + timedelta(days=3)).returncode == 0
    env.sim.latency = 0.4  # both processes are in flight at once
    procs = [
        subprocess.Popen(
            [IGSYNC, "refresh-token", "--all", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env.environ(),
            cwd=env.tmp,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    reports = [json.loads(out) for out, _ in outputs]
    assert sorted(len(r["refreshed"]) for r in reports) == [0, 1]
    loser = next(r for r in reports if not r["refreshed"])
    assert "another process" in loser["skipped"][0]["reason"]
    exchanges = [r for r in env.sim.requests if r.path.endswith("oauth/access_token")]
    assert len(exchanges) == 2  # both really refreshed at Meta; one save won
    new, status, _ = env.token_row(user)
    info = env.sim.token_info(new)
    assert new != old
    assert status == "ok"
    assert info is not None
    assert info.account_id == ACCOUNT
    assert not info.revoked


def test_fetch_on_190_refreshes_saves_and_retries(env: Env) -> None:
    user = str(uuid4())
    old = env.sim.issue_token(
        ACCOUNT, issued_at=NOW - timedelta(days=10), expires_at=NOW + timedelta(days=50)
    )
    assert env.add(old, user=user, expires=NOW + timedelta(days=50)).returncode == 0
    env.sim.faults.append(Fault("expired_token", times=1))
    proc = env.run("fetch", "--user", user, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["token_refreshed"] is True
    assert result["total_inserted"] == 12
    assert env.token_row(user)[0] != old


def test_no_secret_reaches_any_output_log_or_table(env: Env) -> None:
    """Known tokens and the app secret through every command and failure path, with -vv."""
    user, other = str(uuid4()), str(uuid4())
    good = env.sim.issue_token(
        ACCOUNT, issued_at=NOW - timedelta(days=55), expires_at=NOW + timedelta(days=3)
    )
    dead = env.sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=2))
    secrets = [good, dead, APP_SECRET]
    procs = [env.add(good, user=user), env.add(dead, user=other)]
    env.sim.revoke_token(dead)
    env.sim.faults += [
        Fault("server_error", times=2, endpoint="oauth/access_token"),
        Fault("timeout", times=1, delay=6.0),
        Fault("throttle", times=1),
    ]
    for args in (
        ["accounts", "list"],
        ["accounts", "list", "--json", "-vv"],
        ["refresh-token", "--all", "--dry-run", "-vv"],
        ["refresh-token", "--all", "-vv"],
        ["refresh-token", "--all", "--json", "-vv"],
        ["fetch", "--user", user, "-vv"],
        ["fetch", "--user", user, "--json", "-vv"],
        ["fetch", "--user", other, "--json", "-vv"],
        ["fetch", "--user", user, "--days", "0"],
        ["refresh-token", "--all", "--expiring-within", "soon"],
    ):
        procs.append(env.run(*args))
    current = env.token_row(user)[0]
    secrets.append(current)
    assert any(p.returncode == 1 for p in procs)  # failure paths were really taken
    for proc in procs:
        for secret in secrets:
            assert secret not in proc.stdout, (proc.args, "stdout")
            assert secret not in proc.stderr, (proc.args, "stderr")
    with sqlite3.connect(env.db) as conn:
        conn.row_factory = sqlite3.Row
        tables = [t for (t,) in conn.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in conn.execute(f"select * from {table}"):
                # tokens live in user_tokens.access_token and nowhere else; the secret nowhere
                cells = {k: str(row[k]) for k in row.keys()}  # noqa: SIM118 - sqlite3.Row
                if table == "user_tokens":
                    cells.pop("access_token")
                text = json.dumps(cells)
                assert not any(secret in text for secret in secrets), table
