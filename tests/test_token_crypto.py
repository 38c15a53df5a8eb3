"""Tokens encrypted at rest (issue 11): IGSYNC_TOKEN_KEYS, every store, rekey, the CLI.

The store tests run on every store kit (SQLite, PostgreSQL, the fake Supabase): a token igsync
writes is stored encrypted and read back as the token; plain rows written by the app still
work; a row no key opens is that row's failure naming IGSYNC_TOKEN_KEYS, never its value.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from cli_runner import run_cli
from igsync.config import load_settings
from igsync.errors import ConfigError
from igsync.models import BadTokenRow, TokenUpdate, UserToken
from igsync.redact import redact
from igsync.rekey import rekey_tokens
from igsync.store import Store
from igsync.store.sqlite import SQLiteStore
from igsync.token_crypto import PREFIX, TokenKeys, active_keys, is_sealed, use_keys
from store_kits import StoreKit

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
ALICE = UUID("00000000-0000-4000-8000-0000000a11ce")


def secret() -> str:
    return f"EAAG{uuid4().hex}{uuid4().hex}"


def row(token: str, account_id: str) -> UserToken:
    return UserToken(
        u_id=ALICE,
        account_id=account_id,
        access_token=SecretStr(token),
        expires_at=datetime(2027, 1, 20, 12, tzinfo=UTC),
    )


@pytest.fixture(autouse=True)
def _no_keys_after() -> Iterator[None]:
    """The keys are process-wide: no test leaves its keys to the next one."""
    use_keys(None)
    yield
    use_keys(None)


async def stored_values(kit: StoreKit) -> dict[str, str]:
    """account_id → access_token as the database holds it."""
    rows = await kit.sql("select account_id, access_token from user_tokens")
    return {account: value for account, value in rows}


def tokens_of(rows: list[UserToken | BadTokenRow]) -> dict[str | None, str]:
    return {
        t.account_id: t.access_token.get_secret_value() for t in rows if isinstance(t, UserToken)
    }


# --- the keys ---


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (",", "IGSYNC_TOKEN_KEYS: no key; generate one with python -c"),
        ("not-a-key", "IGSYNC_TOKEN_KEYS: key 1 of 1 is not a Fernet key"),
        (f"{NEW},short", "IGSYNC_TOKEN_KEYS: key 2 of 2 is not a Fernet key"),
        (f"{NEW},,{OLD}", "IGSYNC_TOKEN_KEYS: key 2 of 3 is not a Fernet key"),
        (NEW[:-4] + "!!!=", "IGSYNC_TOKEN_KEYS: key 1 of 1 is not a Fernet key"),
    ],
)
def test_a_bad_key_setting_is_one_line_naming_the_variable_never_the_key(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        TokenKeys(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert NEW not in str(caught.value)
    assert OLD not in str(caught.value)


def test_settings_put_the_keys_to_use_and_a_reload_without_them_drops_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IGSYNC_TOKEN_KEYS", f" {NEW} , {OLD} ")
    load_settings()
    keys = active_keys()
    assert keys is not None
    assert keys.count == 2
    assert redact(f"key {NEW} and {OLD}") == "key *** and ***"
    monkeypatch.delenv("IGSYNC_TOKEN_KEYS")
    load_settings()
    assert active_keys() is None


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    token = secret()
    old = TokenKeys(OLD).encrypt(token)
    assert old.startswith(PREFIX)
    assert token not in old
    assert TokenKeys(f"{NEW},{OLD}").decrypt(old) == (token, "older_key")
    new = TokenKeys(f"{NEW},{OLD}").encrypt(token)
    assert TokenKeys(NEW).decrypt(new) == (token, "current_key")
    assert new != TokenKeys(f"{NEW},{OLD}").encrypt(token)  # a fresh IV every time


def test_a_stored_value_holds_its_token_plain_or_encrypted_and_nothing_else_does() -> None:
    from igsync.token_crypto import holds

    token = secret()
    use_keys(TokenKeys(f"{NEW},{OLD}"))
    assert holds(token, token)
    assert holds(TokenKeys(OLD).encrypt(token), token)
    assert not holds(TokenKeys(OLD).encrypt(token), secret())
    assert not holds(TokenKeys(Fernet.generate_key().decode()).encrypt(token), token)
    for stored in (None, 5, token.encode()):  # SQLite keeps whatever the app writes
        assert not holds(stored, token)
    use_keys(None)
    assert not holds(TokenKeys(NEW).encrypt(token), token)


def test_an_encrypted_token_is_masked_wherever_it_appears() -> None:
    sealed = TokenKeys(NEW).encrypt(secret())
    assert redact(f"DETAIL: Failing row contains ({sealed}, x).") == (
        "DETAIL: Failing row contains (***, x)."
    )


# --- every store ---

pytestmark = pytest.mark.anyio


async def test_a_token_igsync_saves_is_stored_encrypted_and_read_back_plain(
    store: Store, kit: StoreKit
) -> None:
    use_keys(TokenKeys(NEW))
    token = secret()
    await store.save_token(row(token, "101"))

    [read] = await store.list_tokens()
    assert isinstance(read, UserToken)
    assert (read.access_token.get_secret_value(), read.at_rest) == (token, "current_key")
    [paged] = await store.token_page(after=None, limit=10)
    assert isinstance(paged, UserToken)
    assert paged.access_token.get_secret_value() == token
    stored = (await stored_values(kit))["101"]
    assert is_sealed(stored)
    assert token not in stored


async def test_tokens_saved_in_bulk_by_accounts_import_are_stored_encrypted(
    store: Store, kit: StoreKit
) -> None:
    use_keys(TokenKeys(NEW))
    tokens = {account: secret() for account in ("101", "102")}
    assert await store.save_tokens([row(token, account) for account, token in tokens.items()]) == 2

    read = {t.account_id: t for t in await store.list_tokens() if isinstance(t, UserToken)}
    assert {a: t.access_token.get_secret_value() for a, t in read.items()} == tokens
    stored = await stored_values(kit)
    for account, token in tokens.items():
        assert is_sealed(stored[account])
        assert token not in stored[account]


async def test_a_refresh_swaps_an_encrypted_token_for_an_encrypted_one(
    store: Store, kit: StoreKit
) -> None:
    use_keys(TokenKeys(NEW))
    old, new = secret(), secret()
    await store.save_token(row(old, "101"))
    [before] = await store.list_tokens()
    update = TokenUpdate(
        access_token=SecretStr(new), expires_at=None, status="ok", last_refreshed_at=None
    )

    assert await store.update_token(before.token_id, secret(), update) is False  # not the token
    assert await store.update_token(before.token_id, old, update) is True
    assert await store.update_token(before.token_id, old, update) is False  # already swapped

    [after] = await store.list_tokens()
    assert isinstance(after, UserToken)
    assert after.access_token.get_secret_value() == new
    stored = (await stored_values(kit))["101"]
    assert is_sealed(stored)
    assert new not in stored


async def test_plain_rows_the_app_wrote_are_read_and_swapped_beside_encrypted_ones(
    store: Store, kit: StoreKit
) -> None:
    plain, other = secret(), secret()
    await store.save_token(row(plain, "101"))  # no keys yet: what the app's own rows look like
    use_keys(TokenKeys(NEW))
    await store.save_token(row(other, "102"))

    assert tokens_of(await store.list_tokens()) == {"101": plain, "102": other}
    [first, _] = await store.list_tokens()
    assert isinstance(first, UserToken)
    assert first.at_rest == "plain"
    keep = TokenUpdate(expires_at=None, status="needs_reauth", last_refreshed_at=None)
    assert await store.update_token(first.token_id, plain, keep) is True
    stored = await stored_values(kit)
    assert stored["101"] == plain  # a swap without a new token leaves the stored value alone
    assert is_sealed(stored["102"])


@pytest.mark.parametrize("keys", [None, OLD], ids=["no-keys", "wrong-key"])
async def test_a_token_no_key_opens_is_its_rows_failure_naming_the_variable(
    store: Store, keys: str | None
) -> None:
    use_keys(TokenKeys(NEW))
    token, readable = secret(), secret()
    await store.save_token(row(token, "101"))
    use_keys(None)
    await store.save_token(row(readable, "102"))
    use_keys(None if keys is None else TokenKeys(keys))

    rows = await store.list_tokens()
    [bad] = [r for r in rows if isinstance(r, BadTokenRow)]
    assert tokens_of(rows) == {"102": readable}  # the other row is unaffected
    assert bad.account_id == "101"
    assert "IGSYNC_TOKEN_KEYS" in bad.problem
    assert "\n" not in bad.problem
    expected = "is not set" if keys is None else "encrypted with a key that is not in"
    assert expected in bad.problem
    assert PREFIX not in bad.problem
    assert token not in bad.problem
    assert NEW not in bad.problem
    assert OLD not in bad.problem


# --- rekey ---


async def test_rekey_moves_every_token_to_the_first_key_and_encrypts_plain_ones(
    store: Store, kit: StoreKit
) -> None:
    plain, old, new = secret(), secret(), secret()
    await store.save_token(row(plain, "101"))
    use_keys(TokenKeys(OLD))
    await store.save_token(row(old, "102"))
    use_keys(TokenKeys(f"{NEW},{OLD}"))  # rotation: the new key first, the old one after it
    await store.save_token(row(new, "103"))
    everything = {"101": plain, "102": old, "103": new}
    assert tokens_of(await store.list_tokens()) == everything  # both keys read during rotation
    before = await stored_values(kit)

    dry = await rekey_tokens(store, dry_run=True)
    assert (dry.encrypted, dry.reencrypted, dry.current, dry.failed) == (1, 1, 1, [])
    assert await stored_values(kit) == before  # a dry run writes nothing

    done = await rekey_tokens(store)
    assert (done.encrypted, done.reencrypted, done.current, done.failed) == (1, 1, 1, [])
    again = await rekey_tokens(store)
    assert (again.encrypted, again.reencrypted, again.current) == (0, 0, 3)

    use_keys(TokenKeys(NEW))  # the old key retired: every row still reads
    rows = await store.list_tokens()
    assert tokens_of(rows) == everything
    assert {r.at_rest for r in rows if isinstance(r, UserToken)} == {"current_key"}


async def test_rekey_reports_a_row_it_cannot_open_and_rewrites_the_others(store: Store) -> None:
    use_keys(TokenKeys(OLD))
    await store.save_token(row(secret(), "101"))
    use_keys(None)
    await store.save_token(row(secret(), "102"))
    use_keys(TokenKeys(NEW))  # OLD is lost

    report = await rekey_tokens(store)

    assert report.encrypted == 1
    [failure] = report.failed
    assert failure.account_id == "101"
    assert "IGSYNC_TOKEN_KEYS" in failure.error


async def test_rekey_without_keys_is_a_configuration_error(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "x.db") as store:
        with pytest.raises(ConfigError, match=r"^IGSYNC_TOKEN_KEYS is not set: set it to"):
            await rekey_tokens(store)


# --- the command line ---


def seed(db: Path, *rows: tuple[str | None, str, str]) -> None:
    """Save (keys, token, account_id) rows through the SQLite store, each with its keys."""

    async def save() -> None:
        async with SQLiteStore(db) as store:
            for keys, token, account in rows:
                use_keys(None if keys is None else TokenKeys(keys))
                await store.save_token(row(token, account))

    asyncio.run(save())
    use_keys(None)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("IGSYNC_TOKEN_KEYS", "SUPABASE_URL", "SUPABASE_KEY", "IG_LONG_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "igsync.db"
    monkeypatch.setenv("IGSYNC_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return db


def test_accounts_list_shows_the_decrypted_hint_or_encrypted_when_no_key_opens_it(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readable, locked = secret(), secret()
    seed(cli_env, (NEW, readable, "101"), (OLD, locked, "102"))
    monkeypatch.setenv("IGSYNC_TOKEN_KEYS", NEW)

    code, out, err = run_cli(monkeypatch, capsys, "accounts", "list", "--json")

    assert code == 0, err
    shown = {a["account_id"]: a for a in json.loads(out)}
    assert shown["101"]["token_hint"] == f"…{readable[-4:]}"
    assert shown["101"]["status"] == "ok"
    assert (shown["102"]["status"], shown["102"]["token_hint"]) == ("invalid", "encrypted")
    assert "IGSYNC_TOKEN_KEYS" in shown["102"]["problem"]
    for leaked in (readable, locked, NEW, OLD, PREFIX):
        assert leaked not in out + err


def test_a_bad_key_setting_exits_2_with_one_line(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IGSYNC_TOKEN_KEYS", f"{NEW},{NEW[:20]}")

    code, out, err = run_cli(monkeypatch, capsys, "accounts", "list")

    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1
    assert "IGSYNC_TOKEN_KEYS: key 2 of 2 is not a Fernet key" in err
    assert NEW not in err
    assert NEW[:20] not in err


def test_rekey_without_keys_exits_2_with_one_line(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_env)  # a database to rekey (a missing one is its own exit 2)
    code, out, err = run_cli(monkeypatch, capsys, "accounts", "rekey")

    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1
    assert "IGSYNC_TOKEN_KEYS is not set" in err


def test_rekey_on_the_command_line_rotates_and_reports_in_json(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain, old = secret(), secret()
    seed(cli_env, (None, plain, "101"), (OLD, old, "102"))
    monkeypatch.setenv("IGSYNC_TOKEN_KEYS", f"{NEW},{OLD}")

    code, out, err = run_cli(monkeypatch, capsys, "accounts", "rekey", "--dry-run", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "dry_run": True,
        "keys": 2,
        "encrypted": 1,
        "reencrypted": 1,
        "current": 0,
        "failed": [],
    }
    code, out, err = run_cli(monkeypatch, capsys, "accounts", "rekey")
    assert code == 0, err
    assert out.strip() == (
        "rekey: 1 plain token(s) encrypted, 1 re-encrypted from an older key, 0 already"
        " current, 0 failed"
    )
    monkeypatch.setenv("IGSYNC_TOKEN_KEYS", NEW)  # the old key retired
    code, out, err = run_cli(monkeypatch, capsys, "accounts", "list", "--json")
    assert code == 0, err
    assert {a["status"] for a in json.loads(out)} == {"ok"}
    for leaked in (plain, old, NEW, OLD):
        assert leaked not in out + err


def test_accounts_add_stores_the_token_encrypted(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import sqlite3

    token = secret()
    monkeypatch.setenv("IGSYNC_TOKEN_KEYS", NEW)
    monkeypatch.setattr("sys.stdin", io.StringIO(token))
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "accounts",
        "add",
        "--user",
        str(ALICE),
        "--account-id",
        "17841400000000042",
        "--expires-at",
        "2099-01-01T00:00:00Z",
        "--token-stdin",
    )
    assert code == 0, err
    assert f"…{token[-4:]}" in out
    with sqlite3.connect(cli_env) as conn:
        [(stored,)] = conn.execute("select access_token from user_tokens").fetchall()
    assert is_sealed(stored)
    assert token not in stored
    assert TokenKeys(NEW).decrypt(stored) == (token, "current_key")


# --- a refresh and a fetch with encrypted tokens (the simulator, in-process) ---


async def test_a_refresh_stores_the_new_token_with_the_first_key_and_fetch_uses_it(
    store: Store, kit: StoreKit
) -> None:
    from datetime import timedelta

    from igsync.catalogue import DEFAULT_METRICS
    from igsync.graph import GraphClient
    from igsync.simulator import SimAccount, Simulator
    from igsync.sync import account_from_token, fetch_account
    from igsync.tokens import AppCredentials, refresh_expiring_tokens
    from igsync.window import plan_window

    account = "17841400000000001"
    now = datetime.now(UTC)
    sim = Simulator([SimAccount(account, tz="America/Los_Angeles")], strict_tokens=True)
    old = sim.issue_token(
        account, issued_at=now - timedelta(days=50), expires_at=now + timedelta(days=3)
    )
    use_keys(TokenKeys(OLD))
    await store.save_token(
        UserToken(
            u_id=ALICE,
            account_id=account,
            access_token=SecretStr(old),
            expires_at=now + timedelta(days=3),
            last_refreshed_at=now - timedelta(days=50),
        )
    )
    use_keys(TokenKeys(f"{NEW},{OLD}"))  # mid-rotation: the stored token is under OLD
    graph = GraphClient(
        base_url="http://sim",
        instagram_url="https://graph.instagram.com",
        version="v27.0",
        transport=sim.transport(),
    )

    async with graph as g:
        report = await refresh_expiring_tokens(
            g, store, app=AppCredentials("sim-app-id", "sim-app-secret"), within=timedelta(days=7)
        )
        assert report.failed == []
        assert len(report.refreshed) == 1
        [token] = await store.list_tokens()
        assert isinstance(token, UserToken)
        assert token.at_rest == "current_key"
        new = token.access_token.get_secret_value()
        assert new != old
        assert sim.token_info(new) is not None
        stored = (await stored_values(kit))[account]
        assert is_sealed(stored)
        assert new not in stored
        assert TokenKeys(NEW).decrypt(stored) == (new, "current_key")

        result = await fetch_account(
            g, store, account_from_token(token), metrics=DEFAULT_METRICS, plan=plan_window(now)
        )
    assert result.errors == []
    assert result.total_inserted > 0
