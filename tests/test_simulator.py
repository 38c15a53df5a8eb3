"""The Graph API simulator behaves like the real insights endpoint (GRAPH_API.md, graph_samples/).

Expected messages and key orders below are copied from /work/shared/graph_samples/ (file named
next to each), so these tests check the simulator against the samples, not against itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from igsync.catalogue import METRIC_CONFIG, RETIRED_METRICS, MetricSpec
from igsync.errors import ErrorKind, GraphError
from igsync.graph import accepted_metrics
from igsync.simulator import Fault, SimAccount, Simulator, demo_accounts, serve_in_thread

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LA = "17841400000000001"  # America/Los_Angeles
KOLKATA = "17841400000000002"  # Asia/Kolkata, UTC+5:30
EMPTY = "17841400000000009"
FEW_FOLLOWERS = "17841400000000010"
TOKEN = "EAAtesttoken0123456789"

# error_100_metric_must_be_one_of_partial.json
METRIC_LIST = (
    "reach, follower_count, website_clicks, profile_views, online_followers, accounts_engaged, "
    "total_interactions, likes, comments, shares, saves, replies, engaged_audience_demographics, "
    "reached_audience_demographics, follower_demographics, follows_and_unfollows, "
    "profile_links_taps, views, threads_likes, threads_replies, reposts, quotes, "
    "threads_followers, threads_follower_demographics, content_views, threads_views, "
    "threads_clicks, threads_reposts"
)
# error_100_since_param_not_valid_airbyte_fixture.json
SINCE_MESSAGE = "(#100) since param is not valid. Metrics data is available for the last 2 years"
WINDOW_MESSAGE = "(#100) There cannot be more than 30 days (2592000 s) between since and until"
# error_100_follower_count_last_30_days_partial.json
FOLLOWER_COUNT_MESSAGE = (
    "(#100) (follower_count) metric only supports querying data for the last 30 days excluding "
    "the current day"
)
ENVELOPE_KEYS = ["message", "type", "code", "fbtrace_id"]


def unix(moment: datetime) -> str:
    return str(int(moment.timestamp()))


@pytest.fixture
def sim() -> Simulator:
    accounts = [
        SimAccount(LA, tz="America/Los_Angeles"),
        SimAccount(KOLKATA, tz="Asia/Kolkata"),
        SimAccount(EMPTY, empty=True),
        SimAccount(FEW_FOLLOWERS, followers=99),
    ]
    return Simulator(accounts, now=lambda: NOW)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://graph.facebook.com"
    ) as client:
        yield client


async def get(
    client: httpx.AsyncClient, account: str = LA, *, token: str | None = TOKEN, **params: str
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.get(f"/v27.0/{account}/insights", params=params, headers=headers)


def one_day(sim: Simulator, account: str, day: date) -> dict[str, str]:
    return {
        "since": unix(sim.day_end(account, day - timedelta(days=1))),
        "until": unix(sim.day_end(account, day)),
    }


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


# -- time_series ---------------------------------------------------------------------------------


async def test_time_series_has_one_item_per_metric_in_request_order(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    window = {"since": unix(NOW - timedelta(days=5)), "until": unix(NOW - timedelta(days=1))}
    response = await get(client, metric="follower_count,reach", period="day", **window)
    assert response.status_code == 200
    body = response.json()
    assert [item["name"] for item in body["data"]] == ["follower_count", "reach"]
    item = body["data"][1]
    # keys and order of insights_time_series_follower_count_reach_day_airbyte.json
    assert list(item) == ["name", "period", "values", "title", "description", "id"]
    assert item["period"] == "day"
    assert item["id"] == f"{LA}/insights/reach/day"
    ends = [v["end_time"] for v in item["values"]]
    assert len(ends) == 4
    assert ends == sorted(ends)
    for value in item["values"]:
        assert list(value) == ["value", "end_time"]
        assert isinstance(value["value"], int)
        assert datetime.strptime(value["end_time"], "%Y-%m-%dT%H:%M:%S+0000")
    assert set(body["paging"]) == {"previous", "next"}


async def test_end_time_follows_dst_in_los_angeles(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    window = {
        "since": unix(sim.day_end(LA, date(2026, 10, 30))),
        "until": unix(sim.day_end(LA, date(2026, 11, 1))),
    }
    response = await get(client, metric="reach", period="day", **window)
    ends = [v["end_time"] for v in response.json()["data"][0]["values"]]
    assert ends == ["2026-11-01T07:00:00+0000", "2026-11-02T08:00:00+0000"]


async def test_end_time_east_of_utc_is_1830_of_the_same_date(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    response = await get(
        client, KOLKATA, metric="reach", **one_day(sim, KOLKATA, date(2026, 11, 18))
    )
    assert response.json()["data"][0]["values"][0]["end_time"] == "2026-11-18T18:30:00+0000"
    assert sim.day_end(KOLKATA, date(2026, 11, 18)) == datetime(2026, 11, 18, 18, 30, tzinfo=UTC)


async def test_window_covers_days_whose_end_time_is_in_since_exclusive_until_inclusive(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    since, until = sim.day_end(LA, date(2026, 11, 10)), sim.day_end(LA, date(2026, 11, 12))
    response = await get(client, metric="reach", since=unix(since), until=unix(until))
    ends = [v["end_time"] for v in response.json()["data"][0]["values"]]
    assert ends == ["2026-11-12T08:00:00+0000", "2026-11-13T08:00:00+0000"]  # 11th and 12th


async def test_current_day_is_served_partially_with_end_time_ahead_of_now(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    today = date(2026, 11, 20)  # 04:00 in Los Angeles
    response = await get(client, metric="reach", **one_day(sim, LA, today))
    value = response.json()["data"][0]["values"][0]
    assert value["end_time"] == "2026-11-21T08:00:00+0000"
    assert datetime.fromisoformat(value["end_time"]) > NOW
    later = Simulator(
        [SimAccount(LA, tz="America/Los_Angeles")], now=lambda: NOW + timedelta(days=2)
    )
    full = later.daily_value(LA, "reach", today)
    assert full is not None
    assert value["value"] == full * 4 // 24  # 4 of the day's 24 hours have passed
    assert value["value"] == sim.daily_value(LA, "reach", today)


async def test_missing_since_and_until_default_to_the_last_two_days(
    client: httpx.AsyncClient,
) -> None:
    response = await get(client, metric="reach")
    assert len(response.json()["data"][0]["values"]) == 2


async def test_since_as_a_date_means_midnight_utc(client: httpx.AsyncClient) -> None:
    response = await get(client, metric="reach", since="2026-11-10", until="2026-11-12")
    previous = httpx.URL(response.json()["paging"]["previous"])
    assert previous.params["until"] == unix(datetime(2026, 11, 10, tzinfo=UTC))


@pytest.mark.parametrize(
    ("metric", "metric_type"),
    [
        ("reach", "time_series"),
        ("reach", "total_value"),
        ("follower_count", "time_series"),
        ("profile_views", "total_value"),
        ("accounts_engaged", "total_value"),
        ("views", "total_value"),
    ],
)
async def test_daily_value_equals_the_value_a_one_day_request_serves(
    sim: Simulator, client: httpx.AsyncClient, metric: str, metric_type: str
) -> None:
    day = date(2026, 11, 15)
    response = await get(client, metric=metric, metric_type=metric_type, **one_day(sim, LA, day))
    item = response.json()["data"][0]
    expected = sim.daily_value(LA, metric, day)
    if metric_type == "time_series":
        assert [v["value"] for v in item["values"]] == [expected]
    else:
        assert item["total_value"] == {"value": expected}


async def test_follower_count_grows_slowly_near_the_configured_count(sim: Simulator) -> None:
    values = [sim.daily_value(LA, "follower_count", date(2026, 11, d)) for d in range(1, 20)]
    assert all(v is not None and abs(v - 1500) < 100 for v in values)


async def test_revision_changes_every_value(sim: Simulator) -> None:
    days = [date(2026, 11, d) for d in range(1, 11)]
    metrics = ["reach", "profile_views", "follower_count", "replies"]
    before = [sim.daily_value(LA, m, d) for m in metrics for d in days]
    sim.revision += 1
    after = [sim.daily_value(LA, m, d) for m in metrics for d in days]
    assert all(b != a for b, a in zip(before, after, strict=True))


# -- total_value ---------------------------------------------------------------------------------


async def test_total_value_of_unique_accounts_is_not_the_sum_but_additive_metrics_are(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    days = [date(2026, 11, d) for d in range(10, 17)]
    window = {
        "since": unix(sim.day_end(LA, days[0] - timedelta(days=1))),
        "until": unix(sim.day_end(LA, days[-1])),
    }
    response = await get(
        client, metric="reach,accounts_engaged,profile_views", metric_type="total_value", **window
    )
    totals = {item["name"]: item["total_value"]["value"] for item in response.json()["data"]}
    for metric in ("reach", "accounts_engaged"):
        daily = [sim.daily_value(LA, metric, d) or 0 for d in days]
        assert totals[metric] < sum(daily)
        assert totals[metric] >= max(daily)
    assert totals["profile_views"] == sum(
        sim.daily_value(LA, "profile_views", d) or 0 for d in days
    )


async def test_total_value_items_carry_no_values_or_end_time(client: httpx.AsyncClient) -> None:
    response = await get(client, metric="views", metric_type="total_value")
    item = response.json()["data"][0]
    # keys and order of the pyfacebook total_value sample
    assert list(item) == ["name", "period", "title", "description", "total_value", "id"]
    assert list(item["total_value"]) == ["value"]


@pytest.mark.parametrize(
    ("breakdown", "keys"),
    [
        ("media_product_type", ["media_product_type"]),
        ("follow_type", ["follow_type"]),
        ("media_product_type,follow_type", ["media_product_type", "follow_type"]),
    ],
)
async def test_breakdown_results_add_up_to_the_total(
    client: httpx.AsyncClient, breakdown: str, keys: list[str]
) -> None:
    response = await get(client, metric="reach", metric_type="total_value", breakdown=breakdown)
    total_value = response.json()["data"][0]["total_value"]
    (result,) = total_value["breakdowns"]
    assert result["dimension_keys"] == keys
    assert all(len(r["dimension_values"]) == len(keys) for r in result["results"])
    assert sum(r["value"] for r in result["results"]) == total_value["value"]


@pytest.mark.parametrize(
    ("metric", "breakdown"),
    [
        ("views", "follower_type"),
        ("views", "media_product_type"),
        ("likes", "media_product_type"),
        ("follows_and_unfollows", "follow_type"),
        ("profile_links_taps", "contact_button_type"),
    ],
)
async def test_each_metric_takes_its_own_breakdowns(
    client: httpx.AsyncClient, metric: str, breakdown: str
) -> None:
    response = await get(client, metric=metric, metric_type="total_value", breakdown=breakdown)
    assert response.status_code == 200, response.text
    total_value = response.json()["data"][0]["total_value"]
    assert total_value["breakdowns"][0]["dimension_keys"] == [breakdown]


# -- the catalogue, served --------------------------------------------------------------------

ACCOUNT_METRICS = [s for s in METRIC_CONFIG.values() if s.stream == "account"]


@pytest.mark.parametrize("spec", ACCOUNT_METRICS, ids=[s.name for s in ACCOUNT_METRICS])
async def test_every_account_metric_of_the_catalogue_is_served_the_way_igsync_asks(
    sim: Simulator, client: httpx.AsyncClient, spec: MetricSpec
) -> None:
    day = date(2026, 11, 18)
    response = await get(
        client, metric=spec.name, metric_type=spec.metric_type, **one_day(sim, LA, day)
    )
    assert response.status_code == 200, response.text
    (item,) = response.json()["data"]
    value = item["values"][0]["value"] if spec.metric_type == "time_series" else None
    value = item["total_value"]["value"] if value is None else value
    assert value == sim.daily_value(LA, spec.name, day)
    for breakdown in spec.breakdowns:  # every breakdown the catalogue names is taken
        split = await get(client, metric=spec.name, metric_type="total_value", breakdown=breakdown)
        assert split.status_code == 200, (breakdown, split.text)


@pytest.mark.parametrize("spec", ACCOUNT_METRICS, ids=[s.name for s in ACCOUNT_METRICS])
async def test_metric_types_the_catalogue_does_not_list_are_refused(
    client: httpx.AsyncClient, spec: MetricSpec
) -> None:
    for metric_type in {"time_series", "total_value"} - set(spec.metric_types):
        response = await get(client, metric=spec.name, metric_type=metric_type)
        assert response.status_code == 400
        assert error_of(response)["message"] == (
            f"(#100) The following metrics ({spec.name}) should be specified with parameter "
            f"metric_type={spec.metric_type}"
        )


GONE = sorted({r.name for r in RETIRED_METRICS if r.form is None})


@pytest.mark.parametrize("name", GONE)
async def test_a_retired_metric_answers_must_be_one_of_listing_the_current_ones(
    client: httpx.AsyncClient, name: str
) -> None:
    response = await get(client, metric=name, metric_type="total_value")
    assert response.status_code == 400
    error = error_of(response)
    assert (
        error["message"] == f"(#100) metric[0] must be one of the following values: {METRIC_LIST}"
    )
    refusal = GraphError(error["message"], kind=ErrorKind.INVALID, code=error["code"])
    accepted = accepted_metrics(refusal)
    assert accepted is not None
    assert name not in accepted
    assert set(METRIC_CONFIG) <= accepted


# -- empty is not zero ---------------------------------------------------------------------------


@pytest.mark.parametrize("metric_type", ["time_series", "total_value"])
async def test_empty_account_answers_empty_data(
    client: httpx.AsyncClient, metric_type: str
) -> None:
    response = await get(client, EMPTY, metric="reach", metric_type=metric_type)
    assert response.status_code == 200
    assert response.json() == {"data": []}


async def test_follower_count_is_left_out_below_100_followers(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    response = await get(client, FEW_FOLLOWERS, metric="follower_count,reach")
    assert [item["name"] for item in response.json()["data"]] == ["reach"]
    assert sim.daily_value(FEW_FOLLOWERS, "follower_count", date(2026, 11, 18)) is None
    only = await get(client, FEW_FOLLOWERS, metric="follower_count")
    assert only.json() == {"data": []}


# -- validation ----------------------------------------------------------------------------------

PAST = NOW - timedelta(days=3)
VALIDATION_CASES = {
    "unknown_metric_names_its_index": (
        {"metric": "reach,email_contacts"},
        f"(#100) metric[1] must be one of the following values: {METRIC_LIST}",
    ),
    # since 2026 Meta lists the valid metrics for impressions too (plinxore live check, v22.0)
    "impressions_is_no_longer_among_the_valid_metrics": (
        {"metric": "reach,impressions"},
        f"(#100) metric[1] must be one of the following values: {METRIC_LIST}",
    ),
    "time_series_form_of_a_v21_metric_is_refused": (
        {"metric": "website_clicks", "metric_type": "time_series"},
        "(#100) The following metrics (website_clicks) should be specified with parameter "
        "metric_type=total_value",
    ),
    "a_breakdown_the_metric_does_not_take": (
        {
            "metric": "reach,accounts_engaged",
            "metric_type": "total_value",
            "breakdown": "follow_type",
        },
        "(#100) The following metrics (accounts_engaged) do not support the breakdown follow_type",
    ),
    "total_value_only_metrics_are_all_listed": (
        {"metric": "views,reach,profile_views", "metric_type": "time_series"},
        "(#100) The following metrics (views, profile_views) should be specified with parameter "
        "metric_type=total_value",
    ),
    "total_value_only_metric_without_metric_type": (
        {"metric": "views"},
        "(#100) The following metrics (views) should be specified with parameter "
        "metric_type=total_value",
    ),
    "follower_count_refuses_total_value": (
        {"metric": "follower_count", "metric_type": "total_value"},
        "(#100) The following metrics (follower_count) should be specified with parameter "
        "metric_type=time_series",
    ),
    "unknown_metric_type": (
        {"metric": "reach", "metric_type": "lifetime_sum"},
        '(#100) Param metric_type must be one of {TIME_SERIES, TOTAL_VALUE} - got "lifetime_sum"',
    ),
    "future_since": ({"metric": "reach", "since": unix(NOW + timedelta(hours=1))}, SINCE_MESSAGE),
    "since_older_than_two_years": (
        {
            "metric": "reach",
            "since": unix(NOW - timedelta(days=731)),
            "until": unix(NOW - timedelta(days=729)),
        },
        SINCE_MESSAGE,
    ),
    "window_longer_than_30_days": (
        {"metric": "reach", "since": unix(NOW - timedelta(days=31)), "until": unix(NOW)},
        WINDOW_MESSAGE,
    ),
    "follower_count_older_than_30_days": (
        {
            "metric": "follower_count",
            "since": unix(NOW - timedelta(days=31)),
            "until": unix(NOW - timedelta(days=29)),
        },
        FOLLOWER_COUNT_MESSAGE,
    ),
    # the order: metric names, then metric_type, then since, then window, then follower_count
    "metric_checked_before_since": (
        {"metric": "bogus", "since": unix(NOW + timedelta(days=1))},
        f"(#100) metric[0] must be one of the following values: {METRIC_LIST}",
    ),
    "metric_type_checked_before_window": (
        {"metric": "views", "since": unix(NOW - timedelta(days=40)), "until": unix(PAST)},
        "(#100) The following metrics (views) should be specified with parameter "
        "metric_type=total_value",
    ),
    "since_checked_before_window": (
        {"metric": "reach", "since": unix(NOW - timedelta(days=800)), "until": unix(NOW)},
        SINCE_MESSAGE,
    ),
    "window_checked_before_follower_count": (
        {"metric": "follower_count", "since": unix(NOW - timedelta(days=40)), "until": unix(NOW)},
        WINDOW_MESSAGE,
    ),
}


@pytest.mark.parametrize(
    ("params", "message"), VALIDATION_CASES.values(), ids=list(VALIDATION_CASES)
)
async def test_invalid_request_answers_the_real_code_100_body(
    client: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await get(client, **params)
    assert response.status_code == 400
    error = error_of(response)
    assert list(error) == ENVELOPE_KEYS
    assert error["code"] == 100
    assert error["type"] == "OAuthException"
    assert error["message"] == message
    assert error["fbtrace_id"]


async def test_unknown_account_answers_graphmethodexception_naming_the_id(
    client: httpx.AsyncClient,
) -> None:
    response = await get(client, "17841499999999999", metric="reach")
    assert response.status_code == 400
    error = error_of(response)
    # keys of error_100_subcode_33_graphmethodexception_airbyte_issue4028.json
    assert list(error) == ["message", "type", "code", "error_subcode", "fbtrace_id"]
    assert (error["type"], error["code"], error["error_subcode"]) == (
        "GraphMethodException",
        100,
        33,
    )
    assert "Object with ID '17841499999999999' does not exist" in error["message"]


async def test_denied_metric_fails_the_whole_request_with_code_10() -> None:
    account = SimAccount(LA, denied_metrics=frozenset({"views"}))
    sim = Simulator([account], now=lambda: NOW)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.test") as client:
        response = await get(client, metric="reach,views", metric_type="total_value")
        allowed = await get(client, metric="reach", metric_type="total_value")
    assert response.status_code == 400
    # error_10_application_no_permission_airbyte.json
    assert (
        error_of(response)["message"]
        == "(#10) Application does not have permission for this action"
    )
    assert error_of(response)["code"] == 10
    assert allowed.status_code == 200
    assert sim.daily_value(LA, "views", date(2026, 11, 18)) is None


# Meta's versions table (graph-api/changelog, 2026-11): v21.0 is served until 2027-01-21, v27.0
# is the newest (introduced 2026-11-04).
@pytest.mark.parametrize("version", ["v21.0", "v22.0", "v23.0", "v24.0", "v25.0", "v26.0", "v27.0"])
async def test_every_version_meta_serves_is_served(client: httpx.AsyncClient, version: str) -> None:
    response = await client.get(
        f"/{version}/{LA}/insights",
        params={"metric": "reach"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["name"] == "reach"


async def test_unknown_paths_and_methods_answer_graph_errors(client: httpx.AsyncClient) -> None:
    alias = await client.get("/v27.0/nosuchalias/insights", params={"access_token": TOKEN})
    edge = await client.get(f"/v27.0/{LA}/nosuchedge", params={"access_token": TOKEN})
    post = await client.post(f"/v27.0/{LA}/insights", params={"access_token": TOKEN})
    assert (alias.status_code, error_of(alias)["code"]) == (404, 803)
    assert error_of(alias)["message"].startswith("(#803) Some of the aliases you requested")
    assert (edge.status_code, error_of(edge)["code"]) == (400, 2500)
    assert (post.status_code, error_of(post)["error_subcode"]) == (400, 33)
    assert error_of(post)["message"].startswith("Unsupported post request.")


# -- paging --------------------------------------------------------------------------------------


async def test_paging_urls_carry_the_token_and_the_neighbouring_windows(
    client: httpx.AsyncClient,
) -> None:
    since, until = NOW - timedelta(days=4), NOW - timedelta(days=2)
    response = await client.get(
        f"/v27.0/{LA}/insights",
        params={"metric": "reach", "period": "day", "since": unix(since), "until": unix(until)},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    paging = response.json()["paging"]
    previous, following = httpx.URL(paging["previous"]), httpx.URL(paging["next"])
    assert TOKEN in response.text
    assert previous.params["access_token"] == following.params["access_token"] == TOKEN
    assert previous.path == f"/v27.0/{LA}/insights"
    assert (previous.params["since"], previous.params["until"]) == (
        unix(since - timedelta(days=2)),
        unix(since),
    )
    assert (following.params["since"], following.params["until"]) == (
        unix(until),
        unix(until + timedelta(days=2)),
    )
    assert following.params["metric"] == "reach"
    assert (await client.get(paging["next"])).status_code == 200  # the link works as is


# -- tokens --------------------------------------------------------------------------------------


async def test_missing_token_answers_code_104(client: httpx.AsyncClient) -> None:
    response = await get(client, token=None, metric="reach")
    assert response.status_code == 400
    error = error_of(response)
    assert error["message"] == "An access token is required to request this resource."
    assert (error["type"], error["code"]) == ("OAuthException", 104)


async def test_token_in_the_query_string_is_accepted(client: httpx.AsyncClient) -> None:
    response = await get(client, token=None, metric="reach", access_token=TOKEN)
    assert response.status_code == 200


async def test_strict_tokens_accept_only_the_token_of_that_account() -> None:
    sim = Simulator(
        demo_accounts(2),
        now=lambda: NOW,
        strict_tokens=True,
        tokens={"tok-a": LA, "tok-b": KOLKATA},
    )
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.test") as client:
        good = await get(client, token="tok-a", metric="reach")
        other = await get(client, token="tok-b", metric="reach")
        unknown = await get(client, token="nope", metric="reach")
    assert good.status_code == 200
    for response in (other, unknown):
        assert response.status_code == 400
        error = error_of(response)
        assert list(error) == ENVELOPE_KEYS  # code 190 without a subcode
        assert error["code"] == 190
        assert error["message"].startswith("Invalid OAuth access token")


@pytest.mark.parametrize("strict", [False, True])
async def test_expired_token_answers_190_463_in_either_mode(strict: bool) -> None:
    sim = Simulator(demo_accounts(1), now=lambda: NOW, strict_tokens=strict, tokens={TOKEN: LA})
    sim.expire_token(TOKEN)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.test") as client:
        response = await get(client, metric="reach")
    assert response.status_code == 400
    error = error_of(response)
    # keys of error_190_subcode_463_session_expired.json
    assert list(error) == ["message", "type", "code", "error_subcode", "fbtrace_id"]
    assert (error["code"], error["error_subcode"]) == (190, 463)
    assert error["message"] == (
        "Error validating access token: Session has expired on Friday, 20-Nov-26 04:00:00 PST. "
        "The current time is Friday, 20-Nov-26 04:00:00 PST."
    )


async def test_appsecret_proof_is_required_when_the_app_requires_it() -> None:
    sim = Simulator(
        demo_accounts(1), now=lambda: NOW, app_secret="s3cret", require_appsecret_proof=True
    )
    proof = hmac.new(b"s3cret", TOKEN.encode(), hashlib.sha256).hexdigest()
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.test") as client:
        missing = await get(client, metric="reach")
        wrong = await get(client, metric="reach", appsecret_proof="0" * 64)
        right = await get(client, metric="reach", appsecret_proof=proof)
    for response in (missing, wrong):
        assert response.status_code == 400
        # error_100_requires_appsecret_proof_pyfacebook.json
        assert list(error_of(response)) == ENVELOPE_KEYS
        assert error_of(response)["message"] == (
            "(#100) Pages Public Content Access requires either app secret proof or an app token"
        )
    assert right.status_code == 200
    assert httpx.URL(right.json()["paging"]["next"]).params["appsecret_proof"] == proof


async def test_an_app_secret_alone_does_not_require_appsecret_proof() -> None:
    sim = Simulator(demo_accounts(1), now=lambda: NOW, app_secret="s3cret")
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.test") as client:
        assert (await get(client, metric="reach")).status_code == 200


# -- usage and throttling ------------------------------------------------------------------------


async def test_usage_headers_are_absent_without_a_limit(client: httpx.AsyncClient) -> None:
    response = await get(client, metric="reach")
    assert "x-business-use-case-usage" not in response.headers
    assert "x-app-usage" not in response.headers


async def test_usage_headers_count_calls_and_80002_answers_at_the_limit() -> None:
    clock = [NOW]
    sim = Simulator(demo_accounts(1), now=lambda: clock[0], call_limit=3, usage_window=600)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://g.test") as client:
        answers = [await get(client, metric="reach") for _ in range(4)]
        clock[0] += timedelta(seconds=601)
        after_window = await get(client, metric="reach")
    usages = [json.loads(r.headers["x-business-use-case-usage"]) for r in answers]
    for usage in usages:
        (page_figures,), (ig_figures,) = (usage[k] for k in usage)
        assert LA in usage
        assert page_figures == ig_figures  # one call reported under the page and the IG id
    assert [u[LA][0]["call_count"] for u in usages] == [33, 66, 100, 100]
    assert [r.status_code for r in answers] == [200, 200, 200, 400]
    error = error_of(answers[3])
    assert error["code"] == 80002
    assert error["message"].startswith("(#80002)")
    assert usages[3][LA][0]["estimated_time_to_regain_access"] == 10
    assert after_window.status_code == 200


# -- faults --------------------------------------------------------------------------------------

FAULT_CASES: dict[str, tuple[int, dict[str, Any]]] = {
    # kind: (HTTP status, expected error without fbtrace_id, in the sample's key order)
    "throttle": (  # error_4_application_request_limit_nodejs_sdk_issue97.json
        400,
        {
            "message": "(#4) Application request limit reached",
            "type": "OAuthException",
            "is_transient": True,
            "code": 4,
        },
    ),
    "user_throttle": (  # error_17_user_request_limit_python_sdk_issue416.json
        400,
        {
            "message": "(#17) User request limit reached",
            "type": "OAuthException",
            "is_transient": True,
            "code": 17,
        },
    ),
    "page_throttle": (  # error_32_page_request_limit_meta_docs_sample.json
        400,
        {"message": "(#32) Page request limit reached", "type": "OAuthException", "code": 32},
    ),
    "rate_limit_613": (  # error_613_rate_limit_partial.json
        400,
        {
            "message": "(#613) Calls to this api have exceeded the rate limit.",
            "type": "OAuthException",
            "code": 613,
        },
    ),
    "transient": (  # error_2_unexpected_transient_airbyte_issue1814_partial.json
        500,
        {
            "message": "An unexpected error has occurred. Please retry your request later.",
            "type": "OAuthException",
            "is_transient": True,
            "code": 2,
        },
    ),
    "server_error": (
        500,
        {
            "message": "An unknown error has occurred.",
            "type": "OAuthException",
            "code": 1,
            "is_transient": True,
        },
    ),
    "logged_out": (  # error_190_subcode_467_user_logged_out.json
        400,
        {
            "message": "Error validating access token: The session is invalid because the user "
            "logged out.",
            "type": "OAuthException",
            "code": 190,
            "error_subcode": 467,
        },
    ),
}


@pytest.mark.parametrize("kind", list(FAULT_CASES))
async def test_fault_answers_the_real_body_then_is_spent(
    sim: Simulator, client: httpx.AsyncClient, kind: Any
) -> None:
    status, expected = FAULT_CASES[kind]
    sim.faults.append(Fault(kind, times=2))
    first, second, third = [await get(client, metric="reach") for _ in range(3)]
    for response in (first, second):
        assert response.status_code == status
        error = error_of(response)
        assert list(error) == [*expected, "fbtrace_id"]
        assert {k: v for k, v in error.items() if k != "fbtrace_id"} == expected
    assert third.status_code == 200
    assert sim.faults[0].times == 0


async def test_throttle_fault_reports_app_usage_at_100(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.append(Fault("throttle"))
    response = await get(client, metric="reach")
    assert json.loads(response.headers["x-app-usage"])["call_count"] == 100


async def test_throttle_ig_fault_answers_80002_with_regain_minutes(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.append(Fault("throttle_ig", regain_minutes=7))
    response = await get(client, metric="reach")
    assert response.status_code == 400
    assert error_of(response)["code"] == 80002
    usage = json.loads(response.headers["x-business-use-case-usage"])
    assert len(usage) == 2
    assert usage[LA] == [
        {
            "type": "instagram",
            "call_count": 100,
            "total_cputime": 25,
            "total_time": 25,
            "estimated_time_to_regain_access": 7,
        }
    ]


async def test_bad_gateway_fault_answers_html_from_a_proxy(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.append(Fault("bad_gateway"))
    response = await get(client, metric="reach")
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text


async def test_expired_token_fault_answers_190_463(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.append(Fault("expired_token"))
    error = error_of(await get(client, metric="reach"))
    assert (error["code"], error["error_subcode"]) == (190, 463)
    assert error["message"].startswith("Error validating access token: Session has expired on")


async def test_object_missing_fault_answers_100_33_naming_the_account(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.append(Fault("object_missing"))
    error = error_of(await get(client, metric="reach"))
    assert (error["type"], error["code"], error["error_subcode"]) == (
        "GraphMethodException",
        100,
        33,
    )
    assert f"'{LA}'" in error["message"]


async def test_timeout_fault_holds_the_response_then_answers_normally(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.append(Fault("timeout", delay=0.05))
    started = time.monotonic()
    response = await get(client, metric="reach")
    assert time.monotonic() - started >= 0.05
    assert response.status_code == 200


async def test_fault_matches_only_its_metric_and_account(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.append(Fault("transient", metric="views", account_id=KOLKATA))
    assert (await get(client, metric="views", metric_type="total_value")).status_code == 200
    assert (await get(client, KOLKATA, metric="reach")).status_code == 200
    hit = await get(client, KOLKATA, metric="reach,views", metric_type="total_value")
    assert hit.status_code == 500


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("meteor")  # type: ignore[arg-type]


# -- bookkeeping ---------------------------------------------------------------------------------


async def test_every_request_is_recorded_with_its_status(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    await get(client, metric="reach")
    await get(client, metric="bogus")
    assert [(r.method, r.path, r.status) for r in sim.requests] == [
        ("GET", f"/v27.0/{LA}/insights", 200),
        ("GET", f"/v27.0/{LA}/insights", 400),
    ]
    assert sim.requests[0].query == {"metric": "reach"}
    assert sim.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_demo_accounts_cycle_through_the_zones() -> None:
    accounts = demo_accounts(9)
    assert accounts[0].account_id == "17841400000000001"
    assert accounts[8].account_id == "17841400000000009"
    assert [a.tz for a in accounts] == [
        "America/Los_Angeles",
        "Asia/Kolkata",
        "Europe/London",
        "America/New_York",
        "Australia/Sydney",
        "Pacific/Auckland",
        "America/Sao_Paulo",
        "UTC",
        "America/Los_Angeles",
    ]


# -- over real HTTP ------------------------------------------------------------------------------


def test_serve_in_thread_answers_over_loopback_and_stops_cleanly() -> None:
    sim = Simulator(demo_accounts(1), now=lambda: NOW)
    with serve_in_thread(sim) as served:
        url = served.graph_url
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(
            f"{url}/v27.0/{LA}/insights",
            params={"metric": "reach"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 200
    assert response.json()["paging"]["next"].startswith(f"{url}/v27.0/{LA}/insights?")
    assert not [t for t in threading.enumerate() if t.name == "igsync-simulator"]


def test_over_loopback_each_host_has_its_port_and_refuses_the_other_logins_tokens() -> None:
    """GRAPH_API §7: graph.facebook.com cannot parse an Instagram-Login token, and
    graph.instagram.com cannot parse a Facebook-Login one."""
    sim = Simulator(demo_accounts(1), now=lambda: NOW)
    facebook_token, instagram_token = "EAAG" + "f" * 40, "IGAA" + "i" * 40
    answers = {}
    with serve_in_thread(sim) as served:
        assert served.graph_url != served.instagram_url
        for host, url in (("facebook", served.graph_url), ("instagram", served.instagram_url)):
            for kind, token in (("facebook", facebook_token), ("instagram", instagram_token)):
                answers[host, kind] = httpx.get(
                    f"{url}/v27.0/{LA}/insights",
                    params={"metric": "reach"},
                    headers={"Authorization": f"Bearer {token}"},
                )
    assert answers["facebook", "facebook"].status_code == 200
    assert answers["instagram", "instagram"].status_code == 200
    for refused in (answers["facebook", "instagram"], answers["instagram", "facebook"]):
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert (error["code"], error["type"]) == (190, "OAuthException")
        assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert [r.host for r in sim.requests] == ["facebook", "facebook", "instagram", "instagram"]


async def test_in_process_graph_instagram_com_reaches_the_instagram_host() -> None:
    sim = Simulator(demo_accounts(1), now=lambda: NOW)
    token = sim.issue_token(LA, kind="instagram_login")
    async with httpx.AsyncClient(transport=sim.transport()) as client:
        served = await client.get(
            f"https://graph.instagram.com/v27.0/{LA}/insights",
            params={"metric": "reach", "access_token": token},
        )
        refused = await client.get(
            f"https://graph.facebook.com/v27.0/{LA}/insights",
            params={"metric": "reach", "access_token": token},
        )
    assert served.status_code == 200
    assert refused.json()["error"]["code"] == 190
    assert [r.host for r in sim.requests] == ["instagram", "facebook"]


def test_timeout_fault_over_loopback_lets_go_when_the_client_gives_up() -> None:
    sim = Simulator(demo_accounts(1), now=lambda: NOW)
    sim.faults.append(Fault("timeout", delay=30))
    with serve_in_thread(sim) as served, pytest.raises(httpx.ReadTimeout):
        httpx.get(
            f"{served.graph_url}/v27.0/{LA}/insights",
            params={"metric": "reach", "access_token": TOKEN},
            timeout=0.2,
        )
    # 499 is set only when the hold ends on the client's disconnect, not on shutdown
    assert sim.requests[-1].status == 499


def test_module_serves_until_sigterm_and_prints_both_urls_first() -> None:
    command = [sys.executable, "-m", "igsync.simulator", "--port", "0", "--accounts", "2"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "no URL printed"
        url = process.stdout.readline().strip()
        instagram_url = process.stdout.readline().strip()
        response = httpx.get(
            f"{url}/v27.0/{LA}/insights", params={"metric": "reach", "access_token": "x"}
        )
        instagram = httpx.get(
            f"{instagram_url}/v27.0/{LA}/insights", params={"metric": "reach", "access_token": "x"}
        )
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert url.startswith("http://127.0.0.1:")
    assert instagram_url.startswith("http://127.0.0.1:")
    assert (response.status_code, instagram.status_code) == (200, 200)
    assert process.returncode == 0
    hint = f"export IGSYNC_GRAPH_URL={url} IGSYNC_INSTAGRAM_URL={instagram_url} IG_ACCOUNT_ID={LA}"
    assert hint in stderr
    assert "Asia/Kolkata" in stderr


def test_module_help_teaches_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from igsync.simulator.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "--port" in text
    assert "IGSYNC_GRAPH_URL" in text


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--port", "TAKEN"],
            "cannot serve on 127.0.0.1:TAKEN: Address already in use"
            " (another simulator still running? --port 0 picks a free port)",
        ),
        (["--latency", "-1"], "argument --latency: '-1': expected 0 or more seconds"),
        (["--port", "99999"], "argument --port: '99999': expected a port from 0 to 65535"),
        (["--port", "-1"], "argument --port: '-1': expected a port from 0 to 65535"),
        (["--accounts", "0"], "argument --accounts: '0': expected 1 or more"),
        (["--accounts", "two"], "argument --accounts: 'two': expected a whole number"),
    ],
    ids=[
        "port_in_use",
        "negative_latency",
        "port_too_big",
        "port_negative",
        "no_account",
        "accounts_words",
    ],
)
def test_a_bad_argument_or_a_port_in_use_is_one_error_line_and_exit_2(
    args: list[str],
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    from igsync.simulator.__main__ import main

    monkeypatch.setattr(signal, "signal", lambda *_: None)  # pytest keeps its own Ctrl-C
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        with pytest.raises(SystemExit) as exited:
            main([a.replace("TAKEN", port) for a in args], prog="igsync simulator")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith(f"igsync simulator: error: {said.replace('TAKEN', port)}\n")
    assert "Traceback" not in err


async def test_latency_is_the_whole_round_trip_of_a_call_and_of_a_batch(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """A call, or a batch as one round trip, is answered `latency` seconds after it came in,
    its calls counted in flight all along: the simulator's own work is part of that time
    (as Meta's is), not added to it."""
    sim.latency = 0.3
    query = {"metric": "reach", "period": "day", "metric_type": "total_value"}
    relative = f"v27.0/{LA}/insights?metric=reach&period=day&metric_type=total_value"
    batch = json.dumps([{"method": "GET", "relative_url": relative}] * 3)
    for send, calls in (
        (client.get(f"/v27.0/{LA}/insights", params={**query, "access_token": "t"}), 1),
        (client.post("/v27.0/", data={"batch": batch, "access_token": "t"}), 3),
    ):
        started = time.monotonic()
        answer = asyncio.ensure_future(send)
        await asyncio.sleep(0.1)
        assert sim.in_flight == calls  # computed at once, held for the rest of the latency
        assert (await answer).status_code == 200
        assert time.monotonic() - started >= 0.3
        assert sim.in_flight == 0
