"""Every stream end to end over loopback: the simulator serves both of Meta's hosts on real
ports, igsync fetches and stores on SQLite and on a real PostgreSQL server, and what is stored
is exactly what the simulator served (asked of it independently); a re-run duplicates nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from igsync.graph import GraphClient
from igsync.local_day import day_label
from igsync.models import Account, FetchResult
from igsync.simulator import Served, SimAccount, Simulator, serve_in_thread
from igsync.store import Store, open_store
from igsync.streams import MediaStream, Stream, choose_streams, stories_stream
from igsync.sync import RunContext, sync_account
from igsync.window import plan_window

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
LA = "17841400000000001"
TOKEN = "EAAJ-streams-e2e-token-0123456789abcdef"


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator([SimAccount(LA, tz="America/Los_Angeles")], now=lambda: NOW)


@pytest.fixture(scope="module")
def served(sim: Simulator) -> Iterator[Served]:
    with serve_in_thread(sim) as served:
        yield served


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'igsync.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    async with open_store(url) as opened:
        yield opened


async def run(served: Served, store: Store, streams: list[Stream], user: UUID) -> FetchResult:
    async with GraphClient(
        base_url=served.graph_url, instagram_url=served.instagram_url, version="v27.0", batch=True
    ) as graph:
        ctx = RunContext(graph, store, streams, plan_window(NOW, days=3), now=NOW)
        return await sync_account(ctx, Account(user, LA, TOKEN))


def ask(served: Served, path: str, **params: str) -> Any:
    """The simulator's answer to one call, asked without igsync."""
    answer = httpx.get(
        f"{served.graph_url}/v27.0/{path}",
        params=params,
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    answer.raise_for_status()
    return answer.json()


async def test_audience_stores_every_breakdown_value_the_simulator_served(
    served: Served, store: Store
) -> None:
    user = uuid4()
    result = await run(served, store, choose_streams(["audience"]), user)
    assert result.success, result.errors
    expected = set()
    for metric in (
        "follower_demographics",
        "engaged_audience_demographics",
        "reached_audience_demographics",
    ):
        for breakdown in ("age,gender", "country", "city"):
            for timeframe in ("this_week", "this_month"):
                body = ask(
                    served,
                    f"{LA}/insights",
                    metric=metric,
                    metric_type="total_value",
                    period="lifetime",
                    breakdown=breakdown,
                    timeframe=timeframe,
                )
                for item in body["data"]:
                    for part in item["total_value"]["breakdowns"]:
                        keys = ",".join(part["dimension_keys"])
                        for r in part["results"]:
                            values = ",".join(r["dimension_values"])
                            expected.add((metric, timeframe, keys, values, r["value"]))
    stored = await store.read_audience(u_id=user)
    assert len(stored) == len(expected) > 100
    assert {
        (r.metric, r.timeframe, r.breakdown, r.dimension_values, r.value) for r in stored
    } == expected
    assert any(r.breakdown == "age,gender" and r.dimension_values.count(",") == 1 for r in stored)
    # captured on the account's own day: 07:00 in Los Angeles is 15:00 UTC
    assert {r.captured_on for r in stored} == {NOW.date()}
    online = [r for r in await store.read_insights(u_id=user) if r.metric == "online_followers"]
    assert [r.local_date for r in online] == [day_label(r.end_time) for r in online]
    assert len(online) == 3
    assert all(len(r.value_json) == 24 for r in online)

    again = await run(served, store, choose_streams(["audience"]), user)
    assert again.success, again.errors
    assert len(await store.read_audience(u_id=user)) == len(expected)  # nothing duplicated


async def test_media_pages_through_the_edge_and_snapshots_each_objects_insights(
    served: Served, sim: Simulator, store: Store
) -> None:
    user = uuid4()
    stream = MediaStream(page_size=4)  # several pages for the simulator's ~15 recent posts
    result = await run(served, store, [stream], user)
    bound = NOW - timedelta(days=30)
    listed = [m for m in sim.media(LA) if m.timestamp >= bound]
    media = await store.read_media(u_id=user)
    assert sorted(m.media_id for m in media) == sorted(m.media_id for m in listed)
    assert len(listed) > 2 * 4  # the walk crossed pages
    assert {m.media_product_type for m in media} >= {"FEED", "REELS"}
    insights = await store.read_media_insights(u_id=user)
    by_media: dict[str, dict[str, int | None]] = {}
    for row in insights:
        by_media.setdefault(row.media_id, {})[row.metric] = row.value
    assert {r.captured_on for r in insights} == {NOW.date()}
    some = next(m for m in listed if m.media_product_type == "REELS")
    served_values = ask(served, f"{some.media_id}/insights", metric="reach,likes")
    assert {i["name"]: i["values"][0]["value"] for i in served_values["data"]} == {
        k: v for k, v in by_media[some.media_id].items() if k in ("reach", "likes")
    }
    # a FEED video refuses most metrics: skipped for its type, noted once, not a failure
    assert result.success, result.errors
    videos = [
        m.media_id for m in listed if (m.media_type, m.media_product_type) == ("VIDEO", "FEED")
    ]
    assert videos, "the simulator's timeline has FEED videos in the window"
    for video in videos:
        assert set(by_media[video]) == {"reach", "saved"}
    (refusals,) = [n for n in result.notes if n.startswith("FEED VIDEO media:")]  # one line
    assert refusals.startswith("FEED VIDEO media: Meta does not serve ")
    assert refusals.endswith("; skipped for this type")
    assert "views" in refusals
    assert "reach" not in refusals
    again = await run(served, store, [stream], user)
    assert again.success, again.errors
    assert len(await store.read_media_insights(u_id=user)) == len(insights)
    assert len(await store.read_media(u_id=user)) == len(media)


async def test_media_from_before_the_business_conversion_is_noted_not_failed(
    served: Served, sim: Simulator, store: Store
) -> None:
    user = uuid4()
    since = (NOW - timedelta(days=120)).date()  # a backfill reaching the oldest posts
    async with GraphClient(
        base_url=served.graph_url, instagram_url=served.instagram_url, version="v27.0", batch=True
    ) as graph:
        ctx = RunContext(graph, store, [MediaStream()], plan_window(NOW, since=since), now=NOW)
        result = await sync_account(ctx, Account(user, LA, TOKEN))
    assert result.success, result.errors
    everything = sim.media(LA)
    assert len(await store.read_media(u_id=user)) == len(everything)
    with_insights = {r.media_id for r in await store.read_media_insights(u_id=user)}
    assert len(with_insights) == len(everything) - 2  # the simulator's two oldest posts
    assert any("2 object(s) posted before the account became a business" in n for n in result.notes)


async def test_stories_keep_only_the_live_ones(
    served: Served, sim: Simulator, store: Store
) -> None:
    user = uuid4()
    result = await run(served, store, [stories_stream()], user)
    assert result.success, result.errors
    media = await store.read_media(u_id=user)
    assert sorted(m.media_id for m in media) == sorted(s.media_id for s in sim.stories(LA))
    assert {m.media_product_type for m in media} == {"STORY"}
    metrics = {r.metric for r in await store.read_media_insights(u_id=user)}
    assert {"reach", "replies", "navigation"} <= metrics


async def test_a_lone_call_is_awaited_in_its_callers_task_and_many_run_at_once() -> None:
    from igsync.streams._base import gather_calls

    started, everyone = 0, asyncio.Event()

    async def task_of(expected: int) -> asyncio.Task[Any] | None:
        nonlocal started
        started += 1
        if started == expected:
            everyone.set()
        await everyone.wait()  # one by one, the first would wait forever
        return asyncio.current_task()

    caller = asyncio.current_task()
    assert await gather_calls([task_of(1)]) == [caller]
    started, everyone = 0, asyncio.Event()
    many = await asyncio.wait_for(gather_calls([task_of(3) for _ in range(3)]), 10)
    assert caller not in many
    assert len(set(many)) == 3
