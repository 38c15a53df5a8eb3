"""`igsync doctor` and sync-all's empty run on Supabase, against the fake PostgREST (issue 12)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

import igsync.store
from cli_runner import run_cli
from fake_postgrest import SERVICE_KEY, SUPABASE_URL, FakePostgrest
from igsync.store import Store
from igsync.store.schema import LATEST, MIGRATIONS


@pytest.fixture
def project(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[FakePostgrest]:
    fake = FakePostgrest(with_schema=request.param)

    def open_fake(url: str, key: str) -> Store:
        assert url == SUPABASE_URL
        return fake.open(key)

    monkeypatch.setattr(igsync.store, "open_supabase_store", open_fake)
    for name in list(os.environ):
        if name.startswith(("IGSYNC_", "IG_", "SUPABASE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SUPABASE_URL", SUPABASE_URL)
    monkeypatch.setenv("SUPABASE_KEY", SERVICE_KEY)
    monkeypatch.chdir(tmp_path)  # no stray .env
    yield fake
    fake.close()


def checks(out: str) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in json.loads(out)["checks"]}


@pytest.mark.parametrize("project", [False], indirect=True)
def test_a_missing_schema_fails_naming_the_migration_files_to_apply(
    project: FakePostgrest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "doctor", "--json", "--no-graph")
    assert (code, err) == (1, "")
    found = checks(out)
    assert found["configuration"]["status"] == "ok"
    assert (
        f"database Supabase {SUPABASE_URL} from SUPABASE_URL and SUPABASE_KEY"
        in (found["configuration"]["detail"])
    )
    assert found["database"]["status"] == "ok"
    assert found["schema"]["status"] == "fail"
    assert "the igsync tables are missing" in found["schema"]["detail"]
    for migration in MIGRATIONS:
        assert f"supabase/migrations/{migration.supabase_file}" in found["schema"]["fix"]
    assert found["accounts"]["status"] == "skip"
    assert SERVICE_KEY not in out


@pytest.mark.parametrize("project", [True], indirect=True)
def test_no_visible_account_blames_the_key_first(
    project: FakePostgrest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(monkeypatch, capsys, "doctor", "--json", "--no-graph")
    assert code == 1
    found = checks(out)
    assert found["schema"]["detail"] == f"version {LATEST} (latest {LATEST})"
    assert found["accounts"]["status"] == "fail"
    assert found["accounts"]["fix"].startswith(
        "likely: a key subject to row-level security (SUPABASE_KEY must be the service-role key"
    )
    code, out, err = run_cli(monkeypatch, capsys, "sync-all")
    assert (code, out) == (1, "")
    assert err.startswith(
        f"igsync: error: no accounts to sync: Supabase {SUPABASE_URL} (from SUPABASE_URL and"
        " SUPABASE_KEY (environment)) shows this role no instagram row in user_tokens; likely"
        " causes: a key subject to row-level security"
    )
    assert SERVICE_KEY not in out + err


@pytest.mark.parametrize("project", [True], indirect=True)
def test_accounts_seen_over_the_rest_api_are_counted(
    project: FakePostgrest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for account in ("17841400000000001", "17841400000000002", "17841400000000003"):
        user = str(uuid4())
        project.db.execute("insert into users (u_id) values (?)", [user])
        project.db.execute(
            "insert into user_tokens (token_id, u_id, platform, access_token, account_id)"
            " values (?, ?, 'instagram', ?, ?)",
            [str(uuid4()), user, f"EAAJ-supabase-doctor-{account}-Zq81kLmN0pQr", account],
        )
    code, out, _ = run_cli(monkeypatch, capsys, "doctor", "--json", "--no-graph")
    assert code == 0, out
    assert checks(out)["accounts"]["detail"] == "3 instagram accounts visible"
