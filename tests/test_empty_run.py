"""Never a silent empty run (issue 12): sync-all that sees no account exits 1 naming the database
and the likely causes; an empty shard is fine; the README's cron role works on a real PostgreSQL
with row-level security on, and a role without BYPASSRLS is told why it sees nothing."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from cli_runner import run_cli
from igsync.models import UserToken
from igsync.simulator import SimAccount, Simulator, serve_in_thread
from igsync.store.postgres import PostgresStore
from igsync.store.sqlite import SQLiteStore
from igsync.sync_all import Shard

LA, KOLKATA = "17841400000000001", "17841400000000002"
README = Path(__file__).resolve().parent.parent / "README.md"


def secret(account: str) -> str:
    return f"EAAJ-empty-run-secret-{account}-Zq81kLmN0pQr"


def token(account: str) -> UserToken:
    return UserToken(u_id=uuid4(), account_id=account, access_token=SecretStr(secret(account)))


@dataclass
class Env:
    sim: Simulator
    db: Path

    def seed(self, *accounts: str) -> list[UserToken]:
        rows = [token(a) for a in accounts]

        async def save() -> None:
            async with SQLiteStore(self.db) as store:
                for row in rows:
                    await store.save_token(row)

        asyncio.run(save())
        return rows


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Env]:
    sim = Simulator(
        [SimAccount(LA, tz="America/Los_Angeles"), SimAccount(KOLKATA, tz="Asia/Kolkata")]
    )
    with serve_in_thread(sim) as served:
        monkeypatch.chdir(tmp_path)
        for name in list(os.environ):
            if name.startswith(("IGSYNC_", "IG_", "SUPABASE_")):
                monkeypatch.delenv(name)
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


def test_no_account_at_all_is_exit_1_with_one_line_naming_the_database_and_causes(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "sync-all")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(
        f"igsync: error: no accounts to sync: SQLite file {env.db} (from IGSYNC_DATABASE_URL"
        " (environment)) has no instagram row in user_tokens; likely causes: the"
        " wrong database file"
    )
    assert "--env-file" in err
    assert "no accounts yet (`igsync accounts add`)" in err
    assert err.endswith("Pass --allow-empty when no account is expected\n")
    assert env.sim.requests == []


def test_json_says_success_false_and_allow_empty_makes_it_exit_0(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "sync-all", "--json")
    assert code == 1
    report = json.loads(out)
    assert (report["success"], report["accounts_total"], report["accounts_visible"]) == (
        False,
        0,
        0,
    )
    assert err.startswith("igsync: error: no accounts to sync")
    code, out, err = run_cli(monkeypatch, capsys, "sync-all", "--allow-empty", "--json")
    assert (code, err.count("\n")) == (0, 1)  # the run's summary line (cron)
    assert err.startswith("igsync sync-all: ")
    assert json.loads(out)["success"] is True
    code, out, err = run_cli(monkeypatch, capsys, "sync-all", "--allow-empty")
    assert (code, err.count("\n")) == (0, 1)  # the run's summary line (cron)
    assert err.startswith("igsync sync-all: ")
    assert "shows this role no account (--allow-empty)" in " ".join(out.split())


def test_the_default_database_found_by_a_run_from_elsewhere_says_so(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The cron case: no IGSYNC_DATABASE_URL reached this run, so the default file was used."""
    env.seed(LA)  # in the configured database, which this run does not see
    monkeypatch.delenv("IGSYNC_DATABASE_URL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    code, _, err = run_cli(monkeypatch, capsys, "sync-all")
    assert code == 1
    assert f"SQLite file {tmp_path / 'data' / 'igsync' / 'igsync.db'}" in err
    assert "(from the default: no IGSYNC_DATABASE_URL or SUPABASE_URL anywhere)" in err


def test_a_shard_holding_none_of_the_accounts_is_fine_and_says_so(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (row,) = env.seed(LA)
    empty = next(k for k in (1, 2) if not Shard(k, 2).holds(row))
    code, out, err = run_cli(monkeypatch, capsys, "sync-all", "--shard", f"{empty}/2")
    assert (code, err.count("\n")) == (0, 1)  # the run's summary line (cron)
    assert err.startswith("igsync sync-all: ")
    assert " ".join(out.split()) == (
        f"shard {empty}/2 holds none of the 1 accounts this role sees: nothing to sync here"
        " (the other shards have them)"
    )
    code, out, _ = run_cli(monkeypatch, capsys, "sync-all", "--shard", f"{empty}/2", "--json")
    assert code == 0
    assert (json.loads(out)["accounts_total"], json.loads(out)["accounts_visible"]) == (0, 1)


# --- PostgreSQL: row-level security and the README's cron role ---


def readme_cron_role_sql() -> str:
    """The SQL block under the `cron-role-sql` marker of the README, as a user copies it."""
    text = README.read_text()
    match = re.search(r"<!-- cron-role-sql[^>]*-->\n```sql\n(.*?)```", text, re.DOTALL)
    assert match, "the README lost its cron role SQL block"
    return match.group(1)


@pytest.fixture
def cron_role(fresh_postgres_url: str) -> Iterator[tuple[str, str, str]]:
    """The README's role, under a unique name (roles are cluster-wide): (its SQL, name, URL)."""
    name = f"igsync_cron_{uuid.uuid4().hex[:10]}"
    password = f"pw-{uuid.uuid4().hex}"
    script = readme_cron_role_sql().replace("igsync_cron", name).replace("change-me", password)
    parts = urlsplit(fresh_postgres_url)
    url = parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port}").geturl()
    try:
        yield script, name, url
    finally:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_roles where rolname = %s", [name]).fetchone()
            if exists:
                conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
                conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def seed_postgres(url: str, *accounts: str) -> None:
    async def save() -> None:
        async with PostgresStore(url) as store:  # the owner: creates the schema, with RLS on
            for account in accounts:
                await store.save_token(token(account))

    asyncio.run(save())


def test_a_role_with_grants_but_no_bypassrls_is_told_rls_hides_the_rows(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_postgres_url: str,
    cron_role: tuple[str, str, str],
) -> None:
    script, name, url = cron_role
    seed_postgres(fresh_postgres_url, LA, KOLKATA)
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute(script.replace(" bypassrls;", ";"))  # the role: grants only
    password = urlsplit(url).password
    assert password
    monkeypatch.setenv("IGSYNC_DATABASE_URL", url)
    code, out, err = run_cli(monkeypatch, capsys, "sync-all")
    assert (code, out) == (1, "")
    assert f"postgresql://{urlsplit(url).username}:***@" in err
    assert "likely causes: row-level security hiding the rows from this role" in err
    assert "BYPASSRLS" in err
    assert password not in err
    assert env.sim.requests == []
    # doctor says which: this role is filtered by RLS, and how to lift it
    code, out, _ = run_cli(monkeypatch, capsys, "doctor", "--json", "--no-graph")
    assert code == 1
    (accounts,) = [c for c in json.loads(out)["checks"] if c["name"] == "accounts"]
    assert accounts["status"] == "fail"
    assert f"row-level security filters that table for it (role {name}" in accounts["detail"]
    assert accounts["fix"].startswith(f"as a superuser: `alter role {name} bypassrls;`")
    assert password not in out


def test_a_role_without_grants_is_one_line_naming_the_readme_role_not_a_traceback(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_postgres_url: str,
    cron_role: tuple[str, str, str],
) -> None:
    script, _, url = cron_role
    seed_postgres(fresh_postgres_url, LA)
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute(script.split(";", 1)[0])  # the role alone, none of the grants
    monkeypatch.setenv("IGSYNC_DATABASE_URL", url)
    for output in ([], ["--ndjson"]):
        code, out, err = run_cli(monkeypatch, capsys, "sync-all", *output)
        assert (code, out) == (1, "")
        assert err.count("\n") == 1, err
        assert "permission denied for table user_tokens [42501]" in err
        assert "README, 'A cron role on PostgreSQL'" in err
        assert "Traceback" not in err
    assert env.sim.requests == []


async def _as_role(url: str) -> tuple[int, str | None]:
    async with PostgresStore(url) as store:
        return await store.count_tokens(), await store.row_security_role()


def test_the_readme_cron_role_syncs_every_account_under_rls(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_postgres_url: str,
    cron_role: tuple[str, str, str],
) -> None:
    script, name, url = cron_role
    seed_postgres(fresh_postgres_url, LA, KOLKATA)
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute(script)
        flags = conn.execute(
            "select rolsuper, rolbypassrls from pg_roles where rolname = %s", [name]
        ).fetchone()
        rls = conn.execute(
            "select bool_and(relrowsecurity) from pg_class where relname = 'user_tokens'"
        ).fetchone()
    assert flags == (False, True)  # not a superuser: only BYPASSRLS lets it past the policies
    assert rls == (True,)
    seen = asyncio.run(_as_role(url))
    assert seen == (2, None)  # every row, and no row-level security in its way
    monkeypatch.setenv("IGSYNC_DATABASE_URL", url)
    code, out, err = run_cli(monkeypatch, capsys, "sync-all", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["accounts_total"], report["accounts_ok"]) == (2, 2)
    assert report["total_inserted"] == 24
    # Its writes went through: insights and one sync log per account.
    with psycopg.connect(fresh_postgres_url) as conn:
        logs = conn.execute("select count(*) from instagram_sync_logs").fetchone()
        rows = conn.execute("select count(*) from instagram_insights").fetchone()
    assert (logs, rows) == ((2,), (24,))
    # And the rest of the CLI works as that role: `accounts add` (a new user too), and
    # `accounts list` with each account's last sync.
    monkeypatch.setattr(sys, "stdin", io.StringIO(secret("17841400000000003")))
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "accounts",
        "add",
        "--user",
        str(uuid4()),
        "--account-id",
        "17841400000000003",
        "--expires-at",
        "2099-01-01T00:00:00Z",
        "--token-stdin",
    )
    assert code == 0, err
    code, out, err = run_cli(monkeypatch, capsys, "accounts", "list", "--json")
    assert code == 0, err
    listed = {a["account_id"]: a["last_sync_status"] for a in json.loads(out)}
    assert listed == {LA: "ok", KOLKATA: "ok", "17841400000000003": None}


def test_rows_visible_but_none_taken_by_this_run_is_not_an_empty_database(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The count, not the run, decides "no account at all": rows this run did not take (they
    changed meanwhile, or another run holds them) are said so, exit 0."""
    import igsync.sync_all

    async def nothing(store: object) -> AsyncIterator[UserToken]:
        return
        yield  # an async generator that yields nothing

    env.seed(LA, KOLKATA)
    monkeypatch.setattr(igsync.sync_all, "iter_tokens", nothing)
    code, out, err = run_cli(monkeypatch, capsys, "sync-all")
    assert (code, err.count("\n")) == (0, 1)  # the run's summary line (cron)
    assert err.startswith("igsync sync-all: ")
    assert out == "this run synced none of the 2 accounts this role sees\n"
