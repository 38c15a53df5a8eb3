"""The simulator serves what the audience, media and story streams need, as Meta does.

Shapes are checked against the samples in tests/fixtures/graph_samples/ (named next to each
test), so these tests hold the simulator to Meta's bodies, not to itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from igsync.simulator import SimAccount, Simulator
from samples import sample

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LA = "17841400000000001"  # America/Los_Angeles, 1,500 followers
FEW = "17841400000000002"  # 99 followers
EMPTY = "17841400000000003"  # no insights at all
TOKEN = "EAAtesttoken0123456789"
IG_TOKEN = "IGAAtesttoken0123456789"
ENVELOPE_KEYS = ["message", "type", "code", "fbtrace_id"]
DEMOGRAPHICS = {"metric_type": "total_value", "period": "lifetime", "timeframe": "this_week"}


def unix(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def make_sim(now: datetime = NOW) -> Simulator:
    accounts = [
        SimAccount(LA, tz="America/Los_Angeles"),
        SimAccount(FEW, followers=99),
        SimAccount(EMPTY, empty=True),
    ]
    return Simulator(accounts, now=lambda: now)


@pytest.fixture
def sim() -> Simulator:
    return make_sim()


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://graph.facebook.com"
    ) as client:
        yield client


async def get(
    client: httpx.AsyncClient, path: str, *, token: str = TOKEN, **params: str
) -> httpx.Response:
    return await client.get(
        f"/v27.0/{path}", params=params, headers={"Authorization": f"Bearer {token}"}
    )


async def body(client: httpx.AsyncClient, path: str, **params: str) -> Any:
    response = await get(client, path, **params)
    assert response.status_code == 200, response.text
    return response.json()


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert list(error)[:3] == ENVELOPE_KEYS[:3]
    return error


# -- audience: demographics ----------------------------------------------------------------------


async def test_demographics_answer_in_the_shape_of_the_airbyte_sample(
    client: httpx.AsyncClient,
) -> None:
    expected = sample("insights_total_value_follower_demographics_age_gender_airbyte.json")
    want = expected["data"][0]
    got = await body(
        client,
        f"{LA}/insights",
        metric="follower_demographics",
        breakdown="age,gender",
        **DEMOGRAPHICS,
    )
    assert list(got) == list(expected)  # no paging: demographics take no since/until
    item = got["data"][0]
    assert list(item) == list(want)
    assert (item["name"], item["period"]) == ("follower_demographics", "lifetime")
    assert item["id"] == f"{LA}/insights/follower_demographics/lifetime"
    assert list(item["total_value"]) == list(want["total_value"])  # breakdowns, no value
    breakdown = item["total_value"]["breakdowns"][0]
    assert list(breakdown) == ["dimension_keys", "results"]
    assert breakdown["dimension_keys"] == ["age", "gender"]
    results = breakdown["results"]
    assert all(list(r) == ["dimension_values", "value"] for r in results)
    sample_cells = {
        tuple(r["dimension_values"]) for r in want["total_value"]["breakdowns"][0]["results"]
    }
    cells = {tuple(r["dimension_values"]) for r in results}
    assert sample_cells <= cells  # the sample's age buckets and F/M/U are Meta's
    assert all(isinstance(r["value"], int) and r["value"] > 0 for r in results)
    # follower_demographics covers the followers (age x gender: 21 cells, all under the cut)
    assert sum(r["value"] for r in results) == 1500


@pytest.mark.parametrize(
    ("breakdown", "count"),
    [("age", 7), ("gender", 3), ("age,gender", 21), ("country", 45), ("city", 45)],
)
async def test_demographics_serve_the_top_45_values_only(
    client: httpx.AsyncClient, breakdown: str, count: int
) -> None:
    got = await body(
        client,
        f"{LA}/insights",
        metric="reached_audience_demographics",
        breakdown=breakdown,
        **DEMOGRAPHICS,
    )
    results = got["data"][0]["total_value"]["breakdowns"][0]["results"]
    assert len(results) == count
    assert len({tuple(r["dimension_values"]) for r in results}) == count


async def test_a_combined_breakdown_keeps_every_dimension_in_order(
    client: httpx.AsyncClient,
) -> None:
    got = await body(
        client,
        f"{LA}/insights",
        metric="engaged_audience_demographics",
        breakdown="gender,country",
        **DEMOGRAPHICS,
    )
    breakdown = got["data"][0]["total_value"]["breakdowns"][0]
    assert breakdown["dimension_keys"] == ["gender", "country"]
    assert len(breakdown["results"]) == 45
    for result in breakdown["results"]:
        gender, country = result["dimension_values"]
        assert gender in {"F", "M", "U"}
        assert len(country) == 2
        assert country.isupper()


async def test_several_demographics_in_one_request_answer_one_item_each(
    client: httpx.AsyncClient,
) -> None:
    metrics = "follower_demographics,engaged_audience_demographics,reached_audience_demographics"
    got = await body(client, f"{LA}/insights", metric=metrics, breakdown="city", **DEMOGRAPHICS)
    assert [item["name"] for item in got["data"]] == metrics.split(",")


async def test_demographics_are_deterministic_per_account_metric_timeframe_and_day() -> None:
    async def results(now: datetime, account: str, timeframe: str) -> list[Any]:
        sim = make_sim(now)
        async with httpx.AsyncClient(
            transport=sim.transport(), base_url="https://graph.facebook.com"
        ) as client:
            got = await body(
                client,
                f"{account}/insights",
                metric="engaged_audience_demographics",
                breakdown="country",
                metric_type="total_value",
                period="lifetime",
                timeframe=timeframe,
            )
        return list(got["data"][0]["total_value"]["breakdowns"][0]["results"])

    today = await results(NOW, LA, "this_week")
    assert await results(NOW + timedelta(hours=3), LA, "this_week") == today
    assert await results(NOW + timedelta(days=1), LA, "this_week") != today
    assert await results(NOW, LA, "this_month") != today


DEMOGRAPHICS_REFUSALS = {
    # invented wordings (no live body found); PARAMETER_REQUIRED is Graph's for other params
    "no_timeframe": (
        {"breakdown": "age", "metric_type": "total_value", "period": "lifetime"},
        "(#100) The parameter timeframe is required",
    ),
    "a_timeframe_meta_deprecated_in_v20": (
        {**DEMOGRAPHICS, "breakdown": "age", "timeframe": "last_30_days"},
        '(#100) Param timeframe must be one of {THIS_WEEK, THIS_MONTH} - got "last_30_days"',
    ),
    "no_breakdown": (DEMOGRAPHICS, "(#100) The parameter breakdown is required"),
    "a_breakdown_demographics_do_not_take": (
        {**DEMOGRAPHICS, "breakdown": "media_product_type"},
        "(#100) The following metrics (follower_demographics) do not support the breakdown "
        "media_product_type",
    ),
    "a_dimension_twice": (
        {**DEMOGRAPHICS, "breakdown": "age,age"},
        "(#100) breakdown[1] repeats the breakdown age",
    ),
    # error_100_metric_type_total_value_required_partial.json's wording
    "without_metric_type_total_value": (
        {"period": "lifetime", "timeframe": "this_week", "breakdown": "age"},
        "(#100) The following metrics (follower_demographics) should be specified with "
        "parameter metric_type=total_value",
    ),
    "at_period_day": (
        {**DEMOGRAPHICS, "period": "day", "breakdown": "age"},
        "(#100) Incompatible period (day) for the requested metrics",
    ),
}


@pytest.mark.parametrize(
    ("params", "message"), DEMOGRAPHICS_REFUSALS.values(), ids=list(DEMOGRAPHICS_REFUSALS)
)
async def test_demographics_refuse_a_missing_or_wrong_parameter_with_code_100(
    client: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await get(client, f"{LA}/insights", metric="follower_demographics", **params)
    error = error_of(response)
    assert (error["code"], error["message"]) == (100, message)


async def test_a_daily_metric_at_period_lifetime_is_refused(client: httpx.AsyncClient) -> None:
    response = await get(
        client, f"{LA}/insights", metric="reach,online_followers", period="lifetime"
    )
    assert error_of(response)["message"] == (
        "(#100) Incompatible period (lifetime) for the requested metrics"
    )


# -- audience: online_followers ------------------------------------------------------------------


async def test_online_followers_answer_in_the_shape_of_the_airbyte_sample(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    want = sample("insights_lifetime_online_followers_airbyte.json")["data"][0]
    window = {"since": unix(NOW - timedelta(days=4)), "until": unix(NOW)}
    got = await body(
        client, f"{LA}/insights", metric="online_followers", period="lifetime", **window
    )
    item = got["data"][0]
    assert list(item) == list(want)
    assert (item["name"], item["period"], item["title"]) == (
        "online_followers",
        "lifetime",
        want["title"],
    )
    assert item["id"] == f"{LA}/insights/online_followers/lifetime"
    # whole days that ended inside the window: Nov 16..19 in Los Angeles
    ends = [value["end_time"] for value in item["values"]]
    days = [NOW.date() - timedelta(days=n) for n in (4, 3, 2, 1)]
    assert ends == [sim.day_end(LA, d).strftime("%Y-%m-%dT%H:%M:%S+0000") for d in days]
    for value in item["values"]:
        assert list(value) == list(want["values"][0])
        assert list(value["value"]) == [str(hour) for hour in range(24)]
        assert all(0 <= n <= 1500 for n in value["value"].values())


async def test_online_followers_serve_the_last_30_days_only(client: httpx.AsyncClient) -> None:
    window = {"since": unix(NOW - timedelta(days=33)), "until": unix(NOW - timedelta(days=27))}
    got = await body(
        client, f"{LA}/insights", metric="online_followers", period="lifetime", **window
    )
    ends = [datetime.fromisoformat(v["end_time"]) for v in got["data"][0]["values"]]
    assert ends
    assert all(NOW - timedelta(days=30) < end <= NOW for end in ends)
    assert len(ends) < 6  # the days before the 30 are left out, not refused


@pytest.mark.parametrize(
    "params",
    [
        {"metric": "online_followers", "period": "lifetime"},
        {"metric": "follower_demographics", "breakdown": "country", **DEMOGRAPHICS},
    ],
    ids=["online_followers", "follower_demographics"],
)
async def test_audience_metrics_serve_no_data_under_100_followers(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    # GRAPH_API §7: unavailable under 100 followers, and empty is not zero
    assert await body(client, f"{FEW}/insights", **params) == sample(
        "insights_empty_data_documented.json"
    )
    assert await body(client, f"{EMPTY}/insights", **params) == {"data": []}
