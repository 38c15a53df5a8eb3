"""What an operator reads on stderr (issue 12, item 7): the counted progress bar, cron's one
summary line, retries and throttle waits as sentences, `--log-format json`, `-vv` debug lines,
lines never padded nor wrapped, and no secret in any of it.

The CLI runs in-process against the simulator served on loopback; the pieces that need a
terminal (the bar, rich's live display) are driven with a console forced to be one.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import NAMESPACE_URL, uuid4, uuid5

import pytest
from pydantic import SecretStr
from rich.console import Console
from stamina.instrumentation import RetryDetails

from cli_runner import run_cli
from igsync.catalogue import DEFAULT_METRICS
from igsync.cli._logs import LineHandler, TextFormatter, json_formatter
from igsync.cli._progress import SyncProgress, sync_bar
from igsync.cli._render import ErrSink, Output, collapse_errors
from igsync.errors import ErrorKind, GraphError
from igsync.graph import GraphClient
from igsync.graph._retry_log import retried_call, retry_sentence
from igsync.models import FetchResult, SyncReport, UserToken
from igsync.redact import register_secret
from igsync.simulator import Fault, SimAccount, Simulator, serve_in_thread
from igsync.store.sqlite import SQLiteStore
from igsync.sync import summarize
from igsync.sync_all import Shard, sync_all
from igsync.window import plan_window

LA, KOLKATA, LONDON = "17841400000000001", "17841400000000002", "17841400000000003"
SUMMARY = re.compile(
    r"igsync sync-all: (\d+)/(\d+) accounts ok, (\d+) failed, (\d+) rows written and verified, "
    r"(\d+) errors, in \d+\.\d\d s \(\d+\.\d accounts/s\)"
)
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@dataclass
class Env:
    sim: Simulator
    db: Path

    def seed(self, *accounts: str) -> dict[str, str]:
        """One user_tokens row per account; account id -> its token."""
        tokens = {a: f"EAAJ-output-test-secret-{a}-Zq81kLmN0pQr" for a in accounts}

        async def save() -> None:
            async with SQLiteStore(self.db) as store:
                await store.init_schema()
                for account, token in tokens.items():
                    row = UserToken(u_id=uuid4(), access_token=SecretStr(token), account_id=account)
                    await store.save_token(row)

        asyncio.run(save())
        return tokens

    def sync_logs(self) -> list[tuple[str, str]]:
        with closing(sqlite3.connect(self.db)) as conn:
            return conn.execute(
                "select account_id, status from instagram_sync_logs order by account_id"
            ).fetchall()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Env]:
    sim = Simulator([SimAccount(a, tz="America/Los_Angeles") for a in (LA, KOLKATA, LONDON)])
    with serve_in_thread(sim) as served:
        monkeypatch.chdir(tmp_path)  # no stray .env
        for name in ("IG_APP_ID", "IG_APP_SECRET", "IGSYNC_METRICS", "SUPABASE_URL"):
            monkeypatch.delenv(name, raising=False)
        db = tmp_path / "igsync.db"
        for name, value in {
            "IGSYNC_GRAPH_URL": served.graph_url,
            "IGSYNC_INSTAGRAM_URL": served.instagram_url,
            "IGSYNC_DATABASE_URL": f"sqlite:///{db}",
            "IGSYNC_HTTP_TIMEOUT": "5",
            "NO_COLOR": "1",
        }.items():
            monkeypatch.setenv(name, value)
        yield Env(sim, db)


# --- cron: one summary line -------------------------------------------------------------


def test_a_cron_run_leaves_one_summary_line_on_stderr(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, KOLKATA)
    code, out, err = run_cli(monkeypatch, capsys, "sync-all", "--json")
    assert code == 0, err
    assert json.loads(out)["accounts_ok"] == 2  # stdout is still the one JSON document
    (line,) = err.splitlines()
    match = SUMMARY.fullmatch(line)
    assert match is not None, line
    assert match.groups() == ("2", "2", "0", "24", "0")


def test_the_summary_counts_failures_and_quiet_silences_it(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, KOLKATA)
    env.sim.accounts[KOLKATA] = SimAccount(
        KOLKATA, tz="Asia/Kolkata", denied_metrics=frozenset({"profile_views"})
    )
    code, _, err = run_cli(monkeypatch, capsys, "sync-all", "--ndjson")
    assert code == 1
    match = SUMMARY.fullmatch(err.strip())
    assert match is not None, err
    assert match.groups()[:3] == ("1", "2", "1")
    code, out, err = run_cli(monkeypatch, capsys, "-q", "sync-all", "--ndjson")
    assert code == 1
    assert err == ""
    assert len(out.splitlines()) == 3


def test_on_a_terminal_the_bar_counts_and_the_line_stays_only_without_the_table(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: stdout and stderr are terminals
    monkeypatch.setenv("COLUMNS", "200")
    env.seed(LA, KOLKATA)
    code, out, err = run_cli(monkeypatch, capsys, "sync-all", "--json")
    assert code == 0
    assert json.loads(out)["accounts_ok"] == 2
    assert "2/2 accounts" in err  # the bar's last frame, before it is cleared
    assert len(SUMMARY.findall(err)) == 1  # --json: the table is not on the terminal
    code, out, err = run_cli(monkeypatch, capsys, "sync-all")
    assert code == 0
    assert "2/2 accounts ok" in out
    assert not SUMMARY.search(err)  # the report's footer says it already


def test_log_format_json_makes_every_stderr_line_one_json_object(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = env.seed(LA, KOLKATA)
    env.sim.faults.append(Fault("throttle", account_id=LA))
    code, _, err = run_cli(
        monkeypatch, capsys, "--log-format", "json", "sync-all", "--ndjson", "--no-batch"
    )
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    (retry,) = [line for line in lines if line.get("event") == "retry_scheduled"]
    assert retry["level"] == "WARNING"
    assert retry["code"] == 4
    assert retry["call"] == f"Graph call {LA}/insights"
    assert "throttled by Meta (code 4)" in retry["message"]
    summary = lines[-1]
    assert SUMMARY.fullmatch(summary["message"])
    assert (summary["accounts_total"], summary["accounts_ok"]) == (2, 2)
    assert datetime.fromisoformat(summary["time"]).tzinfo is not None
    for token in tokens.values():
        assert token not in err


# --- retries, -v and -vv ----------------------------------------------------------------


def test_a_throttled_call_is_one_plain_sentence_with_v(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12: retries appeared only as `WARNING stamina.retry_scheduled`."""
    env.seed(LA)
    env.sim.faults.append(Fault("throttle", account_id=LA))
    code, _, err = run_cli(monkeypatch, capsys, "-v", "sync-all", "--json", "--no-batch")
    assert code == 0, err
    assert "stamina" not in err
    (line,) = [line for line in err.splitlines() if "throttled" in line]
    assert re.fullmatch(
        rf"{TIME} WARNING Graph call {LA}/insights throttled by Meta \(code 4\), "
        r"waiting \d+\.\d s \(retry 1 of 4\)",
        line,
    ), line
    assert " DEBUG " not in err


def test_vv_prints_debug_lines_with_their_logger(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA)
    env.sim.faults.append(Fault("throttle", account_id=LA))
    code, _, err = run_cli(monkeypatch, capsys, "sync-all", "-vv", "--json", "--no-batch")
    assert code == 0, err
    debug = [line for line in err.splitlines() if re.match(rf"{TIME} DEBUG \[igsync\.", line)]
    assert any("graph error on" in line for line in debug), err


def test_without_v_or_a_terminal_no_log_line_reaches_cron(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA)
    env.sim.faults.append(Fault("throttle", account_id=LA))
    code, _, err = run_cli(monkeypatch, capsys, "sync-all", "--json", "--no-batch")
    assert code == 0
    assert len(err.splitlines()) == 1  # the summary alone
    assert SUMMARY.fullmatch(err.strip())


def test_a_library_s_log_record_is_one_line_or_nothing_never_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """psycopg's pool and procrastinate log on their own: through igsync's handler, a record
    with a traceback is one line (below -vv), and off a terminal without -v nothing at all,
    instead of Python's last-resort handler printing it whatever -q said."""
    from igsync.cli._logs import LOGGERS, setup_logging

    saved = [(lg, lg.handlers[:], lg.propagate, lg.level) for lg in map(logging.getLogger, LOGGERS)]
    buffer = io.StringIO()
    try:
        setup_logging(ErrSink(Console(file=buffer)), verbose=0, log_format="text")
        try:
            raise ConnectionError("server closed the connection")
        except ConnectionError:
            logging.getLogger("psycopg.pool").warning(
                "discarding %s", "a connection", exc_info=True
            )
        setup_logging(None, verbose=0, log_format="text")  # cron: no terminal, no -v
        logging.getLogger("procrastinate.worker").error("could not fetch a job")
    finally:
        for logger, handlers, propagate, level in saved:
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.setLevel(level)
    (line,) = buffer.getvalue().splitlines()
    assert re.fullmatch(
        rf"{TIME} WARNING discarding a connection: ConnectionError: server closed the connection",
        line,
    )
    assert capsys.readouterr().err == ""


def test_retry_sentences_say_what_why_and_how_long() -> None:
    throttled = GraphError(
        "(#4) Application request limit reached",
        kind=ErrorKind.THROTTLED,
        code=4,
        retry_after=60.0,
    )
    details = RetryDetails("<context block>", (), {}, 1, 60.0, 0.0, throttled)
    with retried_call(f"/v27.0/{LA}/insights", attempts=5):
        message, fields = retry_sentence(details)
    assert message == (
        f"Graph call {LA}/insights throttled by Meta (code 4), waiting 60 s as Meta asked "
        "(retry 1 of 4)"
    )
    assert fields["wait_s"] == 60.0
    transient = GraphError("the Graph API is down", kind=ErrorKind.TRANSIENT, http_status=503)
    with retried_call("/v27.0/oauth/access_token", attempts=3):
        message, _ = retry_sentence(RetryDetails("x", (), {}, 2, 1.25, 1.0, transient))
    assert message == (
        "Graph call oauth/access_token failed for now (HTTP 503: the Graph API is down), "
        "waiting 1.2 s (retry 2 of 2)"
    )
    # outside a Graph call (a Supabase write, say): still a sentence
    message, _ = retry_sentence(RetryDetails("x", (), {}, 1, 0.5, 0.0, ConnectionError("reset")))
    assert message == "a request failed for now (ConnectionError: reset), waiting 0.5 s (retry 1)"


# --- lines: never padded, never wrapped, redacted -----------------------------------------


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("igsync.graph", logging.WARNING, __file__, 1, message, args, None)


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


def test_text_lines_are_whole_unpadded_and_redacted() -> None:
    secret = "EAAJ-a-log-line-secret-Zq81kLmN0pQrStUv"
    register_secret(secret)
    sink = _Lines()
    handler = LineHandler(sink, TextFormatter(with_name=False))  # type: ignore[arg-type]
    # dots: secrets other tests registered in this process (runs of x, say) never match them
    handler.handle(_record("token %s was\nrefused by Meta " + "." * 200, secret))
    (line,) = sink.lines
    assert re.fullmatch(rf"{TIME} WARNING token \*\*\* was refused by Meta \.{{200}}", line)


def test_json_lines_are_one_object_each_and_redacted() -> None:
    secret = "EAAJ-a-json-line-secret-Zq81kLmN0pQrStUv"
    register_secret(secret)
    sink = _Lines()
    handler = LineHandler(sink, json_formatter())  # type: ignore[arg-type]
    record = _record("token %s\nrefused", secret)
    record.wait_s = 60.0
    handler.handle(record)
    (line,) = sink.lines
    data = json.loads(line)
    assert secret not in line
    assert data["message"] == "token ***\nrefused"
    assert (data["level"], data["logger"], data["wait_s"]) == ("WARNING", "igsync.graph", 60.0)


def test_a_long_line_on_a_terminal_is_not_wrapped() -> None:
    """Issue 12: log lines were padded and wrapped at 80 columns (rich's log handler)."""
    file = io.StringIO()
    sink = ErrSink(Console(file=file, force_terminal=True, width=40))
    text = "2026-11-30T15:40:01Z WARNING " + "word " * 30 + "[code 4]"
    sink.line(text)
    assert file.getvalue() == text + "\n"


# --- the counted progress bar -----------------------------------------------------------


def _result(account: str, *, ok: bool, rows: int) -> FetchResult:
    return FetchResult(
        success=ok,
        total_inserted=rows,
        total_errors=0 if ok else 1,
        metrics_inserted={},
        errors=[] if ok else ["reach: refused"],
        account_id=account,
        user_id=str(uuid4()),
        duration_s=0.5,
    )


def test_the_bar_counts_done_and_failed_of_n_rows_rate_and_eta() -> None:
    file = io.StringIO()
    console = Console(file=file, force_terminal=True, width=200, color_system=None)
    with sync_bar(console, "syncing") as bar:
        progress = SyncProgress(bar)
        progress.queued(2, False)
        bar[0].refresh()
        assert "0/2+ accounts" in file.getvalue()  # more pages of tokens may come
        progress.queued(3, True)
        progress.finished(_result(LA, ok=True, rows=12))
        progress.finished(_result(KOLKATA, ok=False, rows=9))
        bar[0].refresh()
        shown = file.getvalue().rsplit("\r", 1)[-1]
    assert "2/3 accounts" in shown
    assert "1 failed" in shown
    assert "21 rows" in shown
    assert "/s" in shown
    assert "ETA" in shown
    assert (progress.done, progress.failed, progress.rows) == (2, 1, 21)


def test_without_a_bar_progress_only_counts() -> None:
    progress = SyncProgress(None)
    progress.queued(1, True)
    progress.finished(_result(LA, ok=False, rows=0))
    assert (progress.done, progress.failed) == (1, 1)


@pytest.mark.anyio
async def test_sync_all_tells_n_as_it_reads_the_accounts_of_its_shard(tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    accounts = [f"1784140000000{i:04d}" for i in range(1, 9)]
    sim = Simulator([SimAccount(a, tz="America/Los_Angeles") for a in accounts], now=lambda: now)
    heard: list[tuple[int, bool]] = []
    async with SQLiteStore(tmp_path / "igsync.db") as store:
        await store.init_schema()
        for account in accounts:
            token = SecretStr(sim.issue_token(account))
            # fixed users: with random ones, now and then all 8 (or none) fell in one shard
            user = uuid5(NAMESPACE_URL, f"igsync-shard-test:{account}")
            await store.save_token(UserToken(u_id=user, access_token=token, account_id=account))
        shard = Shard(1, 2)
        async with GraphClient(
            base_url="http://sim", version="v27.0", transport=sim.transport()
        ) as graph:
            report = await sync_all(
                graph,
                store,
                metrics=DEFAULT_METRICS,
                plan=plan_window(now),
                now=now,
                shard=shard,
                on_queued=lambda n, final: heard.append((n, final)),
            )
    assert heard[-1] == (report.accounts_total, True)
    assert [n for n, _ in heard[:-1]] == list(range(1, report.accounts_total + 1))
    assert 0 < report.accounts_total < len(accounts)


# --- errors a person reads --------------------------------------------------------------


def test_identical_errors_of_one_account_share_one_line() -> None:
    graph = "Unsupported get request. Object with ID '1784' does not exist [code 100/33]"
    errors = [
        f"reach: {graph}",
        f"follower_count: {graph}",
        f"profile_views: could not learn the day keys: {graph}",
        "views: (#100) metric[0] must be one of the following values: reach [code 100]",
    ]
    assert collapse_errors(errors) == [
        f"reach, follower_count, profile_views: {graph}",
        "views: (#100) metric[0] must be one of the following values: reach [code 100]",
    ]
    assert collapse_errors(["store: the database is down"]) == ["store: the database is down"]


def test_a_missing_account_is_one_error_line_and_its_json_keeps_every_metric(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = "17841499999999999"
    env.seed(missing)
    code, out, _ = run_cli(monkeypatch, capsys, "sync-all", "--no-batch")
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith(f"{missing}: ")]
    assert len(lines) == 1, out
    assert all(metric in lines[0] for metric in DEFAULT_METRICS)
    code, out, _ = run_cli(monkeypatch, capsys, "sync-all", "--json", "--no-batch")
    (result,) = json.loads(out)["results"]
    assert len(result["errors"]) == len(DEFAULT_METRICS)  # DESIGN §5: one per failed metric


def test_sync_all_json_prints_the_results_it_kept_as_text_exactly_as_one_document(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--json` keeps each result as the text it prints (Output.json_text) and splices them
    into the report: the document is the one `emit_json` would print for the whole report,
    the same results `--ndjson` prints line by line."""
    env.seed(LA, KOLKATA)
    code, out, err = run_cli(monkeypatch, capsys, "sync-all", "--json")
    assert code == 0, err
    assert out.count("\n") == 1  # one document, on one line
    document = json.loads(out)
    code, lines, err = run_cli(monkeypatch, capsys, "sync-all", "--ndjson")
    assert code == 0, err
    *results, summary = map(json.loads, lines.splitlines())

    def steady(result: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in result.items() if k != "duration_s"}

    assert sorted(map(steady, document.pop("results")), key=str) == sorted(
        map(steady, results), key=str
    )
    assert document.keys() == summary["summary"].keys()
    report = SyncReport.model_validate({**document, "results": []})
    assert report.accounts_ok == 2


def test_a_report_spliced_from_kept_texts_is_the_text_of_the_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "EAAG" + "s" * 40
    register_secret(secret)
    results = [
        FetchResult(
            success=i % 2 == 0,
            total_inserted=i,
            total_errors=i % 2,
            metrics_inserted={"reach": i},
            errors=[f"account: bad token {secret} ✓"] * (i % 2),
            account_id=f"1784140000000000{i}",
            user_id=str(uuid5(NAMESPACE_URL, str(i))),
            duration_s=0.5,
        )
        for i in range(3)
    ]
    report = summarize(results, 1.5)
    out = Output(json_mode=True, quiet=True, verbose=0)
    out.emit_json(report)
    whole = capsys.readouterr().out
    out.emit_json_with(
        report.model_copy(update={"results": []}),
        "results",
        [out.json_text(r) for r in results],
    )
    assert capsys.readouterr().out == whole
    assert secret not in whole
    assert "✓" in whole  # not escaped: the same text as emit_json


@pytest.mark.parametrize(
    ("env", "tty", "rich_decides"),
    [
        ({}, False, False),  # a pipe or a file: no terminal, rich never asked
        ({}, True, True),
        ({"FORCE_COLOR": "1"}, False, True),  # rich makes a pipe a terminal
        ({"TTY_COMPATIBLE": "1"}, False, True),
        ({"FORCE_COLOR": ""}, False, True),  # rich reads it as "no": still rich's call
    ],
)
def test_rich_decides_whether_a_stream_is_a_terminal_whenever_it_could_be_one(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool, rich_decides: bool
) -> None:
    """Machine output skips rich only where rich could only say "no terminal", so rich's own
    rules (a TTY, FORCE_COLOR, TTY_COMPATIBLE) still decide every other case."""
    import os

    from igsync.cli._render import _surely_no_terminal

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if tty:
        leader, follower = os.openpty()
        stream = open(follower, "w")  # noqa: SIM115 - closed below with the pty
        try:
            assert _surely_no_terminal(stream) is not rich_decides
            assert Console(file=stream).is_terminal
        finally:
            stream.close()
            os.close(leader)
    else:
        stream = io.StringIO()
        assert _surely_no_terminal(stream) is not rich_decides
        assert Console(file=stream).is_terminal is bool(env and next(iter(env.values())))
