"""The simulator serves what the audience, media and story streams need, as Meta does.

Shapes are checked against the samples in tests/fixtures/graph_samples/ (named next to each
test), so these tests hold the simulator to Meta's bodies, not to itself.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from igsync.simulator import Endpoint, Fault, SimAccount, Simulator
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


# -- media edge ----------------------------------------------------------------------------------

MEDIA_FIELDS = "id,media_type,media_product_type,timestamp,permalink,like_count,comments_count"
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000")


def of_kind(sim: Simulator, media_type: str, product: str, *, converted: bool = True) -> str:
    """The id of the account's newest media of that kind."""
    return next(
        m.media_id
        for m in sim.media(LA)
        if (m.media_type, m.media_product_type) == (media_type, product)
        and m.before_conversion != converted
    )


async def test_the_media_edge_answers_with_cursor_paging_like_meta(
    client: httpx.AsyncClient,
) -> None:
    got = await body(client, f"{LA}/media", fields=MEDIA_FIELDS, limit="5")
    assert list(got) == ["data", "paging"]
    assert len(got["data"]) == 5
    # paging_cursors_before_after_airbyte_fb_marketing.json: before, then after; next when more
    assert list(got["paging"]) == ["cursors", "next"]  # the first page has no previous
    assert list(got["paging"]["cursors"]) == list(
        sample("paging_cursors_before_after_airbyte_fb_marketing.json")["cursors"]
    )
    for media in got["data"]:
        assert list(media) == MEDIA_FIELDS.split(",")  # the fields asked for, in that order
        assert TIMESTAMP.fullmatch(media["timestamp"])
        assert media["media_type"] in {"IMAGE", "VIDEO", "CAROUSEL_ALBUM"}
        assert media["media_product_type"] in {"FEED", "REELS", "AD"}  # stories: their own edge
        assert media["permalink"].startswith("https://www.instagram.com/")
        assert media["like_count"] >= 0
        assert media["comments_count"] >= 0
    stamps = [media["timestamp"] for media in got["data"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first


async def test_following_next_lists_every_media_once_and_the_last_page_has_before_only(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    response = await get(client, f"{LA}/media", fields="id,timestamp", limit="7")
    seen: list[str] = []
    pages = 0
    while True:
        assert response.status_code == 200, response.text
        got = response.json()
        pages += 1
        seen += [media["id"] for media in got["data"]]
        assert ("previous" in got["paging"]) == (pages > 1)
        if "next" not in got["paging"]:
            break
        assert TOKEN in got["paging"]["next"]  # Graph writes the token into its links
        response = await client.get(got["paging"]["next"])  # as given: no header needed
    # me_accounts_instagram_business_account_paging_before_only_airbyte.json: the last page
    assert list(got["paging"]["cursors"]) == ["before"]
    assert seen == [media.media_id for media in sim.media(LA)]
    assert len(seen) == len(set(seen)) == 30  # SimAccount.media_count
    assert pages == 5


async def test_previous_goes_back_to_the_page_before(client: httpx.AsyncClient) -> None:
    first = await body(client, f"{LA}/media", limit="4")
    second = (await client.get(first["paging"]["next"])).json()
    back = (await client.get(second["paging"]["previous"])).json()
    assert back["data"] == first["data"]


async def test_without_fields_media_come_as_ids_only(client: httpx.AsyncClient) -> None:
    got = await body(client, f"{LA}/media", limit="3")
    assert all(list(media) == ["id"] for media in got["data"])  # Meta's stories sample


async def test_since_and_until_keep_the_media_posted_between(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    since, until = NOW - timedelta(days=20), NOW - timedelta(days=10)
    got = await body(client, f"{LA}/media", since=unix(since), until=unix(until), limit="100")
    expected = [m.media_id for m in sim.media(LA) if since <= m.timestamp <= until]
    assert [media["id"] for media in got["data"]] == expected
    assert expected


async def test_every_account_has_a_mix_of_media_some_before_its_business_conversion(
    sim: Simulator,
) -> None:
    media = sim.media(LA)
    assert {m.media_type for m in media} == {"IMAGE", "VIDEO", "CAROUSEL_ALBUM"}
    assert {m.media_product_type for m in media} == {"FEED", "REELS", "AD"}
    assert [m.before_conversion for m in media] == [False] * 28 + [True] * 2  # the oldest
    assert all(m.timestamp < NOW - timedelta(hours=12) for m in media)
    assert make_sim().media(LA) == media  # deterministic


async def test_a_media_node_answers_its_fields_and_a_carousel_its_children(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    album = of_kind(sim, "CAROUSEL_ALBUM", "FEED")
    listed = await body(client, f"{LA}/media", fields=MEDIA_FIELDS, limit="100")
    node = await body(client, album, fields=MEDIA_FIELDS)
    assert node == next(media for media in listed["data"] if media["id"] == album)
    with_children = await body(client, album, fields="caption,children")
    assert list(with_children) == ["caption", "children", "id"]  # id last when not asked for
    children = with_children["children"]["data"]
    assert 2 <= len(children) <= 5
    assert all(list(child) == ["id"] for child in children)  # Airbyte's media fixture
    edge = await body(client, f"{album}/children", fields="media_type,timestamp")
    assert [child["id"] for child in edge["data"]] == [child["id"] for child in children]
    assert all(child["media_type"] in {"IMAGE", "VIDEO"} for child in edge["data"])
    nested = await body(client, album, fields="children{media_type}")
    assert nested["children"]["data"] == [
        {"media_type": c["media_type"], "id": c["id"]} for c in edge["data"]
    ]


async def test_an_unknown_field_is_refused_as_graph_does(client: httpx.AsyncClient) -> None:
    error = error_of(await get(client, f"{LA}/media", fields="id,view_counts"))
    assert error["message"] == (
        "(#100) Tried accessing nonexisting field (view_counts) on node type (ShadowIGMedia)"
    )


@pytest.mark.parametrize("node", ["180000000000009999", "189999900000000000"])
async def test_a_media_id_that_names_nothing_answers_100_33(
    client: httpx.AsyncClient, node: str
) -> None:
    want = sample("error_100_subcode_33_graphmethodexception_airbyte_issue4028.json")["error"]
    error = error_of(await get(client, node, fields="id"))
    assert list(error) == list(want)
    assert (error["code"], error["error_subcode"]) == (100, 33)
    assert f"Object with ID '{node}' does not exist" in error["message"]


async def test_counts_grow_with_the_days_since_posting() -> None:
    clock = [NOW]
    sim = Simulator([SimAccount(LA, tz="America/Los_Angeles")], now=lambda: clock[0])
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://graph.facebook.com"
    ) as client:
        today = await body(client, f"{LA}/media", fields="like_count,timestamp", limit="10")
        clock[0] += timedelta(days=1)  # the same media a day later: same timestamps, more likes
        tomorrow = await body(client, f"{LA}/media", fields="like_count,timestamp", limit="10")
    pairs = list(zip(today["data"], tomorrow["data"], strict=True))
    assert all(a["id"] == b["id"] and a["timestamp"] == b["timestamp"] for a, b in pairs)
    assert all(b["like_count"] >= a["like_count"] for a, b in pairs)
    assert any(b["like_count"] > a["like_count"] for a, b in pairs)


# -- media insights ------------------------------------------------------------------------------

# What Meta serves per media product type (Meta's media insights reference; plinxore's live
# table; peers' live refusals for reels; Airbyte for FEED videos), in _media_insights' terms.
SERVED = {
    "feed_image": (
        ("IMAGE", "FEED"),
        "views,reach,likes,comments,saved,shares,total_interactions,follows,profile_visits,"
        "profile_activity,reposts",
    ),
    "feed_album": (
        ("CAROUSEL_ALBUM", "FEED"),
        "views,reach,likes,comments,saved,shares,total_interactions,follows,profile_visits,"
        "profile_activity,reposts",
    ),
    "reel": (
        ("VIDEO", "REELS"),
        "views,reach,likes,comments,saved,shares,total_interactions,ig_reels_avg_watch_time,"
        "ig_reels_video_view_total_time,reposts",
    ),
    "ad": (("IMAGE", "AD"), "reach,saved,likes,comments,shares,follows,profile_visits"),
    "feed_video": (("VIDEO", "FEED"), "reach,saved"),
}
REFUSED = {
    "reel": (("VIDEO", "REELS"), "follows,profile_visits,profile_activity"),
    "feed_image": (("IMAGE", "FEED"), "navigation,replies,ig_reels_avg_watch_time"),
    "feed_video": (("VIDEO", "FEED"), "views"),  # the live body of airbyte#62902
    "impressions_anywhere": (("IMAGE", "FEED"), "impressions"),
}
STORY_METRICS = (
    "views,reach,replies,shares,total_interactions,follows,profile_visits,profile_activity,"
    "navigation"
)


def without_trace(error_body: dict[str, Any]) -> dict[str, Any]:
    return {**error_body["error"], "fbtrace_id": None}


async def test_media_insights_answer_lifetime_values_without_end_time(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    want = sample("media_insights_lifetime_values_no_end_time_pyfacebook.json")
    media = of_kind(sim, "IMAGE", "FEED")
    got = await body(client, f"{media}/insights", metric="reach,saved")
    assert list(got) == list(want)  # data only, no paging
    assert [item["name"] for item in got["data"]] == ["reach", "saved"]
    for item, sample_item in zip(got["data"], want["data"][1:], strict=True):
        assert list(item) == list(sample_item)
        assert (item["period"], item["title"], item["description"]) == (
            "lifetime",
            sample_item["title"],
            sample_item["description"],
        )
        assert list(item["values"][0]) == ["value"]  # no end_time
        assert item["id"] == f"{media}/insights/{item['name']}/lifetime"


@pytest.mark.parametrize(("kind", "metrics"), SERVED.values(), ids=list(SERVED))
async def test_each_product_type_serves_its_metrics(
    sim: Simulator, client: httpx.AsyncClient, kind: tuple[str, str], metrics: str
) -> None:
    got = await body(client, f"{of_kind(sim, *kind)}/insights", metric=metrics)
    assert [item["name"] for item in got["data"]] == metrics.split(",")
    assert all(isinstance(item["values"][0]["value"], int) for item in got["data"])


@pytest.mark.parametrize(("kind", "metrics"), REFUSED.values(), ids=list(REFUSED))
async def test_a_metric_the_product_type_lacks_gets_metas_refusal(
    sim: Simulator, client: httpx.AsyncClient, kind: tuple[str, str], metrics: str
) -> None:
    response = await get(client, f"{of_kind(sim, *kind)}/insights", metric=f"reach,{metrics}")
    error_of(response)
    want = sample("error_100_views_not_supported_for_media_product_type_airbyte_pr62902.json")
    expected = without_trace(want)
    expected["message"] = expected["message"].replace("views", metrics.replace(",", ", "))
    assert without_trace(response.json()) == expected


async def test_media_posted_before_the_business_conversion_answer_2108006(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    old = next(m.media_id for m in sim.media(LA) if m.before_conversion)
    response = await get(client, f"{old}/insights", metric="reach")
    error_of(response)
    want = sample("error_100_subcode_2108006_media_before_business_conversion_airbyte.json")
    assert without_trace(response.json()) == without_trace(want)
    assert list(response.json()["error"]) == list(want["error"])


async def test_profile_activity_by_action_type_has_the_shape_of_the_pyfacebook_sample(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    want = sample("media_insights_values_and_total_value_profile_activity_pyfacebook.json")
    want_item = want["data"][0]
    media = of_kind(sim, "IMAGE", "FEED")
    got = await body(
        client, f"{media}/insights", metric="profile_activity", breakdown="action_type"
    )
    item = got["data"][0]
    assert list(item) == list(want_item)
    assert (item["title"], item["description"]) == (want_item["title"], want_item["description"])
    total = item["total_value"]
    assert list(total) == list(want_item["total_value"])
    assert total["value"] == item["values"][0]["value"]
    breakdown = total["breakdowns"][0]
    assert breakdown["dimension_keys"] == ["action_type"]
    actions = {"bio_link_clicked", "call", "direction", "email", "other", "text"}
    assert {r["dimension_values"][0] for r in breakdown["results"]} <= actions  # lower case
    assert sum(r["value"] for r in breakdown["results"]) == total["value"]


async def test_a_breakdown_on_a_metric_without_it_is_metas_unknown_error(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    media = of_kind(sim, "IMAGE", "FEED")
    response = await get(
        client, f"{media}/insights", metric="reach,profile_activity", breakdown="action_type"
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == 1
    assert response.json()["error"]["message"] == "An unknown error has occurred."


async def test_an_unknown_media_metric_lists_the_valid_ones(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    media = of_kind(sim, "VIDEO", "REELS")
    error = error_of(await get(client, f"{media}/insights", metric="reach,plays"))
    assert error["message"].startswith(
        "(#100) metric[1] must be one of the following values: impressions, reach, replies,"
    )


async def test_total_interactions_add_up_and_reach_stays_under_views(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    media = of_kind(sim, "VIDEO", "REELS")
    got = await body(
        client, f"{media}/insights", metric="likes,comments,saved,shares,total_interactions"
    )
    values = {item["name"]: item["values"][0]["value"] for item in got["data"]}
    assert values.pop("total_interactions") == sum(values.values())
    listed = await body(client, media, fields="like_count,comments_count")
    assert (listed["like_count"], listed["comments_count"]) == (
        values["likes"],
        values["comments"],
    )
    both = await body(client, f"{media}/insights", metric="reach,views")
    reach, views = (item["values"][0]["value"] for item in both["data"])
    assert 0 < reach <= views


async def test_media_insights_grow_day_by_day() -> None:
    clock = [NOW]
    sim = Simulator([SimAccount(LA)], now=lambda: clock[0])
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://graph.facebook.com"
    ) as client:
        served = [m for m in sim.media(LA) if not m.before_conversion]
        daily: list[list[int]] = []
        for _ in range(3):
            values = []
            for media in served:
                got = await body(client, f"{media.media_id}/insights", metric="reach")
                values.append(got["data"][0]["values"][0]["value"])
            daily.append(values)
            clock[0] += timedelta(days=1)
    for yesterday, today in itertools.pairwise(daily):
        assert all(b > a for a, b in zip(yesterday, today, strict=True))  # snapshots differ


async def test_carousel_children_have_no_insights(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    album = next(m for m in sim.media(LA) if m.children and not m.before_conversion)
    response = await get(client, f"{album.children[0]}/insights", metric="reach")
    assert error_of(response)["message"] == (
        "(#100) The Media Insights API does not support the reach metric for this media "
        "product type."
    )


# -- stories -------------------------------------------------------------------------------------


async def test_the_stories_edge_lists_the_last_24_hours_only() -> None:
    clock = [NOW]
    sim = Simulator([SimAccount(LA, stories_per_day=3)], now=lambda: clock[0])
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://graph.facebook.com"
    ) as client:
        seen: set[str] = set()
        for _ in range(48):  # two days, hour by hour
            got = await body(client, f"{LA}/stories", fields="id,media_product_type,timestamp")
            stamps = [datetime.fromisoformat(story["timestamp"]) for story in got["data"]]
            assert all(clock[0] - timedelta(hours=24) < stamp <= clock[0] for stamp in stamps)
            assert stamps == sorted(stamps, reverse=True)
            assert {story["media_product_type"] for story in got["data"]} == {"STORY"}
            assert 2 <= len(got["data"]) <= 4  # three a day, each up for 24 hours
            seen |= {story["id"] for story in got["data"]}
            clock[0] += timedelta(hours=1)
    assert len(seen) in (8, 9)  # 72 hours of stories at three a day, none skipped


async def test_stories_answer_like_airbytes_stories_fixture(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    got = await body(client, f"{LA}/stories", fields="id,media_type,media_product_type,like_count")
    assert [story["id"] for story in got["data"]] == [s.media_id for s in sim.stories(LA)]
    # one page: cursors.before only (Airbyte's stories.json)
    assert got["paging"] == {"cursors": {"before": got["paging"]["cursors"]["before"]}}
    for story in got["data"]:
        assert list(story) == ["id", "media_type", "media_product_type", "like_count"]
        assert story["like_count"] == 0
    ids = await body(client, f"{LA}/stories")
    assert [list(story) for story in ids["data"]] == [["id"]] * len(ids["data"])


async def test_story_insights_are_served_for_24_hours_then_empty() -> None:
    clock = [NOW]
    sim = Simulator([SimAccount(LA)], now=lambda: clock[0])
    story = sim.stories(LA)[0]
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://graph.facebook.com"
    ) as client:
        got = await body(client, f"{story.media_id}/insights", metric=STORY_METRICS)
        assert [item["name"] for item in got["data"]] == STORY_METRICS.split(",")
        values = {item["name"]: item["values"][0]["value"] for item in got["data"]}
        assert values["total_interactions"] == values["replies"] + values["shares"]
        navigation = await body(
            client,
            f"{story.media_id}/insights",
            metric="navigation",
            breakdown="story_navigation_action_type",
        )
        breakdown = navigation["data"][0]["total_value"]["breakdowns"][0]
        assert breakdown["dimension_keys"] == ["story_navigation_action_type"]
        assert {r["dimension_values"][0] for r in breakdown["results"]} <= {
            "tap_forward",
            "tap_back",
            "tap_exit",
            "swipe_forward",
        }
        refused = await get(client, f"{story.media_id}/insights", metric="likes,saved")
        assert "does not support the likes, saved metric" in error_of(refused)["message"]
        clock[0] = story.timestamp + timedelta(hours=24, seconds=1)
        assert await body(client, f"{story.media_id}/insights", metric="reach") == {"data": []}
        assert story.media_id not in [s.media_id for s in sim.stories(LA)]
        assert (await body(client, story.media_id, fields="media_product_type"))[
            "media_product_type"
        ] == "STORY"  # the object outlives its 24 hours on the edge


# -- both hosts, batches, tokens, usage and faults ----------------------------------------------


async def test_the_instagram_host_serves_media_stories_and_insights_with_instagram_tokens(
    sim: Simulator,
) -> None:
    token = sim.issue_token(LA, kind="instagram_login")
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://graph.instagram.com"
    ) as client:
        media = await body(client, "me/media", token=token, fields="id,media_product_type")
        assert [m["id"] for m in media["data"]] == [m.media_id for m in sim.media(LA)][:25]
        assert media["paging"]["next"].startswith("https://graph.instagram.com/v27.0/me/media?")
        stories = await body(client, "me/stories", token=token)
        assert [s["id"] for s in stories["data"]] == [s.media_id for s in sim.stories(LA)]
        reel = of_kind(sim, "VIDEO", "REELS")
        assert (await body(client, f"{reel}/insights", token=token, metric="reach"))["data"]
        audience = await body(
            client,
            f"{LA}/insights",
            token=token,
            metric="follower_demographics",
            breakdown="age",
            **DEMOGRAPHICS,
        )
        assert audience["data"][0]["name"] == "follower_demographics"
        # each host refuses the other login's tokens (GRAPH_API §7)
        error = error_of(await get(client, f"{LA}/media", token=TOKEN))
        assert (error["code"], error["message"]) == (
            190,
            "Invalid OAuth access token - Cannot parse access token",
        )
    assert {r.host for r in sim.requests} == {"instagram"}


async def test_the_facebook_host_refuses_instagram_tokens_on_the_new_endpoints(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    for path in (f"{LA}/media", f"{LA}/stories", f"{of_kind(sim, 'IMAGE', 'FEED')}/insights"):
        error = error_of(await get(client, path, token=IG_TOKEN, metric="reach"))
        assert error["code"] == 190


async def test_a_token_is_required_and_in_strict_mode_must_own_the_media() -> None:
    other = "17841400000000004"
    sim = Simulator([SimAccount(LA), SimAccount(other)], now=lambda: NOW, strict_tokens=True)
    mine, theirs = sim.issue_token(LA), sim.issue_token(other)
    media = sim.media(LA)[0].media_id
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://graph.facebook.com"
    ) as client:
        missing = await client.get(f"/v27.0/{media}/insights", params={"metric": "reach"})
        assert missing.json()["error"]["code"] == 104
        for path in (f"{LA}/media", f"{LA}/stories", media, f"{media}/insights"):
            assert (await get(client, path, token=mine, metric="reach")).status_code == 200
            error = error_of(await get(client, path, token=theirs, metric="reach"))
            assert error["code"] == 190


async def test_batch_items_reach_the_media_story_and_audience_endpoints(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    reel = of_kind(sim, "VIDEO", "REELS")
    demographics = "metric=follower_demographics&breakdown=country&metric_type=total_value"
    urls = [
        f"v27.0/{LA}/media?fields=id,timestamp&limit=3",
        f"v27.0/{LA}/stories?fields=id",
        f"v27.0/{reel}?fields=id,media_type",
        f"v27.0/{reel}/insights?metric=reach,views",
        f"v27.0/{LA}/insights?{demographics}&period=lifetime&timeframe=this_week",
        f"v27.0/{LA}/insights?metric=online_followers&period=lifetime",
    ]
    batch = [{"method": "GET", "relative_url": url} for url in urls]
    response = await client.post(
        "/v27.0/", data={"access_token": TOKEN, "batch": json.dumps(batch)}
    )
    assert response.status_code == 200
    answers = response.json()
    assert [answer["code"] for answer in answers] == [200] * len(urls)
    for url, answer in zip(urls, answers, strict=True):
        path, _, query = url.partition("?")
        alone = await client.get(
            f"/{path}", params=query, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert json.loads(answer["body"]) == alone.json(), url
    items = [r for r in sim.requests if r.in_batch]
    assert [r.path for r in items] == ["/" + url.partition("?")[0] for url in urls]
    assert all(r.status == 200 for r in items)


async def test_calls_to_the_new_endpoints_are_recorded_and_count_against_the_owner() -> None:
    sim = Simulator([SimAccount(LA)], now=lambda: NOW, call_limit=10)
    media = sim.media(LA)[0].media_id
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://graph.facebook.com"
    ) as client:
        for path in (f"{LA}/media", f"{LA}/stories", media, f"{media}/insights"):
            response = await get(client, path, metric="reach")
            usage = json.loads(response.headers["x-business-use-case-usage"])
            assert LA in usage  # the owner's usage, as for account insights
    assert [r.path for r in sim.requests] == [
        f"/v27.0/{LA}/media",
        f"/v27.0/{LA}/stories",
        f"/v27.0/{media}",
        f"/v27.0/{media}/insights",
    ]
    assert usage[LA][0]["call_count"] == 40  # 4 of 10 calls


@pytest.mark.parametrize(
    ("endpoint", "path"),
    [("media", f"{LA}/media"), ("stories", f"{LA}/stories"), ("media_insights", "{reel}/insights")],
)
async def test_injected_faults_hit_the_new_endpoints(
    sim: Simulator, client: httpx.AsyncClient, endpoint: Endpoint, path: str
) -> None:
    reel = of_kind(sim, "VIDEO", "REELS")
    sim.faults.append(Fault("throttle_ig", endpoint=endpoint, account_id=LA))
    throttled = await get(client, path.format(reel=reel), metric="reach")
    assert throttled.json()["error"]["code"] == 80002
    assert (await get(client, path.format(reel=reel), metric="reach")).status_code == 200
    # a fault of another endpoint leaves them alone
    sim.faults.append(Fault("throttle_ig", endpoint="insights"))
    assert (await get(client, path.format(reel=reel), metric="reach")).status_code == 200


async def test_a_batch_timeout_fault_names_the_media_endpoint_of_its_item(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    reel = of_kind(sim, "VIDEO", "REELS")
    sim.faults.append(Fault("batch_timeout", endpoint="media_insights", account_id=LA))
    urls = [f"v27.0/{LA}/insights?metric=reach", f"v27.0/{reel}/insights?metric=reach"]
    batch = json.dumps([{"method": "GET", "relative_url": url} for url in urls])
    response = await client.post("/v27.0/", data={"access_token": TOKEN, "batch": batch})
    account_item, media_item = response.json()
    assert account_item["code"] == 200
    assert media_item is None  # Meta timed it out (GRAPH_API §5)
