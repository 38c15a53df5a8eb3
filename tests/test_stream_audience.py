"""The audience stream against Meta's real answer bodies (graph_samples): rows, days, failures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import httpx
import pytest

from igsync.errors import ErrorKind
from igsync.graph import GraphClient
from igsync.local_day import LocalClock, utc_offset
from igsync.models import Account
from igsync.streams import choose_streams
from igsync.window import plan_window
from samples import sample

pytestmark = pytest.mark.anyio

NOW = datetime(2024, 1, 16, 15, 0, tzinfo=UTC)
TOKEN = "EAAJ-audience-test-token-0123456789abcdef"
ACCOUNT = Account(uuid4(), "17841400000000001", TOKEN)


def meta(request: httpx.Request) -> httpx.Response:
    """Meta's answers: the demographics sample for age,gender, an error for city, the hours."""
    params = request.url.params
    if params["metric"] == "online_followers":
        assert params["period"] == "lifetime"
        return httpx.Response(200, json=sample("insights_lifetime_online_followers_airbyte.json"))
    assert (params["metric_type"], params["period"]) == ("total_value", "lifetime")
    assert params["timeframe"] in ("this_week", "this_month")
    assert "since" not in params
    if params["breakdown"] == "city":
        body = sample("error_100_since_param_not_valid_airbyte_fixture.json")
        return httpx.Response(400, json=body)
    if params["breakdown"] == "age,gender" and params["metric"] == "follower_demographics":
        body = sample("insights_total_value_follower_demographics_age_gender_airbyte.json")
        return httpx.Response(200, json=body)
    return httpx.Response(200, json={"data": []})  # no data is no rows, never zeros


async def collect() -> tuple[object, LocalClock]:
    (stream,) = choose_streams(["audience"])
    clock = LocalClock()
    transport = httpx.MockTransport(meta)
    async with GraphClient(base_url="http://meta", version="v27.0", transport=transport) as graph:
        out = await stream.collect(graph, ACCOUNT, plan_window(NOW, days=3), NOW, clock)
    return out, clock


async def test_every_breakdown_value_keeps_all_its_dimensions() -> None:
    out, clock = await collect()
    rows = [r for r in out.audience if r.timeframe == "this_month"]  # type: ignore[attr-defined]
    assert [(r.breakdown, r.dimension_values, r.value) for r in rows] == [
        ("age,gender", "18-24,F", 10),
        ("age,gender", "18-24,M", 7),
        ("age,gender", "18-24,U", 1),
        ("age,gender", "25-34,F", 25),
        ("age,gender", "25-34,M", 19),
        ("age,gender", "25-34,U", 2),
    ]
    # captured on the account's own day: online_followers' 07:00Z end_time says UTC-7
    assert clock.offset == timedelta(hours=-7)
    assert {r.captured_on for r in out.audience} == {date(2024, 1, 16)}  # type: ignore[attr-defined]


async def test_online_followers_keeps_the_24_hours_of_its_day() -> None:
    out, _ = await collect()
    (row,) = out.rows  # type: ignore[attr-defined]
    assert (row.metric, row.period, row.value) == ("online_followers", "lifetime", None)
    assert row.end_time == datetime(2024, 1, 15, 7, tzinfo=UTC)
    assert row.local_date == date(2024, 1, 14)
    assert row.value_json["0"] == 100
    assert len(row.value_json) == 24


async def test_a_refused_breakdown_fails_its_metric_only() -> None:
    out, _ = await collect()
    outcomes = out.metrics  # type: ignore[attr-defined]
    assert outcomes["online_followers"].rows == 1
    for name in ("follower_demographics", "engaged_audience_demographics"):
        assert outcomes[name].error == ErrorKind.INVALID
        assert outcomes[name].message.startswith(f"{name}: (#100)")
    # the breakdowns that answered are kept, and counted, beside the failure
    assert outcomes["follower_demographics"].rows == 12


@pytest.mark.parametrize(
    ("end_time", "offset"),
    [
        ("2026-11-20T08:00:00+00:00", -8),
        ("2026-11-20T18:30:00+00:00", 5.5),
        ("2026-11-20T00:00:00+00:00", 0),
        ("2026-11-20T15:00:00+00:00", 9),
    ],
)
def test_a_day_end_tells_the_accounts_utc_offset(end_time: str, offset: float) -> None:
    assert utc_offset(datetime.fromisoformat(end_time)) == timedelta(hours=offset)
