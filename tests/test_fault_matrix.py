"""Issue 11, item 6: every Graph fault igsync can meet, one row each, with its exact outcome.

Each row injects one fault (the simulator's `Fault`, bodies as Meta sends them: see
src/igsync/simulator/_faults.py and _errors.py) into one of three accounts and runs `sync_all`
with the real GraphClient and a real SQLite store, in-process through the simulator's ASGI
app, or over loopback HTTP where only a socket can fail that way (a read timeout, a connection
cut mid-answer), or batched (a `null` batch item). Each row asserts:

* the account's outcome: recovered (every row of a clean run, sync log `ok`), or reported
  once per metric it cost (the error lines, exactly), with the rows of the other metrics kept;
* how often the fault was answered, which tells the error kind by its handling: throttled and
  transient faults are retried up to the policy's 5 attempts (conftest keeps stamina's
  backoff instant), invalid and permission faults never (each grouped request is split per
  metric once), 100/33 once, a refused token (190) ends the account at once and marks it
  `needs_reauth` (or keeps it, when the host cannot parse it);
* the FetchResult's `success` and the sync-log status;
* the other two accounts: every row of a clean run, `ok`;
* no token and no app secret in the report, the sync logs or igsync's log records (DEBUG).

Two rows run the installed `igsync sync-all` as a subprocess against the loopback simulator,
to prove the exit code and the no-secret rule where a user sees them.

The window is fixed (NOW), so a clean run fetches 12 rows per account: reach and
follower_count (time_series, one request) and profile_views and accounts_engaged (total_value,
one request per day, 3 days). Faults hit the account's requests that ask for profile_views.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from uuid import uuid4

import pytest
from pydantic import SecretStr

from igsync.catalogue import DEFAULT_METRICS
from igsync.graph import GraphClient
from igsync.models import InsightRow, SyncReport, UserToken
from igsync.simulator import Fault, FaultKind, SimAccount, Simulator, serve_in_thread
from igsync.store.sqlite import SQLiteStore
from igsync.sync_all import sync_all
from igsync.window import plan_window
from test_cli_e2e import IGSYNC

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNTS = ("17841400000000001", "17841400000000002", "17841400000000003")
FAULTED = ACCOUNTS[0]
METRIC = "profile_views"  # total_value: 3 requests (one per day), grouped with accounts_engaged
APP_ID, APP_SECRET = "sim-app-id", "sim-app-secret-Kq93TzW"
#: the retry policy's attempts (RetryPolicy.attempts; conftest caps stamina's test mode to it)
ATTEMPTS = 5
ONCE, ALWAYS = 1, 1000

Key = tuple[str, str, datetime]  # account_id, metric, end_time
Outcome = Literal["recovered", "retried_then_failed", "failed", "needs_reauth", "token_kept"]


@dataclass(frozen=True)
class Row:
    """One fault, how often it strikes, and what must come of it."""

    id: str
    kind: FaultKind
    times: int
    outcome: Outcome
    #: how many requests the fault answered
    spent: int
    #: what each error line of the faulted account says after "<metric>: " (or "token: ")
    says: str = ""
    via: Literal["in-process", "loopback", "batch"] = "in-process"
    #: None: the fault hits every request of the account (a token fault ends it at the first)
    metric: str | None = METRIC


# A retryable fault that strikes once is retried and recovered; one that strikes always
# fails the 3 grouped total_value requests after ATTEMPTS attempts each: both metrics of the
# group are reported, once each, and the time_series rows are kept.
RETRIED: list[tuple[str, FaultKind, str, Literal["in-process", "loopback", "batch"]]] = [
    ("4 app throttle", "throttle", "(#4) Application request limit reached [code 4]", "in-process"),
    (
        "17 user throttle",
        "user_throttle",
        "(#17) User request limit reached [code 17]",
        "in-process",
    ),
    (
        "32 page throttle",
        "page_throttle",
        "(#32) Page request limit reached [code 32]",
        "in-process",
    ),
    ("613 rate limit", "rate_limit_613", "exceeded the rate limit. [code 613]", "in-process"),
    ("80002 ig throttle", "throttle_ig", "too many calls to this Instagram account", "in-process"),
    (
        "1 unknown error 500",
        "server_error",
        "An unknown error has occurred. [code 1]",
        "in-process",
    ),
    ("2 transient 500", "transient", "Please retry your request later. [code 2]", "in-process"),
    ("502 html", "bad_gateway", "HTTP 502 from the Graph API", "in-process"),
    ("503 html", "service_unavailable", "HTTP 503 from the Graph API", "in-process"),
    ("200 html page", "html_page", "a body that is not JSON", "in-process"),
    ("truncated json", "truncated_json", "a body that is not JSON", "in-process"),
    ("connection reset", "connection_reset", "could not reach the Graph API", "loopback"),
    ("null batch item", "batch_timeout", "Meta timed out this batch item", "batch"),
    ("4 app throttle batched", "throttle", "[code 4]", "batch"),
]
# Permanent for the metric: never retried; a grouped request that fails so is asked again
# one metric at a time, so only the metric at fault is reported, and its partner is kept.
PERMANENT: list[tuple[str, FaultKind, str, int]] = [
    ("100 unknown metric", "unknown_metric", "retired by Meta: not among the metrics", 6),
    ("100 metric_type", "metric_type_required", "should be specified with parameter", 6),
    ("10 no permission", "no_permission", "(#10) Application does not have permission", 6),
    # §3: 100/33 is retried once, then fails that item: 2 grouped + 2 alone, per day
    (
        "100/33 object missing",
        "object_missing",
        "does not exist, cannot be loaded",
        12,
    ),
]
# A refused token ends the account at its first request (the time_series one).
TOKEN: list[tuple[str, FaultKind, str, Outcome]] = [
    ("190/458 app removed", "app_removed", "has not authorized application", "needs_reauth"),
    ("190/460 password changed", "password_changed", "changed their password", "needs_reauth"),
    ("190/463 expired", "expired_token", "Session has expired on", "needs_reauth"),
    ("190/467 logged out", "logged_out", "because the user logged out", "needs_reauth"),
    ("190 invalid", "invalid_token", "Invalid OAuth access token. [code 190]", "needs_reauth"),
    (
        "190 cannot parse",
        "unparseable_token",
        "cannot parse this facebook_login token",
        "token_kept",
    ),
]

ROWS: list[Row] = [
    *(Row(f"{name} once", kind, ONCE, "recovered", 1, via=via) for name, kind, _, via in RETRIED),
    *(
        Row(f"{name} always", kind, ALWAYS, "retried_then_failed", 3 * ATTEMPTS, says, via)
        for name, kind, says, via in RETRIED
    ),
    Row("read timeout once", "timeout", ONCE, "recovered", 1, via="loopback"),
    *(Row(f"{name} once", kind, ONCE, "recovered", 1) for name, kind, _, _ in PERMANENT),
    *(
        Row(f"{name} always", kind, ALWAYS, "failed", spent, says)
        for name, kind, says, spent in PERMANENT
    ),
    *(Row(name, kind, ONCE, outcome, 1, says, metric=None) for name, kind, says, outcome in TOKEN),
    Row(
        "190/463 expired batched",
        "expired_token",
        ONCE,
        "needs_reauth",
        1,
        "Session has expired",
        via="batch",
        metric=None,
    ),
]


def sim_of() -> Simulator:
    accounts = [SimAccount(a, tz="America/Los_Angeles") for a in ACCOUNTS]
    return Simulator(accounts, now=lambda: NOW, app_id=APP_ID, app_secret=APP_SECRET)


@contextmanager
def graph_for(sim: Simulator, via: str) -> Iterator[GraphClient]:
    """A GraphClient reaching `sim` in-process, batched in-process, or over loopback HTTP."""
    if via == "loopback":
        with serve_in_thread(sim) as served:
            # a client timeout well under the `timeout` fault's hold
            yield GraphClient(
                base_url=served.graph_url,
                instagram_url=served.instagram_url,
                version="v27.0",
                timeout=0.5,
            )
        return
    batch = {"batch": True, "app_id": APP_ID, "app_secret": APP_SECRET} if via == "batch" else {}
    yield GraphClient(
        base_url="http://sim",
        version="v27.0",
        transport=sim.transport(),
        **batch,  # type: ignore[arg-type]
    )


async def run(
    sim: Simulator, db: Path, via: str = "in-process"
) -> tuple[SyncReport, list[InsightRow], dict[str, str], list[dict[str, object]], list[str]]:
    """One sync_all over ACCOUNTS: the report, the stored rows, each account's token status,
    the sync logs (account_id, status, errors, …) and the tokens issued."""
    tokens = [sim.issue_token(a) for a in ACCOUNTS]
    async with SQLiteStore(db) as store:
        await store.init_schema()
        for account, token in zip(ACCOUNTS, tokens, strict=True):
            row = UserToken(u_id=uuid4(), access_token=SecretStr(token), account_id=account)
            await store.save_token(row)
        with graph_for(sim, via) as graph:
            async with graph:
                report = await sync_all(
                    graph, store, metrics=DEFAULT_METRICS, plan=plan_window(NOW), now=NOW
                )
        rows = await store.read_insights()
        status = {str(t.account_id): t.status for t in await store.list_tokens()}
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute("select * from instagram_sync_logs order by account_id")
        logs = [dict(log) for log in found]
    return report, rows, status, logs, tokens


def keyed(rows: list[InsightRow]) -> dict[Key, int | None]:
    keys = [(r.account_id, r.metric, r.end_time) for r in rows]
    assert len(keys) == len(set(keys)), "a row was stored twice"
    return {(r.account_id, r.metric, r.end_time): r.value for r in rows}


_clean: dict[Key, int | None] = {}


async def clean_rows(tmp_path: Path) -> dict[Key, int | None]:
    """What a run without faults stores (the same for every run: the window is fixed)."""
    if not _clean:
        report, rows, *_ = await run(sim_of(), tmp_path / "clean.db")
        assert report.success
        _clean.update(keyed(rows))
        assert len(_clean) == 12 * len(ACCOUNTS)
    return _clean


def of(rows: dict[Key, int | None], account: str, *metrics: str) -> dict[Key, int | None]:
    return {k: v for k, v in rows.items() if k[0] == account and (not metrics or k[1] in metrics)}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
async def test_fault(row: Row, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="igsync")
    clean = await clean_rows(tmp_path)
    sim = sim_of()
    fault = Fault(row.kind, times=row.times, metric=row.metric, account_id=FAULTED, delay=5.0)
    sim.faults.append(fault)

    report, rows, status, logs, tokens = await run(sim, tmp_path / "igsync.db", row.via)

    assert row.times - fault.times == row.spent, "how often the fault was answered"
    stored = keyed(rows)
    for other in ACCOUNTS[1:]:  # unaffected
        assert of(stored, other) == of(clean, other)
        assert status[other] == "ok"
    result = next(r for r in report.results if r.account_id == FAULTED)
    assert [r.success for r in report.results if r.account_id != FAULTED] == [True, True]
    log_status = {log["account_id"]: log["status"] for log in logs}
    assert set(log_status) == set(ACCOUNTS)
    assert [log_status[a] for a in ACCOUNTS[1:]] == ["ok", "ok"]
    assert report.accounts_ok == (3 if row.outcome == "recovered" else 2)

    mine = of(stored, FAULTED)
    if row.outcome == "recovered":
        assert result.success
        assert result.errors == []
        assert mine == of(clean, FAULTED)
        assert log_status[FAULTED] == "ok"
    elif row.outcome == "retried_then_failed":
        # both metrics of the grouped request, once each; the time_series rows kept
        reason = result.errors[0].removeprefix("profile_views: ")
        assert result.errors == [f"profile_views: {reason}", f"accounts_engaged: {reason}"]
        assert row.says in result.errors[0]
        assert mine == of(clean, FAULTED, "reach", "follower_count")
        assert not result.success
        assert log_status[FAULTED] == "partial"
    elif row.outcome == "failed":
        assert len(result.errors) == 1
        assert result.errors[0].startswith(f"{METRIC}: ")
        assert row.says in result.errors[0]
        assert mine == {k: v for k, v in of(clean, FAULTED).items() if k[1] != METRIC}
        assert not result.success
        assert log_status[FAULTED] == "partial"
    else:
        assert len(result.errors) == 1
        assert result.errors[0].startswith("token: ")
        assert row.says in result.errors[0]
        assert mine == {}
        assert not result.success
        assert log_status[FAULTED] == "failed"
        assert status[FAULTED] == ("needs_reauth" if row.outcome == "needs_reauth" else "ok")
        if row.outcome == "needs_reauth":
            assert "marked needs_reauth" in result.errors[0]
    if row.outcome != "recovered":
        assert status[FAULTED] in ("ok", "needs_reauth")

    outputs = [report.model_dump_json(), repr(logs), caplog.text]
    for secret in [*tokens, APP_SECRET]:
        assert not any(secret in text for text in outputs), "a secret reached the output"


async def test_empty_data_is_no_data_not_zero_and_not_a_failure(tmp_path: Path) -> None:
    """{"data": []} for one day's total_value request: stored as NULL for that day (no data,
    GRAPH_API §1), never as 0, and the account is not failed."""
    clean = await clean_rows(tmp_path)
    sim = sim_of()
    fault = Fault("empty_data", metric=METRIC, account_id=FAULTED)
    sim.faults.append(fault)
    report, rows, _, logs, _ = await run(sim, tmp_path / "igsync.db")
    assert fault.times == 0
    assert report.success
    assert report.accounts_ok == 3
    stored = keyed(rows)
    assert set(stored) == set(clean)
    changed = {k for k in clean if stored[k] != clean[k]}
    assert {(a, m) for a, m, _ in changed} == {
        (FAULTED, "profile_views"),
        (FAULTED, "accounts_engaged"),
    }
    assert len({t for *_, t in changed}) == 1  # one day
    assert all(stored[k] is None for k in changed)
    assert {log["status"] for log in logs} == {"ok"}


# -- the installed CLI, as a user runs it ---------------------------------------------------


def cli_env(served_graph: str, served_instagram: str, db: Path, home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "NO_COLOR": "1",
        "IGSYNC_GRAPH_URL": served_graph,
        "IGSYNC_INSTAGRAM_URL": served_instagram,
        "IGSYNC_DATABASE_URL": f"sqlite:///{db}",
        "IG_APP_ID": APP_ID,
        "IG_APP_SECRET": APP_SECRET,
        "IGSYNC_HTTP_TIMEOUT": "5",
    }


def seed_tokens(sim: Simulator, db: Path) -> list[str]:
    tokens = [sim.issue_token(a) for a in ACCOUNTS]

    async def save() -> None:
        async with SQLiteStore(db) as store:
            await store.init_schema()
            for account, token in zip(ACCOUNTS, tokens, strict=True):
                await store.save_token(
                    UserToken(u_id=uuid4(), access_token=SecretStr(token), account_id=account)
                )

    asyncio.run(save())
    return tokens


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("kind", "exit_code", "faulted_log"),
    [("throttle", 0, "ok"), ("app_removed", 1, "failed")],
    ids=["4 throttle once: retried, exit 0", "190/458: reported, exit 1"],
)
def test_sync_all_cli(kind: FaultKind, exit_code: int, faulted_log: str, tmp_path: Path) -> None:
    sim = Simulator(
        [SimAccount(a, tz="America/Los_Angeles") for a in ACCOUNTS],
        app_id=APP_ID,
        app_secret=APP_SECRET,
    )
    db = tmp_path / "igsync.db"
    tokens = seed_tokens(sim, db)
    fault = Fault(kind, account_id=FAULTED)
    sim.faults.append(fault)
    with serve_in_thread(sim) as served:
        proc = subprocess.run(
            [IGSYNC, "-vv", "sync-all", "--json"],
            capture_output=True,
            text=True,
            env=cli_env(served.graph_url, served.instagram_url, db, tmp_path),
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
    assert fault.times == 0
    assert proc.returncode == exit_code, proc.stderr
    report = json.loads(proc.stdout)
    assert report["accounts_ok"] == (3 if exit_code == 0 else 2)
    with closing(sqlite3.connect(db)) as conn:
        logs = dict(conn.execute("select account_id, status from instagram_sync_logs"))
        dump = "\n".join(str(r) for r in conn.execute("select * from instagram_sync_logs"))
    assert logs == {FAULTED: faulted_log, ACCOUNTS[1]: "ok", ACCOUNTS[2]: "ok"}
    assert "DEBUG" in proc.stderr  # -vv: the most igsync ever logs was searched
    for secret in [*tokens, APP_SECRET]:
        for text in (proc.stdout, proc.stderr, dump):
            assert secret not in text, "a secret reached the output"


async def test_a_refused_batch_of_one_does_not_pace_every_later_call() -> None:
    """A throttle (code 4) carries x-app-usage at 100 %. Sent alone, the refusal never set
    the app's pace; sent as a batch of one (a token's lone call when batching without app
    credentials) it did, so every later call of every account paused 30 s on top of the
    backoff (found by benchmarks/soak.py: one throttled account made a run take 112 s)."""
    sim = sim_of()
    sim.faults.append(Fault("throttle", account_id=FAULTED))
    token = sim.issue_token(FAULTED)
    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=sim.transport(), batch=True
    ) as graph:
        items = await graph.get_insights(
            FAULTED,
            token,
            metrics=["reach"],
            metric_type="time_series",
            since=datetime(2026, 11, 20, tzinfo=UTC),
            until=datetime(2026, 11, 22, tzinfo=UTC),
        )
    assert [i.name for i in items] == ["reach"]
    assert [r.status for r in sim.requests] == [400, 200]  # refused, then retried
    assert graph.paced_s == 0
    assert graph.last_usage is None
