"""The store reads behind `doctor`, sync-all's empty-run check and `accounts list` (issue 12),
on every store: count_tokens, schema_version, latest_sync_logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from pydantic import SecretStr

from igsync.models import SyncLog, UserToken
from igsync.store import Store
from igsync.store.schema import LATEST

pytestmark = pytest.mark.anyio

ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
BOB = UUID("00000000-0000-4000-8000-000000000b0b")
T0 = datetime(2026, 11, 20, 6, tzinfo=UTC)


def token(u_id: UUID, account_id: str, platform: str = "instagram") -> UserToken:
    secret = SecretStr(f"EAAJ-doctor-secret-{account_id}-Zq81kLmN0pQr")
    return UserToken(u_id=u_id, account_id=account_id, access_token=secret, platform=platform)  # type: ignore[arg-type]


def log(u_id: UUID | None, account_id: str | None, hours: int, status: str, rows: int) -> SyncLog:
    return SyncLog(
        run_id=uuid4(),
        u_id=u_id,
        account_id=account_id,
        started_at=T0 + timedelta(hours=hours),
        finished_at=T0 + timedelta(hours=hours, seconds=3),
        status=status,  # type: ignore[arg-type]
        total_inserted=rows,
        total_errors=0 if status == "ok" else 1,
        errors=[] if status == "ok" else ["reach: failed"],
        streams=["account", "media"],
    )


async def test_count_tokens_counts_instagram_rows_only(store: Store) -> None:
    assert await store.count_tokens() == 0
    for t in (token(ALICE, "1784001"), token(ALICE, "1784002"), token(BOB, "1784003")):
        await store.save_token(t)
    await store.save_token(token(BOB, "yt-1", platform="youtube"))
    assert await store.count_tokens() == 3
    assert await store.count_tokens(platform="youtube") == 1


async def test_schema_version_is_the_latest_once_open(store: Store) -> None:
    assert await store.schema_version() == LATEST


async def test_latest_sync_logs_gives_each_asked_account_its_newest_log(store: Store) -> None:
    for entry in (
        log(ALICE, "1784001", 0, "ok", 12),
        log(ALICE, "1784001", 1, "ok", 11),
        log(ALICE, "1784001", 2, "partial", 9),  # the newest (last written) of this account
        log(ALICE, "1784002", 0, "failed", 0),
        log(BOB, "1784003", 5, "ok", 4),  # not asked for
        log(None, None, 9, "failed", 0),  # a run-level failure belongs to no account
    ):
        await store.write_sync_logs([entry])
    asked = [(str(ALICE), "1784001"), (str(ALICE), "1784002"), (str(ALICE), "never-synced")]
    latest = await store.latest_sync_logs(asked)
    assert set(latest) == {(str(ALICE), "1784001"), (str(ALICE), "1784002")}
    newest = latest[(str(ALICE), "1784001")]
    assert (newest.started_at, newest.status, newest.total_inserted) == (
        T0 + timedelta(hours=2),
        "partial",
        9,
    )
    assert newest.errors == ["reach: failed"]
    assert newest.streams == ["account", "media"]
    assert latest[(str(ALICE), "1784002")].status == "failed"
    assert await store.latest_sync_logs([]) == {}


async def test_latest_sync_logs_pages_back_through_the_newest_logs_only(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 2 logs and a scan of at most 6: an account whose log is older than the newest 6
    is left out (the read never walks the whole history), the others are found across pages."""
    import igsync.store.postgres
    import igsync.store.sqlite
    import igsync.store.supabase

    for module in (igsync.store.sqlite, igsync.store.postgres):
        monkeypatch.setattr(module, "SYNC_LOG_PAGE", 2)
        monkeypatch.setattr(module, "SYNC_LOG_SCAN", 6)
    monkeypatch.setattr(igsync.store.supabase, "PAGE_ROWS", 2)
    monkeypatch.setattr(igsync.store.supabase, "SYNC_LOG_SCAN", 6)
    await store.write_sync_logs([log(BOB, "old", 0, "ok", 1)])  # the 7th newest
    for hour in range(1, 7):
        await store.write_sync_logs([log(ALICE, f"acct-{hour % 3}", hour, "ok", hour)])
    asked = [(str(ALICE), f"acct-{i}") for i in range(3)] + [(str(BOB), "old")]
    latest = await store.latest_sync_logs(asked)
    assert {key[1]: found.total_inserted for key, found in latest.items()} == {
        "acct-1": 4,
        "acct-2": 5,
        "acct-0": 6,
    }
