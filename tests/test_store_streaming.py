"""`Store.stream_rows` on every store kit: the rows `read_*` gives, filtered by user and local
dates, in key order, across many batches (or PostgREST pages), and an early stop is clean."""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest

from igsync.models import InsightRow
from igsync.store import Store, postgres, sqlite
from igsync.store.streaming import RowFilter
from igsync.store.tables import INSIGHTS, MEDIA

pytestmark = pytest.mark.anyio

USERS = (UUID("f0000000-0000-4000-8000-000000000001"), UUID("0f000000-0000-4000-8000-000000000002"))


def rows() -> list[InsightRow]:
    start = datetime(2026, 1, 1, 8, tzinfo=UTC)  # local midnight in Los Angeles
    return [
        InsightRow(
            u_id=user,
            account_id=account,
            metric=metric,
            metric_type="time_series",
            period="day",
            end_time=start + timedelta(days=day),
            local_date=date(2026, 1, 1) + timedelta(days=day - 1),
            value=None if day % 7 == 0 else day,
            value_json={"day": day} if metric == "online_followers" else None,
        )
        for user in USERS
        for account in ("17841400000000009", "17841400000000010")
        for metric in ("reach", "online_followers")
        for day in range(160)
    ]


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # many round trips out of a few rows; Supabase pages by max-rows (1000) already
    monkeypatch.setattr(sqlite, "STREAM_BATCH", 7)
    monkeypatch.setattr(postgres, "STREAM_BATCH", 7)


async def test_stream_rows_gives_the_filtered_rows_in_key_order(store: Store) -> None:
    written = rows()
    await store.upsert_insights(written)
    everything = [r async for r in store.stream_rows(INSIGHTS)]
    assert everything == sorted(written, key=lambda r: (str(r.u_id), *r.key[1:]))

    chosen = RowFilter(u_id=USERS[1], since=date(2026, 2, 1), until=date(2026, 2, 28))
    found = [r async for r in store.stream_rows(INSIGHTS, rows=chosen)]
    expected = [
        r
        for r in everything
        if r.u_id == USERS[1]
        and r.local_date
        and date(2026, 2, 1) <= r.local_date <= date(2026, 2, 28)
    ]
    assert found == expected
    assert len(found) == 2 * 2 * 28

    by_day = [r async for r in store.stream_rows(INSIGHTS, order=("local_date", "account_id"))]
    assert [r.local_date for r in by_day] == sorted(r.local_date for r in written)


async def test_an_early_stop_releases_the_store(store: Store) -> None:
    await store.upsert_insights(rows())
    async with aclosing(store.stream_rows(INSIGHTS)) as found:
        async for _ in found:
            break
    # the store still reads and writes after the abandoned stream
    assert len(await store.read_insights(u_id=USERS[0])) == 2 * 2 * 160
    assert await store.upsert_insights(rows()[:3]) == 3


async def test_a_date_bound_on_a_table_without_dates_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="no local date"):
        _ = [r async for r in store.stream_rows(MEDIA, rows=RowFilter(since=date(2026, 1, 1)))]
    with pytest.raises(ValueError, match="no column"):
        _ = [r async for r in store.stream_rows(MEDIA, order=("u_id; drop table x",))]
