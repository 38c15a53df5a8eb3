"""The stream tables (audience, media, media insights) and the modelled views, on every store.

The same tests run against each kit of tests/store_kits.py (SQLite, PostgreSQL by arrays and by
COPY, the fake Supabase), and for each of the three tables through one `Case`: how to make a
row for a key, and which Store methods write and read it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel

from fake_postgrest import FakePostgrest
from igsync.errors import StoreError
from igsync.models import AudienceRow, InsightRow, MediaInsightRow, MediaRow
from igsync.store import Store
from store_kits import StoreKit

pytestmark = pytest.mark.anyio

ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
BOB = UUID("00000000-0000-4000-8000-000000000b0b")
DAY0 = date(2026, 11, 20)
POSTED = datetime(2026, 11, 18, 17, 30, tzinfo=UTC)


def audience(n: int = 0, value: int | None = 1, **fields: Any) -> AudienceRow:
    """Key n: the n-th city of one breakdown, captured on DAY0."""
    base = {
        "u_id": ALICE,
        "account_id": "1784001",
        "metric": "follower_demographics",
        "timeframe": "this_month",
        "breakdown": "city",
        "dimension_values": f"City {n}",
        "captured_on": DAY0,
        "value": value,
    }
    return AudienceRow(**(base | fields))


def media(n: int = 0, value: int | None = 1, **fields: Any) -> MediaRow:
    """Key n: the n-th media object; `value` is its like_count."""
    base = {
        "u_id": ALICE,
        "account_id": "1784001",
        "media_id": f"1790{n:04d}",
        "media_type": "IMAGE",
        "media_product_type": "FEED",
        "timestamp": POSTED + timedelta(hours=n),
        "permalink": f"https://www.instagram.com/p/{n}/",
        "like_count": value,
        "comments_count": 2,
    }
    return MediaRow(**(base | fields))


def media_insight(n: int = 0, value: int | None = 1, **fields: Any) -> MediaInsightRow:
    """Key n: the n-th media object's reach, captured on DAY0."""
    base = {
        "u_id": ALICE,
        "account_id": "1784001",
        "media_id": f"1790{n:04d}",
        "metric": "reach",
        "captured_on": DAY0,
        "value": value,
    }
    return MediaInsightRow(**(base | fields))


@dataclass(frozen=True)
class Case:
    """One stream table as the contract sees it."""

    table: str
    #: what StoreError messages call its rows
    noun: str
    #: a row for key n holding `value` in its value column (like_count for media)
    make: Callable[..., BaseModel]
    upsert: Callable[[Store, Sequence[Any]], Awaitable[int]]
    read: Callable[..., Awaitable[list[Any]]]
    #: the value a stored row holds
    value: Callable[[Any], int | None]
    #: a text column a row can carry a marker in
    text_column: str


CASES = [
    Case(
        "instagram_audience",
        "audience rows",
        audience,
        lambda s, rows: s.upsert_audience(rows),
        lambda s, **f: s.read_audience(**f),
        lambda r: r.value,
        "dimension_values",
    ),
    Case(
        "instagram_media",
        "media rows",
        media,
        lambda s, rows: s.upsert_media(rows),
        lambda s, **f: s.read_media(**f),
        lambda r: r.like_count,
        "permalink",
    ),
    Case(
        "instagram_media_insights",
        "media insight rows",
        media_insight,
        lambda s, rows: s.upsert_media_insights(rows),
        lambda s, **f: s.read_media_insights(**f),
        lambda r: r.value,
        "metric",
    ),
]


@pytest.fixture(params=CASES, ids=lambda c: c.table)
def case(request: pytest.FixtureRequest) -> Case:
    param: Case = request.param
    return param


# --- every stream table ---


async def test_upsert_inserts_rows_and_reads_them_back_unchanged(store: Store, case: Case) -> None:
    sent = [case.make(2, 20), case.make(0, 10), case.make(1, 11)]

    assert await case.upsert(store, sent) == 3

    assert await case.read(store) == sorted(sent, key=lambda r: r.key)


async def test_upsert_of_nothing_confirms_nothing(store: Store, case: Case) -> None:
    assert await case.upsert(store, []) == 0


async def test_reupsert_returns_the_count_adds_no_row_and_the_last_value_wins(
    store: Store, case: Case
) -> None:
    await case.upsert(store, [case.make(n, n) for n in range(4)])

    assert await case.upsert(store, [case.make(n, 100 + n) for n in range(4)]) == 4

    assert [case.value(r) for r in await case.read(store)] == [100, 101, 102, 103]


async def test_duplicate_keys_in_one_batch_collapse_and_the_last_wins(
    store: Store, case: Case
) -> None:
    batch = [case.make(0, 1), case.make(1, 5), case.make(0, 2), case.make(0, 3)]

    assert await case.upsert(store, batch) == 2

    assert [case.value(r) for r in await case.read(store)] == [3, 5]


async def test_a_store_that_confirms_fewer_rows_raises_and_writes_nothing(
    store: Store, kit: StoreKit, case: Case
) -> None:
    await case.upsert(store, [case.make(0, 1)])
    await kit.drop_rows_silently("refused", case.table)
    batch = [case.make(0, 99), case.make(1, 2), case.make(0, 5, account_id="refused")]

    with pytest.raises(StoreError, match=f"confirmed 2 of 3 {case.noun}"):
        await case.upsert(store, batch)

    if isinstance(kit, FakePostgrest):
        return  # each PostgREST request commits on its own (test_store_contract says more)
    assert [case.value(r) for r in await case.read(store)] == [1]


async def test_read_filters_isolate_users_and_accounts(store: Store, case: Case) -> None:
    await case.upsert(
        store,
        [
            case.make(0, 1, u_id=ALICE, account_id="a1"),
            case.make(0, 2, u_id=ALICE, account_id="a2"),
            case.make(0, 3, u_id=BOB, account_id="a1"),  # same account id, another user
        ],
    )

    async def seen(**filters: Any) -> set[int | None]:
        return {case.value(r) for r in await case.read(store, **filters)}

    assert await seen(u_id=ALICE) == {1, 2}
    assert await seen(account_id="a1") == {1, 3}
    assert await seen(u_id=BOB, account_id="a1") == {3}
    assert await seen(u_id=uuid4()) == set()


async def test_a_refused_row_is_not_echoed_in_the_error(store: Store, case: Case) -> None:
    # PostgreSQL's "DETAIL: Failing row contains (...)" would print every column of the row.
    marker = f"marker-{uuid4().hex}"
    bad = case.make(0).model_copy(update={"account_id": None, case.text_column: marker})

    with pytest.raises(StoreError) as caught:
        await case.upsert(store, [bad])

    assert "account_id" in str(caught.value)
    assert marker not in str(caught.value)
    assert await case.read(store) == []


# --- what each table keeps ---


async def test_audience_snapshots_of_other_days_are_kept_beside_each_other(
    store: Store, kit: StoreKit
) -> None:
    two_dims = {"breakdown": "age,gender", "dimension_values": "18-24,F"}
    days = [
        audience(value=10 + d, captured_on=DAY0 + timedelta(days=d), **two_dims) for d in (0, 1)
    ]

    assert await store.upsert_audience(days) == 2

    assert [(r.captured_on, r.value) for r in await store.read_audience()] == [
        (DAY0, 10),
        (DAY0 + timedelta(days=1), 11),
    ]
    assert await kit.sql(
        "select breakdown, dimension_values, cast(captured_on as text) from instagram_audience"
        " order by captured_on"
    ) == [("age,gender", "18-24,F", "2026-11-20"), ("age,gender", "18-24,F", "2026-11-21")]


async def test_media_timestamps_are_one_utc_instant_and_nulls_stay_null(store: Store) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    story = MediaRow(
        u_id=ALICE,
        account_id="1784001",
        media_id="story-1",
        media_product_type="STORY",
        timestamp=datetime(2026, 11, 18, 23, 0, tzinfo=kolkata),
    )

    assert await store.upsert_media([story]) == 1

    [stored] = await store.read_media()
    assert stored == story
    assert stored.timestamp == datetime(2026, 11, 18, 17, 30, tzinfo=UTC)
    assert stored.timestamp is not None
    assert stored.timestamp.utcoffset() == timedelta(0)
    assert (stored.media_type, stored.like_count, stored.permalink) == (None, None, None)


async def test_media_last_value_wins_even_a_null_and_updated_at_moves(
    store: Store, kit: StoreKit
) -> None:
    await kit.sql(
        "insert into instagram_media (u_id, account_id, media_id, like_count, updated_at)"
        f" values ('{ALICE}', '1784001', '17900000', 7, '2020-01-01T00:00:00+00:00')"
    )

    assert await store.upsert_media([media(0, like_count=None, comments_count=None)]) == 1

    [stored] = await store.read_media()
    assert (stored.like_count, stored.comments_count) == (None, None)
    [(updated_at,)] = await kit.sql("select cast(updated_at as text) from instagram_media")
    assert not updated_at.startswith("2020")


async def test_media_insight_values_and_json_round_trip(store: Store, kit: StoreKit) -> None:
    breakdown = {"action_type": {"bio_link_clicked": 3, "call": 0}, "ok": True, "n": [1, 2.5]}
    sent = [
        media_insight(0, None),  # no data from Meta: never a made-up 0
        media_insight(1, 15, metric="profile_activity", value_json=breakdown),
        media_insight(2, 4, value_json=["a", None]),
        media_insight(2, 5, captured_on=DAY0 + timedelta(days=1)),  # growth over time
    ]

    assert await store.upsert_media_insights(sent) == 4

    assert await store.read_media_insights() == sorted(sent, key=lambda r: r.key)
    assert await kit.sql(
        "select media_id, cast(captured_on as text) from instagram_media_insights"
        " order by media_id, captured_on"
    ) == [
        ("17900000", "2026-11-20"),
        ("17900001", "2026-11-20"),
        ("17900002", "2026-11-20"),
        ("17900002", "2026-11-21"),
    ]


# --- the modelled views (read with SQL, as reports do) ---


def insight(metric: str, end_time: datetime, value: int | None, **fields: Any) -> InsightRow:
    base = {
        "u_id": ALICE,
        "account_id": "la",
        "metric": metric,
        "metric_type": "total_value",
        "period": "day",
        "end_time": end_time,
        "value": value,
    }
    return InsightRow(**(base | fields))


async def test_instagram_daily_has_one_row_per_account_and_local_date(
    store: Store, kit: StoreKit
) -> None:
    la_day1 = datetime(2026, 11, 20, 8, tzinfo=UTC)  # Los Angeles: 2026-11-19
    la_day2 = la_day1 + timedelta(days=1)
    kolkata = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)  # Kolkata: 2026-11-20
    await store.upsert_insights(
        [
            insight("reach", la_day1, 100),
            insight("profile_views", la_day1, 7),
            insight("accounts_engaged", la_day1, 12),
            insight("follower_count", la_day1, 500),
            insight("views", la_day1, 900),
            insight("website_clicks", la_day1, 3),  # a column since migration 7
            insight("reach", la_day2, 110),
            insight("profile_views", la_day2, None),  # Meta had no value: null, not 0
            insight("reach", kolkata, 40, account_id="kolkata"),
            insight("reach", kolkata, 41, account_id="kolkata", u_id=BOB),
            insight("reach", la_day1, 1, account_id="lifetime", period="lifetime"),  # no local date
            insight("likes", la_day1, 3, account_id="other"),  # a day of one metric
            insight("online_followers", la_day1, 9, account_id="other"),  # no column
        ]
    )

    daily = await kit.sql(
        "select cast(u_id as text), account_id, cast(local_date as text), reach, profile_views,"
        " accounts_engaged, follower_count, views, website_clicks, likes from instagram_daily"
        " order by account_id, local_date, u_id"
    )

    alice, bob = str(ALICE), str(BOB)
    assert daily == [
        (bob, "kolkata", "2026-11-20", 41, None, None, None, None, None, None),
        (alice, "kolkata", "2026-11-20", 40, None, None, None, None, None, None),
        (alice, "la", "2026-11-19", 100, 7, 12, 500, 900, 3, None),
        (alice, "la", "2026-11-20", 110, None, None, None, None, None, None),
        (alice, "other", "2026-11-19", None, None, None, None, None, None, 3),
    ]


async def test_instagram_audience_latest_shows_each_breakdowns_newest_snapshot(
    store: Store, kit: StoreKit
) -> None:
    older, newer = DAY0, DAY0 + timedelta(days=1)
    await store.upsert_audience(
        [
            audience(0, 10, captured_on=older),
            audience(1, 20, captured_on=older),  # out of the top values by the newer day
            audience(0, 11, captured_on=newer),
            audience(2, 30, captured_on=newer),
            # another breakdown, whose newest snapshot is the older day
            audience(0, 5, breakdown="age", dimension_values="18-24", captured_on=older),
            # another account, and the same breakdown in another timeframe
            audience(0, 7, account_id="other", captured_on=older),
            audience(0, 8, timeframe="this_week", captured_on=newer),
        ]
    )

    latest = await kit.sql(
        "select account_id, timeframe, breakdown, dimension_values, cast(captured_on as text),"
        " value from instagram_audience_latest"
        " order by account_id, timeframe, breakdown, dimension_values"
    )

    assert latest == [
        ("1784001", "this_month", "age", "18-24", "2026-11-20", 5),
        ("1784001", "this_month", "city", "City 0", "2026-11-21", 11),
        ("1784001", "this_month", "city", "City 2", "2026-11-21", 30),
        ("1784001", "this_week", "city", "City 0", "2026-11-21", 8),
        ("other", "this_month", "city", "City 0", "2026-11-20", 7),
    ]
