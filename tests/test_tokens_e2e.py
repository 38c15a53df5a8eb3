"""`igsync accounts …` and `igsync refresh-token` as subprocesses against the simulator over
loopback: what they print, what they store, and that no secret ever shows."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from bad_token_rows import BAD_ROWS, insert_sql
from igsync.simulator import Fault, Served, SimAccount, Simulator, serve_in_thread

pytestmark = pytest.mark.e2e

IGSYNC = str(Path(sys.executable).parent / "igsync")
# The same console entry point, with stamina's test mode on: retries keep their attempt limit
# but skip the backoff waits, so a failure that persists past the retries reaches the output
# in seconds (STYLE.md: backoff is disabled by a test mode, not by sleeping less).
FAST_IGSYNC = [
    sys.executable,
    "-c",
    "import sys, stamina; stamina.set_testing(True, attempts=5, cap=True); "
    "sys.argv[0] = 'igsync'; from igsync.cli import main; main()",
]
ACCOUNT = "17841400000000001"
APP_SECRET = "sim-app-secret-Very-Secret-42"
NOW = datetime.now(UTC)


@dataclass
class Env:
    sim: Simulator
    served: Served
    tmp: Path
    #: None: SQLite at `db`; else a PostgreSQL URL
    postgres: str | None = None
    http_timeout: str = "5"
    command: list[str] = field(default_factory=lambda: [IGSYNC])

    @property
    def db(self) -> Path:
        return self.tmp / "igsync.db"

    @property
    def db_url(self) -> str:
        return self.postgres or f"sqlite:///{self.db}"

    def environ(self, app: bool = True) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.tmp),
            "NO_COLOR": "1",
            "IGSYNC_GRAPH_URL": self.served.graph_url,
            "IGSYNC_INSTAGRAM_URL": self.served.instagram_url,
            "IGSYNC_DATABASE_URL": self.db_url,
            "IGSYNC_HTTP_TIMEOUT": self.http_timeout,
        }
        if app:
            env |= {"IG_APP_ID": "sim-app-id", "IG_APP_SECRET": APP_SECRET}
        return env

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        app: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            capture_output=True,
            text=True,
            env=self.environ(app) | (extra_env or {}),
            cwd=self.tmp,
            input=stdin,
            timeout=120,
            check=False,
        )

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Plain SQL on the database behind igsync's back (`%s` placeholders)."""
        if self.postgres is not None:
            with psycopg.connect(self.postgres) as conn:
                return conn.execute(query.encode(), params).fetchall()  # type: ignore[arg-type]
        with closing(sqlite3.connect(self.db)) as conn, conn:  # commits, as psycopg's does
            return conn.execute(query.replace("%s", "?"), params).fetchall()

    def table_texts(self) -> dict[str, list[str]]:
        """Every row of every table as text, `user_tokens.access_token` left out."""
        if self.postgres is None:
            tables = [t for (t,) in self.sql("select name from sqlite_master where type='table'")]
        else:
            tables = [
                t
                for (t,) in self.sql(
                    "select table_name from information_schema.tables where table_schema = 'public'"
                )
            ]
        texts: dict[str, list[str]] = {}
        for table in tables:
            texts[table] = []
            if self.postgres is not None:
                with psycopg.connect(self.postgres) as conn, conn.cursor() as cur:
                    cur.execute(sql.SQL("select * from {}").format(sql.Identifier(table)))
                    names = [c.name for c in cur.description or []]
                    rows = cur.fetchall()
            else:
                with closing(sqlite3.connect(self.db)) as conn:
                    cur = conn.execute(f"select * from {table}")
                    names = [c[0] for c in cur.description]
                    rows = cur.fetchall()
            for row in rows:
                cells = dict(zip(names, row, strict=True))
                if table == "user_tokens":
                    cells.pop("access_token")
                texts[table].append(json.dumps(cells, default=str))
        return texts

    def add(
        self,
        token: str,
        *,
        user: str,
        expires: datetime | None = None,
        kind: str | None = None,
        account: str = ACCOUNT,
    ) -> subprocess.CompletedProcess[str]:
        """`accounts add`; without `kind` igsync tells it from the token's shape."""
        args = ["accounts", "add", "--user", user, "--account-id", account, "--token-stdin"]
        if kind is not None:
            args += ["--kind", kind]
        if expires is not None:
            args += ["--expires-at", expires.isoformat()]
        return self.run(*args, stdin=token + "\n")

    def token_row(self, user: str) -> tuple[str, str, str | None]:
        (row,) = self.sql(
            "select access_token, status, cast(expires_at as text) from user_tokens"
            " where cast(u_id as text) = %s",
            user,
        )
        return row[0], row[1], row[2]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    sim = Simulator(
        [SimAccount(ACCOUNT, tz="America/Los_Angeles")], strict_tokens=True, app_secret=APP_SECRET
    )
    with serve_in_thread(sim) as served:
        yield Env(sim, served, tmp_path)


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
        (["--account-id", "178414²", "--token-stdin"], "t", "--account-id"),
        ([], "EAAGsomething", "--token-stdin"),
        (["--token-stdin"], "", "standard input was empty"),
        (["--token-stdin"], "two words", "white space"),
        (["--token-stdin"], "EAAG" + "x" * 40 + "é", "non-ASCII"),
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
    # 190 without a subcode: maybe dead, maybe not; one refresh tells (463 would not be tried)
    env.sim.faults.append(Fault("invalid_token", times=1))
    proc = env.run("fetch", "--user", user, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["token_refreshed"] is True
    assert result["total_inserted"] == 12
    assert env.token_row(user)[0] != old


# -- refresh-token from cron: exit codes, bad durations, dry runs --------------------------------


@pytest.mark.parametrize("duration", ["²d", "99999999999d", "366d", "7 d", "1.5d"])
def test_a_bad_duration_is_one_line_and_exit_2(env: Env, duration: str) -> None:
    proc = env.run("refresh-token", "--all", "--expiring-within", duration)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("igsync: error: --expiring-within")
    assert "Traceback" not in proc.stderr


def test_refresh_token_keeps_exiting_1_while_a_token_needs_reauth(env: Env) -> None:
    user = str(uuid4())
    old = env.sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=2))
    assert env.add(old, user=user, expires=NOW + timedelta(days=2)).returncode == 0
    env.sim.revoke_token(old)
    for _ in range(3):  # the first run marks it; cron must not go quiet on the next ones
        proc = env.run("refresh-token", "--all", "--expiring-within", "7d", "--json")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        (failed,) = json.loads(proc.stdout)["failed"]
        assert failed["user_id"] == user
        assert "the user must log in again" in failed["error"]


def test_refresh_token_dry_run_leaves_the_database_byte_identical(env: Env) -> None:
    due, expired, unknown, dead = (str(uuid4()) for _ in range(4))
    for user, days in ((due, 2), (expired, 1), (dead, 1)):
        token = env.sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=days))
        assert env.add(token, user=user, expires=NOW + timedelta(days=days)).returncode == 0
        if user == dead:
            env.sim.revoke_token(token)
    # expired since it was added (`accounts add` refuses an expiry in the past)
    past = (NOW - timedelta(days=1)).isoformat()
    env.sql("update user_tokens set expires_at = %s where cast(u_id as text) = %s", past, expired)
    # no --expires-at and no app credentials: stored with its expiry unknown
    add = env.run(
        *("accounts", "add", "--user", unknown, "--account-id", ACCOUNT, "--token-stdin"),
        stdin=env.sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=3)),
        app=False,
    )
    assert add.returncode == 0, add.stderr
    assert env.run("accounts", "list").returncode == 0  # let SQLite settle its WAL first
    files = {p.name: p.read_bytes() for p in env.tmp.glob("igsync.db*")}
    rows = env.sql("select * from user_tokens order by u_id")
    calls = len(env.sim.requests)
    proc = env.run("refresh-token", "--all", "--dry-run", "--json")
    assert proc.returncode == 1, proc.stderr  # the expired token would fail
    report = json.loads(proc.stdout)
    assert {w["user_id"] for w in report["would_refresh"]} == {due, dead}
    assert [f["user_id"] for f in report["failed"]] == [expired]
    assert [s["user_id"] for s in report["skipped"]] == [unknown]
    assert env.sql("select * from user_tokens order by u_id") == rows
    assert {p.name: p.read_bytes() for p in env.tmp.glob("igsync.db*")} == files
    assert len(env.sim.requests) == calls  # and it asked Meta nothing


# -- no secret anywhere --------------------------------------------------------------------------


@dataclass
class Outcome:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[..., Outcome]


def subprocess_runner(env: Env) -> Runner:
    def run(*args: str, stdin: str | None = None, app: bool = True) -> Outcome:
        proc = env.run(*args, stdin=stdin, app=app)
        return Outcome(args, proc.returncode, proc.stdout, proc.stderr)

    return run


def drive_every_path(env: Env, run: Runner) -> list[Outcome]:
    """Known tokens and the app secret through every command and failure path of issue 5
    (item 6): success, 190 on insights, a failed refresh, a 5xx and a timeout that outlast the
    retries, validation errors, -v, `accounts add` failures and `accounts remove`."""
    sim = env.sim
    user, other, third, fourth = (str(uuid4()) for _ in range(4))
    good = sim.issue_token(
        ACCOUNT, issued_at=NOW - timedelta(days=55), expires_at=NOW + timedelta(days=3)
    )
    dead = sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=2))
    late = sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=50))
    gone = sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=50))
    revoked = sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=50))
    sim.revoke_token(revoked)
    outcomes: list[Outcome] = []

    def step(
        expect: int, *args: str, stdin: str | None = None, app: bool = True, needle: str = ""
    ) -> None:
        outcome = run(*args, stdin=stdin, app=app)
        shown = outcome.stdout + outcome.stderr
        assert outcome.returncode == expect, (args, shown)
        assert needle in shown, (args, needle, shown)
        if "--json" in args and expect != 2:
            json.loads(outcome.stdout)  # exactly one JSON document
        outcomes.append(outcome)

    def add(who: str, *extra: str) -> list[str]:
        return ["accounts", "add", "--user", who, "--account-id", ACCOUNT, "--token-stdin", *extra]

    step(0, "db", "init")
    step(0, *add(user, "-vv"), stdin=good + "\n", needle="expires")
    step(0, *add(other, "--json"), stdin=dead)
    step(0, *add(third), stdin=late)
    step(0, *add(fourth), stdin=gone)
    # accounts add failing: a logged-out token, debug_token down past the retries, bad input
    step(2, *add(str(uuid4()), "-vv"), stdin=revoked, needle="not valid")
    sim.faults.append(Fault("server_error", times=1000, endpoint="debug_token"))
    step(2, *add(str(uuid4()), "-vv"), stdin=good, needle="debug_token")
    sim.faults.clear()
    step(2, *add(str(uuid4())), stdin="", needle="empty")
    step(2, *add(str(uuid4()), "--expires-at", "soon"), stdin=good, needle="--expires-at")
    step(2, "accounts", "add", "--user", user, "--account-id", ACCOUNT, good, needle="extra")
    step(0, "accounts", "list")
    step(0, "accounts", "list", "--json", "-vv")
    sim.revoke_token(dead)
    step(
        0,
        "refresh-token",
        "--all",
        "--dry-run",
        "-vv",
    )
    # a refresh failing past the retries, then one Meta rejects (190), then later runs
    sim.faults.append(Fault("server_error", times=1000, endpoint="oauth/access_token"))
    step(1, "refresh-token", "--all", "--json", "-vv", needle="refresh failed, old token kept")
    sim.faults.clear()
    step(1, "refresh-token", "--all", "-vv", needle="log in again")
    step(1, "refresh-token", "--all", "--json", needle="needs re-authorization")
    # insights answering 190: refreshed once and retried, or marked needs_reauth
    sim.faults.append(Fault("invalid_token", times=1))
    step(0, "fetch", "--user", user, "--json", "-vv", needle='"token_refreshed": true')
    sim.expire_token(late)
    step(1, "fetch", "--user", third, "--json", "-vv", needle="needs_reauth")
    sim.revoke_token(gone)
    step(1, "fetch", "--user", fourth, "-vv", app=False, needle="needs_reauth")
    # every account at once: the good one, and the ones now needing re-authorization
    step(1, "sync-all", "--json", "-vv", needle="needs re-authorization")
    step(1, "sync-all", "--ndjson", "-vv", needle='"summary"')
    # a 5xx and a timeout that outlast the retries reach the output
    sim.faults.append(Fault("server_error", times=1000, metric="reach"))
    step(1, "fetch", "--user", user, "--json", "-vv", needle="reach")
    sim.faults.clear()
    sim.faults.append(Fault("timeout", times=1000, metric="reach", delay=10.0))
    step(1, "fetch", "--user", user, "-vv", needle="timed out")
    sim.faults.clear()
    # validation errors
    step(2, "fetch", "--user", user, "--days", "0")
    step(2, "fetch", "--user", "not-a-uuid")
    step(2, "refresh-token", "--all", "--expiring-within", "²d")
    step(2, "refresh-token", "--all", "--expiring-within", "99999999999d")
    # remove: one user's account, then nobody's
    step(0, "accounts", "remove", "--user", other, "--json")
    step(2, "accounts", "remove", "--user", str(uuid4()), needle="no Instagram account")
    return outcomes


def secrets_of(env: Env) -> list[str]:
    """Every token the simulator ever issued (refreshed ones included) and the app secret."""
    secrets = [*env.sim.tokens, APP_SECRET]
    assert len(secrets) > 6
    return secrets


def assert_no_secret_anywhere(env: Env, outcomes: list[Outcome]) -> None:
    secrets = secrets_of(env)
    for outcome in outcomes:
        for secret in secrets:
            assert secret not in outcome.stdout, (outcome.args, "stdout")
            assert secret not in outcome.stderr, (outcome.args, "stderr")
    tables = env.table_texts()
    assert tables["user_tokens"]
    assert tables["instagram_sync_logs"]  # fetch failures were logged, and checked here
    for table, rows in tables.items():
        for row in rows:
            assert not [s for s in secrets if s in row], (table, row)
    # the tokens do live in user_tokens.access_token, which is why it alone is exempt
    stored = {t for (t,) in env.sql("select access_token from user_tokens")}
    assert stored <= set(secrets)


@pytest.fixture(params=["sqlite", "postgres"])
def leak_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    postgres = (
        request.getfixturevalue("fresh_postgres_url") if request.param == "postgres" else None
    )
    sim = Simulator(
        [SimAccount(ACCOUNT, tz="America/Los_Angeles")], strict_tokens=True, app_secret=APP_SECRET
    )
    with serve_in_thread(sim) as served:
        yield Env(sim, served, tmp_path, postgres, http_timeout="0.5", command=FAST_IGSYNC)


def test_no_secret_reaches_any_output_or_table(leak_env: Env) -> None:
    """As subprocesses, on SQLite and PostgreSQL: stdout, stderr, JSON and every table."""
    outcomes = drive_every_path(leak_env, subprocess_runner(leak_env))
    assert_no_secret_anywhere(leak_env, outcomes)


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The CLI takes over the igsync and stamina loggers; give them back afterwards."""
    saved = {
        name: (logger.handlers[:], logger.propagate, logger.level)
        for name in ("igsync", "stamina")
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


def test_no_secret_reaches_a_log_record(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    logging_restored: None,
) -> None:
    """The same paths in-process, with every logger (httpx and httpcore too) at DEBUG: no log
    record holds a secret, whichever handler an embedding program would give it."""
    from igsync.cli import main
    from igsync.redact import RedactingFilter

    env.http_timeout = "0.5"
    caplog.set_level(logging.DEBUG)
    # The CLI stops igsync's and stamina's records from propagating to the root, where caplog
    # listens: hand caplog every record at the point any logger dispatches it.
    dispatch = logging.Logger.callHandlers

    def spy(self: logging.Logger, record: logging.LogRecord) -> None:
        caplog.handler.handle(record)
        dispatch(self, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", spy)
    # Only igsync's one guard on httpx (guard_logger): no other filter may hide a leak here.
    httpx_logger = logging.getLogger("httpx")
    guards = [f for f in httpx_logger.filters if isinstance(f, RedactingFilter)]
    monkeypatch.setattr(httpx_logger, "filters", guards)
    monkeypatch.chdir(env.tmp)
    for name in list(os.environ):
        if name.startswith(("IG_", "IGSYNC_", "SUPABASE_")):
            monkeypatch.delenv(name)

    def run(*args: str, stdin: str | None = None, app: bool = True) -> Outcome:
        for name in ("IG_APP_ID", "IG_APP_SECRET"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.environ(app).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "argv", ["igsync", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        captured = capsys.readouterr()
        return Outcome(args, code, captured.out, captured.err)

    outcomes = drive_every_path(env, run)
    assert_no_secret_anywhere(env, outcomes)
    records = caplog.records
    names = {r.name.split(".")[0] for r in records}
    assert {"httpx", "httpcore", "igsync"} <= names, names
    # scheduled retries are igsync's own sentences (igsync.graph._retry_log), not stamina's
    assert "igsync.retry" in {r.name for r in records}
    secrets = secrets_of(env)
    for record in records:
        text = record.getMessage() + repr(vars(record))
        assert not [s for s in secrets if s in text], (record.name, record.getMessage())


def test_bad_token_rows_are_listed_invalid_and_fail_refresh_alone(env: Env) -> None:
    good_user, bad_user = str(uuid4()), str(uuid4())
    token = env.sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=2))
    assert env.add(token, user=good_user, expires=NOW + timedelta(days=2)).returncode == 0
    for i, bad in enumerate(BAD_ROWS):
        for statement in insert_sql(bad, u_id=bad_user, account_id=f"90000{i}"):
            env.sql(statement)
    secrets = [b.secret for b in BAD_ROWS if b.secret.strip()] + [token]

    listed = env.run("accounts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    infos = json.loads(listed.stdout)
    assert [i["status"] for i in infos].count("invalid") == len(BAD_ROWS)
    (good,) = [i for i in infos if i["status"] != "invalid"]
    assert good["user_id"] == good_user
    problems = [i["problem"] for i in infos if i["status"] == "invalid"]
    assert all(any(b.message in p for p in problems) for b in BAD_ROWS)
    table = env.run("accounts", "list")
    assert table.returncode == 0, table.stderr
    assert "invalid" in table.stdout
    assert "Traceback" not in table.stderr

    refreshed = env.run("refresh-token", "--all", "--json")
    assert refreshed.returncode == 1, refreshed.stderr
    report = json.loads(refreshed.stdout)
    assert [r["user_id"] for r in report["refreshed"]] == [good_user]
    errors = [f["error"] for f in report["failed"]]
    assert len(errors) == len(BAD_ROWS)
    assert all(any(b.message in e for e in errors) for b in BAD_ROWS)
    human = env.run("refresh-token", "--all")
    for proc in (listed, table, refreshed, human):
        assert "Traceback" not in proc.stderr
        assert not [s for s in secrets if s in proc.stdout or s in proc.stderr]


def test_fetch_of_a_bad_token_row_is_one_line_naming_the_column(env: Env) -> None:
    user = str(uuid4())
    token = env.sim.issue_token(ACCOUNT, expires_at=NOW + timedelta(days=50))
    assert env.add(token, user=user).returncode == 0
    env.sql("update user_tokens set status = 'banana'")
    proc = env.run("fetch", "--user", user, "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().endswith(
        "status 'banana' is not one of ok, expiring, expired, needs_reauth; fix the row"
    )
    assert len(proc.stderr.strip().splitlines()) == 1
    assert token not in proc.stderr
    assert not [r for r in env.sim.requests if "insights" in r.path]
