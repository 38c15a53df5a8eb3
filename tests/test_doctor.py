"""`igsync doctor` in-process against SQLite and the simulator on loopback (issue 12), and the
last sync that `accounts list` shows."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import respx
from pydantic import SecretStr

from cli_runner import run_cli
from igsync.config import resolve_sources
from igsync.doctor import diagnose
from igsync.models import TokenKind, UserToken
from igsync.simulator import SimAccount, Simulator, serve_in_thread
from igsync.store.schema import LATEST
from igsync.store.sqlite import SQLiteStore
from postgres_server import free_port

LA, KOLKATA = "17841400000000001", "17841400000000002"
USER = UUID("5b0e5c1e-4a53-4a57-9d3a-3b8c2f1e9a10")
APP_SECRET = "doctor-app-secret-0123456789abcdef"
CHECKS = [
    "configuration",
    "database",
    "schema",
    "integrity",
    "accounts",
    "tokens",
    "app credentials",
    "graph api",
]


def secret(account: str) -> str:
    return f"EAAJ-doctor-secret-{account}-Zq81kLmN0pQr"


@dataclass
class Env:
    sim: Simulator
    db: Path
    tmp: Path

    def seed(
        self, account: str, expires_in: timedelta | None, kind: TokenKind = "facebook_login"
    ) -> None:
        token = secret(account) if kind == "facebook_login" else "IG" + secret(account)[4:]
        row = UserToken(
            u_id=USER,
            account_id=account,
            access_token=SecretStr(token),
            token_kind=kind,
            expires_at=None if expires_in is None else datetime.now(UTC) + expires_in,
        )

        async def save() -> None:
            async with SQLiteStore(self.db) as store:
                await store.save_token(row)

        asyncio.run(save())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Env]:
    sim = Simulator(
        [SimAccount(LA, tz="America/Los_Angeles"), SimAccount(KOLKATA, tz="Asia/Kolkata")]
    )
    with serve_in_thread(sim) as served:
        monkeypatch.chdir(tmp_path)  # no stray .env
        for name in list(os.environ):
            if name.startswith(("IGSYNC_", "IG_", "SUPABASE_")):
                monkeypatch.delenv(name)
        db = tmp_path / "igsync.db"
        for name, value in {
            "IGSYNC_GRAPH_URL": served.graph_url,
            "IGSYNC_INSTAGRAM_URL": served.instagram_url,
            "IGSYNC_DATABASE_URL": f"sqlite:///{db}",
            "IG_APP_ID": "1234567890",
            "IG_APP_SECRET": APP_SECRET,
            "IGSYNC_HTTP_TIMEOUT": "5",
            "NO_COLOR": "1",
        }.items():
            monkeypatch.setenv(name, value)
        yield Env(sim, db, tmp_path)


def doctor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(monkeypatch, capsys, "doctor", "--json", *args)
    assert out.count("\n") == 1, out + err  # one JSON document
    return code, json.loads(out), err


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in report["checks"] if c["name"] == name]
    return dict(found)


def test_a_ready_setup_passes_every_check_and_shows_where_settings_came_from(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, timedelta(days=40))
    env.seed(KOLKATA, timedelta(days=50))
    code, report, err = doctor(monkeypatch, capsys)
    assert (code, err) == (0, "")
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in report["checks"])
    assert set(statuses(report).values()) == {"ok"}
    config = check(report, "configuration")["detail"]
    assert f"database SQLite file {env.db} from IGSYNC_DATABASE_URL (environment)" in config
    assert f".env {env.tmp / '.env'} (absent)" in config
    assert check(report, "schema")["detail"] == f"version {LATEST} (latest {LATEST})"
    assert check(report, "accounts")["detail"] == "2 instagram accounts visible"
    assert check(report, "tokens")["detail"] == "2 tokens: 2 ok; the soonest expires in 39 days"
    assert check(report, "app credentials")["detail"] == (
        "set: IG_APP_ID (environment), IG_APP_SECRET (environment)"
    )
    # One GET of the Facebook host, without a token; no Instagram-Login token, no second host.
    probes = [r for r in env.sim.requests if r.path.endswith("/me")]
    assert [(r.host, r.path) for r in probes] == [("facebook", "/v27.0/me")]
    text = json.dumps(report)
    assert APP_SECRET not in text
    assert secret(LA) not in text


def test_the_human_form_is_a_table_with_a_fix_per_problem(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, timedelta(days=3))
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(monkeypatch, capsys, "doctor", "--no-graph")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    (tokens,) = [line for line in lines if line.startswith("│ tokens")]
    assert "warn" in tokens
    assert "1 expiring; the soonest expires in 2 days" in tokens
    assert "sync-all refreshes them on its next run" in tokens
    assert lines[-1] == "6 ok, 1 warn, 1 skip"


def test_tokens_expiring_within_7_days_warn_and_expired_or_reauth_ones_fail(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, timedelta(days=5))
    code, report, _ = doctor(monkeypatch, capsys, "--no-graph")
    assert (code, statuses(report)["tokens"]) == (0, "warn")
    env.seed(KOLKATA, timedelta(days=-1))
    code, report, _ = doctor(monkeypatch, capsys, "--no-graph")
    assert (code, report["ok"]) == (1, False)
    tokens = check(report, "tokens")
    assert tokens["status"] == "fail"
    assert tokens["detail"].startswith("2 tokens: 1 expired, 1 expiring")
    assert "log in again" in tokens["fix"]


def test_no_database_is_a_warning_and_no_account_a_failure_and_nothing_is_created(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, _ = doctor(monkeypatch, capsys, "--no-graph")
    assert code == 1
    assert statuses(report) == {
        "configuration": "ok",
        "database": "warn",
        "schema": "skip",
        "accounts": "fail",
        "tokens": "skip",
        "app credentials": "ok",
        "graph api": "skip",
    }
    assert "does not exist yet" in check(report, "database")["detail"]
    assert not env.db.exists()  # doctor changes nothing


def test_an_empty_database_fails_accounts_naming_the_likely_causes(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, None)
    asyncio.run(_delete_tokens(env.db))
    code, report, _ = doctor(monkeypatch, capsys, "--no-graph")
    assert code == 1
    accounts = check(report, "accounts")
    assert accounts["status"] == "fail"
    seen = f"SQLite file {env.db} has no instagram row in user_tokens"
    assert accounts["detail"] == seen
    assert "--env-file" in accounts["fix"]
    assert "igsync accounts add" in accounts["fix"]


async def _delete_tokens(db: Path) -> None:
    async with SQLiteStore(db) as store:
        await store.delete_tokens(USER)


def test_a_half_set_app_configuration_fails_naming_the_missing_variable(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, timedelta(days=40))
    monkeypatch.delenv("IG_APP_SECRET")
    code, report, _ = doctor(monkeypatch, capsys, "--no-graph")
    assert code == 1
    app = check(report, "app credentials")
    assert app["status"] == "fail"
    assert "IG_APP_SECRET is missing" in app["detail"]


def test_facebook_login_tokens_without_app_credentials_warn(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, timedelta(days=40))
    monkeypatch.delenv("IG_APP_SECRET")
    monkeypatch.delenv("IG_APP_ID")
    code, report, _ = doctor(monkeypatch, capsys, "--no-graph")
    assert (code, statuses(report)["app credentials"]) == (0, "warn")


def test_instagram_login_tokens_make_doctor_probe_the_instagram_host_too(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, timedelta(days=40), kind="instagram_login")
    code, report, _ = doctor(monkeypatch, capsys)
    assert code == 0, report
    probes = [(r.host, r.path) for r in env.sim.requests if r.path.endswith("/me")]
    assert probes == [("facebook", "/v27.0/me"), ("instagram", "/v27.0/me")]


def test_an_unreachable_graph_api_fails_and_no_graph_skips_it(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, timedelta(days=40))
    monkeypatch.setenv("IGSYNC_GRAPH_URL", f"http://127.0.0.1:{free_port()}")
    code, report, _ = doctor(monkeypatch, capsys)
    assert code == 1
    graph = check(report, "graph api")
    assert graph["status"] == "fail"
    assert "cannot reach it (ConnectError)" in graph["detail"]
    assert "--no-graph" in graph["fix"]
    code, report, _ = doctor(monkeypatch, capsys, "--offline")
    assert (code, statuses(report)["graph api"]) == (0, "skip")


@pytest.mark.parametrize(
    ("response", "verdict"),
    [
        # Meta's answer to a call without a token: the Graph error shape proves it is Meta.
        (
            httpx.Response(
                400,
                json={
                    "error": {
                        "message": "An active access token must be used to query information"
                        " about the current user.",
                        "type": "OAuthException",
                        "code": 2500,
                        "fbtrace_id": "AbCdEfGhIjK",
                    }
                },
            ),
            None,
        ),
        (
            httpx.Response(200, html="<html>Sign in to the hotel wifi</html>"),
            "answered HTTP 200 (text/html), not as the Graph API does",
        ),
        (
            httpx.Response(502, text="Bad Gateway"),
            "answered HTTP 502 (text/plain), not as the Graph API does",
        ),
    ],
)
def test_only_a_graph_shaped_answer_counts_as_reachable(
    env: Env, monkeypatch: pytest.MonkeyPatch, response: httpx.Response, verdict: str | None
) -> None:
    env.seed(LA, timedelta(days=40))
    monkeypatch.delenv("IGSYNC_GRAPH_URL")  # Meta's own host, answered by respx
    with respx.mock(base_url="https://graph.facebook.com") as graph:
        graph.get("/v27.0/me").mock(return_value=response)
        run = diagnose(resolve_sources(), db_override=None, now=datetime.now(UTC))
        report = asyncio.run(run)
    (probe,) = [c for c in report.checks if c.name == "graph api"]
    if verdict is None:
        assert probe.status == "ok"
        assert probe.detail == "https://graph.facebook.com answered (v27.0)"
    else:
        assert probe.status == "fail"
        assert verdict in probe.detail


def test_a_bad_setting_is_a_failed_check_not_a_crash(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IGSYNC_HTTP_TIMEOUT", "-1")
    code, report, _ = doctor(monkeypatch, capsys)
    assert code == 1
    config = check(report, "configuration")
    assert config["status"] == "fail"
    assert config["detail"].startswith("IGSYNC_HTTP_TIMEOUT: expected seconds")
    assert {c["status"] for c in report["checks"][1:]} == {"skip"}


def test_an_unreachable_postgresql_fails_with_its_password_masked(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://cron:Sup3r-s3cret-pw@127.0.0.1:{free_port()}/igsync"
    code, out, err = run_cli(monkeypatch, capsys, "--db", url, "doctor", "--json", "--no-graph")
    assert code == 1
    report = json.loads(out)
    database = check(report, "database")
    assert database["status"] == "fail"
    assert "cannot connect" in database["detail"]
    assert "postgresql://cron:***@127.0.0.1" in check(report, "configuration")["detail"]
    assert "from --db" in check(report, "configuration")["detail"]
    assert "Sup3r-s3cret-pw" not in out + err


def test_doctor_counts_what_a_postgresql_role_sees(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_postgres_url: str,
) -> None:
    from igsync.store.postgres import PostgresStore

    async def seed() -> None:
        async with PostgresStore(fresh_postgres_url) as store:
            for account in (LA, KOLKATA):
                row = UserToken(
                    u_id=uuid4(), account_id=account, access_token=SecretStr(secret(account))
                )
                await store.save_token(row)

    asyncio.run(seed())
    monkeypatch.setenv("IGSYNC_DATABASE_URL", fresh_postgres_url)
    code, report, _ = doctor(monkeypatch, capsys)
    assert code == 0, report
    assert check(report, "accounts")["detail"] == "2 instagram accounts visible"
    assert check(report, "tokens")["detail"] == "2 tokens: 2 ok; 2 with no known expiry"


# --- accounts list: each account's last sync ---


def test_accounts_list_shows_each_accounts_last_sync(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.seed(LA, timedelta(days=40))
    code, out, err = run_cli(monkeypatch, capsys, "fetch", "--user", str(USER), "--account-id", LA)
    assert code == 0, out + err
    env.seed(KOLKATA, timedelta(days=40))  # never synced
    code, out, _ = run_cli(monkeypatch, capsys, "accounts", "list", "--json")
    assert code == 0
    listed = {a["account_id"]: a for a in json.loads(out)}
    la = listed[LA]
    assert (la["last_sync_status"], la["last_sync_rows"]) == ("ok", 12)
    synced_at = datetime.fromisoformat(la["last_sync_at"])
    assert datetime.now(UTC) - synced_at < timedelta(minutes=10)
    kolkata = listed[KOLKATA]
    assert (kolkata["last_sync_at"], kolkata["last_sync_status"], kolkata["last_sync_rows"]) == (
        None,
        None,
        None,
    )
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = run_cli(monkeypatch, capsys, "accounts", "list")
    (la_line,) = [line for line in out.splitlines() if LA in line]
    assert f"{synced_at:%Y-%m-%d %H:%M} ok, 12 rows" in la_line
    (kolkata_line,) = [line for line in out.splitlines() if KOLKATA in line]
    assert kolkata_line.rstrip(" │").endswith("none")


def test_supabase_chosen_without_its_url_or_key_fails_the_configuration_by_name(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every other command refuses IGSYNC_DATABASE_URL=supabase without SUPABASE_URL and
    SUPABASE_KEY; doctor said the configuration was ok ("database Supabase None") and gave
    the database a PostgreSQL fix."""
    monkeypatch.setenv("IGSYNC_DATABASE_URL", "supabase")
    code, report, _ = doctor(monkeypatch, capsys, "--no-graph")
    assert code == 1
    config = check(report, "configuration")
    assert config["status"] == "fail"
    assert "SUPABASE_URL and SUPABASE_KEY are unset" in config["detail"]
    assert "None" not in config["detail"]
    assert "service-role key" in config["fix"]
    assert {c["status"] for c in report["checks"][1:]} == {"skip"}

    monkeypatch.setenv("SUPABASE_KEY", "a-service-role-key")  # the key alone: still no URL
    _, report, _ = doctor(monkeypatch, capsys, "--no-graph")
    config = check(report, "configuration")
    assert config["status"] == "fail"
    assert "SUPABASE_URL" in config["detail"]
