"""`igsync accounts import` and `Store.save_tokens`: many accounts in one transaction per chunk,
a per-row report, and never a token in any output."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import SecretStr

from cli_runner import run_cli
from fake_postgrest import FakePostgrest
from igsync.errors import InputError, StoreError
from igsync.models import UserToken
from igsync.onboarding import check_import, import_accounts, save_import
from igsync.store import Store
from igsync.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
BOB = UUID("00000000-0000-4000-8000-000000000b0b")
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
FB = "EAAGm0PX4ZCps" + "fbsecret" * 12
IG = "IGAAKx7" + "igsecret" * 12


def fb(n: int) -> str:
    return f"EAAGm0PX4ZCps{n:06d}" + "s" * 90


def token(secret: str, *, u_id: UUID = ALICE, account_id: str = "101", **more: Any) -> UserToken:
    return UserToken(u_id=u_id, access_token=SecretStr(secret), account_id=account_id, **more)


def ndjson(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def good(n: int, **more: Any) -> dict[str, Any]:
    return {"user_id": str(ALICE), "account_id": f"1784{n:04d}", "access_token": fb(n), **more}


# --- the store: save_tokens on every kind of store (tests/store_kits.py) ---


async def test_save_tokens_inserts_rows_and_adds_their_users(store: Store) -> None:
    expiry = datetime(2027, 1, 24, 10, tzinfo=UTC)
    saved = await store.save_tokens(
        [
            token(FB, account_id="101", expires_at=expiry),
            token(IG, account_id="102", token_kind="instagram_login"),
            token(fb(3), u_id=BOB, account_id="201"),
        ]
    )
    assert saved == 3
    rows = [r for r in await store.list_tokens() if isinstance(r, UserToken)]
    got = {(r.u_id, r.account_id, r.token_kind, r.expires_at) for r in rows}
    assert got == {
        (ALICE, "101", "facebook_login", expiry),
        (ALICE, "102", "instagram_login", None),
        (BOB, "201", "facebook_login", None),
    }
    assert {r.access_token.get_secret_value() for r in rows} == {FB, IG, fb(3)}


async def test_save_tokens_replaces_in_place_keeping_token_id(store: Store) -> None:
    await store.save_token(token(FB, account_id="101"))
    (before,) = await store.list_tokens()
    assert isinstance(before, UserToken)
    later = datetime(2027, 2, 1, tzinfo=UTC)
    assert await store.save_tokens([token(fb(9), account_id="101", expires_at=later)]) == 1
    (after,) = await store.list_tokens()
    assert isinstance(after, UserToken)
    assert after.token_id == before.token_id
    assert after.access_token.get_secret_value() == fb(9)
    assert after.expires_at == later


async def test_save_tokens_of_one_key_twice_keeps_the_last(store: Store) -> None:
    assert await store.save_tokens([token(fb(1)), token(fb(2))]) == 1
    (row,) = await store.list_tokens()
    assert isinstance(row, UserToken)
    assert row.access_token.get_secret_value() == fb(2)


async def test_save_tokens_of_nothing_saves_nothing(store: Store) -> None:
    assert await store.save_tokens([]) == 0
    assert await store.list_tokens() == []


async def test_supabase_saves_a_chunk_with_one_upsert(fake_postgrest: FakePostgrest) -> None:
    async with fake_postgrest.open() as store:
        fake_postgrest.forget_requests()
        text = ndjson(*(good(n) for n in range(7)))
        report = await import_accounts(store, text, now=NOW, chunk_size=5)
        sent = [(r.method, r.url.path) for r in fake_postgrest.requests]
        assert report.saved == 7
        assert len(await store.list_tokens()) == 7
    # two chunks: each one upsert of users (the foreign key) and one of user_tokens
    assert sent == [("POST", "/rest/v1/users"), ("POST", "/rest/v1/user_tokens")] * 2


# --- checking rows ---


def test_an_account_id_with_a_leading_zero_is_refused_not_a_second_account() -> None:
    """`017841400000000001` would be saved beside `17841400000000001` as another account,
    one Meta does not know (every sync of it fails)."""
    text = (
        "user_id,account_id,access_token\n"
        f"{ALICE},17841400000000001,{FB}\n"
        f"{ALICE},017841400000000001,{fb(2)}\n"
        f"{ALICE},{'1' * 300},{fb(3)}\n"  # a pasted number, no id
    )
    report = check_import(text, NOW).report(dry_run=True)
    assert (report.valid, report.failed) == (1, 2)
    refused = [r for r in report.rows if r.status == "error"]
    assert [r.row for r in refused] == [3, 4]
    assert all(r.error and "not starting with 0, at most 30" in r.error for r in refused)


def test_csv_rows_are_numbered_as_a_spreadsheet_does_and_bad_values_never_echoed() -> None:
    text = (
        "user_id,account_id,access_token,token_kind,expires_at\n"
        f"{ALICE},17841400000000001,{FB},,2027-06-01T00:00:00Z\n"
        f"{FB},17841400000000002,{ALICE},,\n"  # columns slipped: the token where the user goes
        f"{ALICE},1784x,{fb(2)},,\n"
        f"{ALICE},17841400000000004,{IG},facebook_login,\n"
        f"{ALICE},17841400000000005,{fb(5)},,yesterday\n"
        f"{ALICE},17841400000000006,{fb(6)},,2020-01-01\n"
        f"{ALICE},17841400000000007,EAAq7Zk,,\n"
        f"{ALICE},17841400000000001,{fb(8)},,\n"
        f"{BOB},17841400000000009,{IG},,\n"
    )
    report = check_import(text, NOW).report(dry_run=True)
    by_row = {r.row: r for r in report.rows}
    assert report.format == "csv"
    assert (report.total, report.valid, report.failed) == (9, 2, 7)
    assert by_row[2].status == "ok"
    assert by_row[2].expires_at == datetime(2027, 6, 1, tzinfo=UTC)
    assert by_row[10].token_kind == "instagram_login"
    assert by_row[3].error == "user_id: expected a UUID such as 2f1c0f6e-…"
    assert by_row[3].user_id is None  # the token in the user column is not shown
    assert by_row[4].error == (
        "account_id: expected the numeric Instagram account id (ASCII digits, not starting"
        " with 0, at most 30)"
    )
    assert by_row[5].error is not None
    assert by_row[5].error.startswith("token_kind facebook_login: the token looks like")
    assert by_row[6].error is not None
    assert by_row[6].error.startswith("expires_at: expected an ISO date")
    assert by_row[7].error is not None
    assert by_row[7].error.startswith("expires_at: in the past")
    assert by_row[8].error is not None
    assert by_row[8].error.startswith("access_token: the token is 7 characters long")
    assert "shorter than 32 characters" in by_row[8].error  # the rule it applies, no other
    assert by_row[9].error == "the same user_id and account_id as row 2; that row was kept"
    dumped = report.model_dump_json()
    for secret in (FB, IG, fb(2), fb(5), fb(8), "EAAq7Zk"):
        assert secret not in dumped


def test_ndjson_rows_take_numeric_ids_skip_blank_lines_and_report_bad_json() -> None:
    text = (
        json.dumps({"user_id": str(ALICE), "account_id": 17841400000000001, "access_token": FB})
        + "\n\n"
        + '{"user_id": "x", "access_token": "'
        + FB
        + '"\n'  # cut off: not JSON
        + json.dumps({"user_id": str(BOB), "account_id": "17841400000000003"})
        + "\n"
        + "[1, 2]\n"
    )
    report = check_import(text, NOW).report(dry_run=True)
    assert report.format == "ndjson"
    assert [(r.row, r.status) for r in report.rows] == [
        (1, "ok"),
        (3, "error"),
        (4, "error"),
        (5, "error"),
    ]
    assert report.rows[0].account_id == "17841400000000001"
    assert report.rows[1].error is not None
    assert report.rows[1].error.startswith("not valid JSON")
    assert report.rows[2].error == "missing access_token"
    assert report.rows[2].user_id == str(BOB)
    assert FB not in report.model_dump_json()


def test_a_kind_the_token_does_not_show_must_be_given() -> None:
    plain = "x" * 64  # no EAA/IG prefix
    rows = ndjson(
        {"user_id": str(ALICE), "account_id": "1", "access_token": plain},
        {"user_id": str(ALICE), "account_id": "2", "access_token": plain, "token_kind": "nope"},
        {
            "user_id": str(ALICE),
            "account_id": "3",
            "access_token": plain,
            "token_kind": "instagram_login",
        },
    )
    report = check_import(rows, NOW).report(dry_run=True)
    assert [r.status for r in report.rows] == ["error", "error", "ok"]
    assert report.rows[0].error is not None
    assert report.rows[0].error.startswith("token_kind: cannot tell from the token")
    assert report.rows[1].error == "token_kind: expected facebook_login or instagram_login"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "standard input was empty"),
        ("hello world\n", "expected NDJSON"),
        ("user_id,token\nx,y\n", "the CSV header has no account_id, access_token$"),
        ("user_id,account_id\nx,1\n", "the CSV header has no access_token$"),
        ("user_id;account_id;access_token\n", "separated by semicolons, not commas$"),
        ("user_id\taccount_id\taccess_token\n", "separated by tabs, not commas$"),
        ("user_id,account_id,access_token,Account_ID\n", "names account_id twice$"),
    ],
)
def test_an_input_that_is_neither_ndjson_nor_csv_is_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as refused:
        check_import(text, NOW)
    assert "\n" not in str(refused.value)


def test_csv_header_names_are_read_whatever_their_case_and_spaces() -> None:
    text = f"User_ID , Account_Id,ACCESS_TOKEN\n{ALICE},17841400000000001,{FB}\n"
    report = check_import(text, NOW).report(dry_run=True)
    assert (report.format, report.valid, report.failed) == ("csv", 1, 0)


class RefusingSecondChunk(SQLiteStore):
    """A store that refuses the second chunk it is given, with a message quoting a token."""

    calls = 0

    async def save_tokens(self, tokens: Sequence[UserToken]) -> int:
        self.calls += 1
        if self.calls == 2:
            leaked = tokens[0].access_token.get_secret_value()
            raise StoreError(f"the database refused the row ({leaked})")
        return await super().save_tokens(tokens)


async def test_a_refused_chunk_fails_its_rows_only_and_its_message_shows_no_token(
    tmp_path: Path,
) -> None:
    text = ndjson(*(good(n) for n in range(5)))
    async with RefusingSecondChunk(tmp_path / "x.db") as store:
        report = await save_import(store, check_import(text, NOW), chunk_size=2)
        stored = await store.list_tokens()
    assert [r.status for r in report.rows] == ["ok", "ok", "error", "error", "ok"]
    assert (report.saved, report.failed) == (3, 2)
    assert len(stored) == 3
    assert report.rows[2].error == "not saved: the database refused the row (***)"
    assert fb(2) not in report.model_dump_json()


# --- the command ---


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    import io
    import sys

    class Stdin(io.TextIOWrapper):
        pass

    monkeypatch.setattr(sys, "stdin", Stdin(io.BytesIO(data), encoding="utf-8"))


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in ("IGSYNC_DATABASE_URL", "SUPABASE_URL", "SUPABASE_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "igsync.db"


def _stored(path: Path) -> list[tuple[str, str | None]]:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("select u_id, account_id from user_tokens order by 2").fetchall()


def test_import_command_reports_each_row_and_exits_1_when_one_failed(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {"user_id": str(ALICE), "account_id": "12", "access_token": FB + " " + IG}
    _stdin(monkeypatch, ndjson(good(1), bad, good(2)).encode())
    code, out, err = run_cli(monkeypatch, capsys, "--db", f"sqlite:///{db}", "accounts", "import")
    assert code == 1
    assert err == ""
    assert out.splitlines() == [
        f"row 1: user {ALICE} account 17840001: saved (facebook_login)",
        f"row 2: user {ALICE} account 12: error access_token: the token has white space inside",
        f"row 3: user {ALICE} account 17840002: saved (facebook_login)",
        "saved 2 of 3 rows; 1 failed",
    ]
    assert _stored(db) == [(str(ALICE), "17840001"), (str(ALICE), "17840002")]


def test_import_command_lines_stay_whole_however_long_off_a_terminal(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: one line per row, for grep. rich wrapped a long error at the piped width."""
    unknown = {"user_id": str(ALICE), "account_id": "17840009", "access_token": "x" * 60}
    _stdin(monkeypatch, ndjson(good(1), unknown).encode())
    code, out, _ = run_cli(monkeypatch, capsys, "--db", f"sqlite:///{db}", "accounts", "import")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 3, out  # two rows and the summary
    assert lines[1].startswith("row 2: ")
    assert len(lines[1]) > 200  # longer than the width rich wraps a pipe at


def test_import_command_json_is_one_document_and_dry_run_writes_nothing(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_text = f"user_id,account_id,access_token\n{ALICE},1784,{FB}\n{BOB},1785,{IG}\n"
    _stdin(monkeypatch, csv_text.encode())
    code, out, err = run_cli(
        monkeypatch, capsys, "--db", f"sqlite:///{db}", "accounts", "import", "--dry-run", "--json"
    )
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["dry_run"] is True
    assert (document["total"], document["valid"], document["saved"]) == (2, 2, 0)
    assert [r["status"] for r in document["rows"]] == ["ok", "ok"]
    assert not db.exists()  # a dry run opens no database
    assert FB not in out
    assert IG not in out


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfeu\x00s\x00", "standard input is not UTF-8 (byte 1); save the file as UTF-8"),
        (b"<xml/>\n", "expected NDJSON (one JSON object a line) or CSV"),
    ],
)
def test_import_command_refuses_an_unreadable_input_with_exit_2(
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: bytes,
    message: str,
) -> None:
    _stdin(monkeypatch, data)
    code, out, err = run_cli(monkeypatch, capsys, "--db", f"sqlite:///{db}", "accounts", "import")
    assert (code, out) == (2, "")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not db.exists()


def test_import_then_list_shows_every_account(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expiry = (datetime.now(UTC) + timedelta(days=50)).isoformat()
    _stdin(monkeypatch, ndjson(*(good(n, expires_at=expiry) for n in range(30))).encode())
    code, _, _ = run_cli(monkeypatch, capsys, "--db", f"sqlite:///{db}", "accounts", "import")
    assert code == 0
    code, out, _ = run_cli(
        monkeypatch, capsys, "--db", f"sqlite:///{db}", "accounts", "list", "--json"
    )
    listed = json.loads(out)
    assert code == 0
    assert len(listed) == 30
    assert {a["days_left"] for a in listed} == {49}
    assert all(a["status"] == "ok" for a in listed)


@pytest.mark.parametrize(("length", "refused"), [(24, True), (31, True), (32, False), (38, False)])
def test_the_short_token_rule_is_the_one_its_message_states(length: int, refused: bool) -> None:
    short = ("EAAGm0PX4ZCps" + "s" * 40)[:length]
    row = {"user_id": str(ALICE), "account_id": "17841400000000001", "access_token": short}
    (checked,) = check_import(ndjson(row), NOW).report(dry_run=True).rows
    if not refused:
        assert checked.status == "ok", checked.error
        return
    assert checked.error == (
        f"access_token: the token is {length} characters long, too short: igsync refuses a"
        " token shorter than 32 characters as a typo or a truncated paste (copy the whole token)"
    )
    assert short not in checked.model_dump_json()
