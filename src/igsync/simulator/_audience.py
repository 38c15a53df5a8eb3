"""The audience metrics of `GET /{ig-user-id}/insights` at period=lifetime: the three
demographics (total_value by age, city, country, gender, alone or combined, over a timeframe)
and online_followers (time_series of 24 hourly values per day).

Shapes: insights_total_value_follower_demographics_age_gender_airbyte.json (an item with
`total_value.breakdowns[].dimension_keys` / `results[].dimension_values` / `value`, no
`total_value.value`, no end_time) and insights_lifetime_online_followers_airbyte.json (`values`
of `{"value": {"0": n, …, "23": n}, "end_time"}`). Limits (GRAPH_API §7, Meta's account
insights reference, June 2026): top 45 values only; online_followers for the last 30 days only;
neither under 100 followers (Meta names follower_count and online_followers; peers that checked
live report the demographics need 100 followers too: agassparkle/mira-instagram-agent's live
notes, July 2026 — so the simulator serves none of them below 100).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ._errors import JSON, PARAMETER_REQUIRED, invalid_parameter
from ._metrics import apportion, covered_days, day_end, stable_hash

DEMOGRAPHICS = (
    "follower_demographics",
    "engaged_audience_demographics",
    "reached_audience_demographics",
)
ONLINE_FOLLOWERS = "online_followers"
#: the metrics served at period=lifetime; every other account metric is period=day
LIFETIME_METRICS: frozenset[str] = frozenset({*DEMOGRAPHICS, ONLINE_FOLLOWERS})
#: the timeframes Meta's current reference lists for demographics (the catalogue's; Zernio's
#: API mirrors the same enum). last_14_days, last_30_days, last_90_days and prev_month were
#: deprecated in v20; one peer's notes (mira-instagram-agent, July 2026) saw them still
#: answered, but a simulator that refused what Meta accepts would only be strict: refused here.
TIMEFRAMES = ("this_week", "this_month")
TOP_VALUES = 45  # GRAPH_API §7: "demographics return the top 45 values only"
ONLINE_FOLLOWERS_DAYS = timedelta(days=30)  # GRAPH_API §7
MIN_FOLLOWERS = 100  # GRAPH_API §7

# Dimension values as Meta writes them: age buckets and F/M/U as in the Airbyte sample; ISO
# 3166 country codes and "City, Region" names as Meta's reference and the pyfacebook/airbyte
# city fixtures show them. Each list runs from the most to the least common, and countries and
# cities are longer than 45, so the top-45 cut shows.
_AGES = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_AGE_WEIGHTS = (3, 20, 35, 22, 11, 6, 3)
_GENDERS = ("F", "M", "U")
_GENDER_WEIGHTS = (50, 45, 5)
# fmt: off
_COUNTRIES = (
    "US", "IN", "BR", "GB", "ID", "MX", "DE", "FR", "IT", "ES", "TR", "CA", "AU", "PH", "AR",
    "CO", "NL", "JP", "PL", "RU", "NG", "EG", "PK", "TH", "MY", "VN", "ZA", "SA", "AE", "CL",
    "PE", "SE", "BE", "CH", "AT", "PT", "GR", "IE", "NZ", "DK", "NO", "FI", "RO", "CZ", "HU",
    "IL", "UA", "KE", "MA", "DZ", "BD", "KR", "SG", "TW", "HK", "VE", "EC", "GT", "DO",
)
_CITIES = (
    "London, England", "New York, New York", "Los Angeles, California", "São Paulo, São Paulo",
    "Istanbul, Istanbul Province", "Mumbai, Maharashtra", "Jakarta, Jakarta",
    "Mexico City, Distrito Federal", "Paris, Île-de-France", "Delhi, Delhi",
    "Buenos Aires, Buenos Aires", "Madrid, Comunidad de Madrid", "Moscow, Moscow",
    "Bangkok, Bangkok", "Chicago, Illinois", "Toronto, Ontario", "Sydney, New South Wales",
    "Berlin, Berlin", "Rome, Lazio", "Lagos, Lagos State", "Cairo, Cairo Governorate",
    "Bogotá, Distrito Especial", "Lima, Lima Region", "Santiago, Santiago Metropolitan Region",
    "Rio de Janeiro, Rio de Janeiro", "Dubai, Dubai", "Kuala Lumpur, Kuala Lumpur",
    "Manila, Metro Manila", "Bangalore, Karnataka", "Karachi, Sindh", "Melbourne, Victoria",
    "Houston, Texas", "Miami, Florida", "Barcelona, Catalonia", "Milan, Lombardy",
    "Amsterdam, North Holland", "Hamburg, Hamburg", "Munich, Bavaria",
    "Warsaw, Masovian Voivodeship", "Lisbon, Lisbon", "Athens, Attica", "Dublin, Dublin",
    "Vienna, Vienna", "Zürich, Zurich", "Stockholm, Stockholm County",
    "Copenhagen, Capital Region of Denmark", "Oslo, Oslo", "Helsinki, Uusimaa",
    "Prague, Prague", "Budapest, Budapest", "Bucharest, Bucharest", "Kyiv, Kyiv City",
    "Tel Aviv, Tel Aviv District", "Riyadh, Riyadh Region", "Nairobi, Nairobi County",
    "Johannesburg, Gauteng", "Casablanca, Casablanca-Settat", "Seoul, Seoul", "Tokyo, Tokyo",
    "Singapore, Singapore", "Hong Kong, Hong Kong", "Taipei, Taipei",
    "Ho Chi Minh City, Ho Chi Minh City", "Dhaka, Dhaka Division", "Auckland, Auckland Region",
    "Vancouver, British Columbia", "Montreal, Quebec", "San Francisco, California",
    "Seattle, Washington", "Guadalajara, Jalisco",
)
# fmt: on
DEMOGRAPHIC_VALUES: dict[str, tuple[str, ...]] = {
    "age": _AGES,
    "city": _CITIES,
    "country": _COUNTRIES,
    "gender": _GENDERS,
}
_BASE_WEIGHTS: dict[str, tuple[int, ...]] = {
    "age": _AGE_WEIGHTS,
    "gender": _GENDER_WEIGHTS,
    "country": tuple(range(len(_COUNTRIES), 0, -1)),
    "city": tuple(range(len(_CITIES), 0, -1)),
}
# Whose accounts each metric counts, as a share of the followers (percent, low..high), and how
# much a month holds beyond a week: invented, plausible proportions.
_AUDIENCE_SHARE: dict[str, tuple[int, int]] = {
    "engaged_audience_demographics": (8, 20),
    "reached_audience_demographics": (40, 120),
}
_MONTH_FACTOR = (5, 2)  # a month's audience is 2.5 times a week's
# Share of the followers online in each local hour, in permille: low at night, high at dusk.
_ONLINE_PERMILLE = (
    120, 80, 50, 40, 40, 60, 110, 180, 230, 250, 260, 280,
    300, 290, 280, 290, 320, 370, 420, 460, 470, 430, 330, 210,
)  # fmt: skip
_TITLES: dict[str, tuple[str, str]] = {
    # title of the Airbyte fixture; descriptions invented in Meta's voice (the fixture's is
    # "description.")
    "follower_demographics": (
        "Follower demographics",
        "The demographic characteristics of followers, including countries, cities and gender "
        "distribution.",
    ),
    "engaged_audience_demographics": (
        "Engaged audience demographics",
        "The demographic characteristics of the engaged audience, including countries, cities "
        "and gender distribution.",
    ),
    "reached_audience_demographics": (
        "Reached audience demographics",
        "The demographic characteristics of the reached audience, including countries, cities "
        "and gender distribution.",
    ),
    # insights_lifetime_online_followers_airbyte.json
    ONLINE_FOLLOWERS: ("Online Followers", "Number of followers online by hour"),
}


def check_audience_parameters(
    metrics: tuple[str, ...], breakdowns: tuple[str, ...], raw_timeframe: str | None
) -> str | None:
    """The timeframe a demographics request names (None when it asks for no demographics),
    after the checks the breakdown names passed already: demographics need a breakdown, each
    dimension once, and a timeframe among TIMEFRAMES; other metrics ignore timeframe, as Meta's
    reference says it applies to demographics only. The messages are invented in Graph's
    wording (PARAMETER_REQUIRED; the enum message of metric_type): no live body was found."""
    if not any(m in DEMOGRAPHICS for m in metrics):
        return None
    if not breakdowns:
        raise invalid_parameter(PARAMETER_REQUIRED.format(name="breakdown"))
    for index, name in enumerate(breakdowns):
        if name in breakdowns[:index]:
            raise invalid_parameter(f"(#100) breakdown[{index}] repeats the breakdown {name}")
    if not raw_timeframe:
        raise invalid_parameter(PARAMETER_REQUIRED.format(name="timeframe"))
    timeframe = raw_timeframe.strip().lower()
    if timeframe not in TIMEFRAMES:
        allowed = ", ".join(t.upper() for t in TIMEFRAMES)
        raise invalid_parameter(
            f'(#100) Param timeframe must be one of {{{allowed}}} - got "{raw_timeframe}"'
        )
    return timeframe


def audience_total(account_id: str, followers: int, metric: str, timeframe: str, day: date) -> int:
    """How many accounts a demographics metric describes on `day`: the followers, or the
    engaged / reached accounts of the timeframe, deterministic per (account, metric, timeframe,
    day) and the same whatever the breakdown."""
    if metric == "follower_demographics":
        return followers
    low, high = _AUDIENCE_SHARE[metric]
    percent = low + stable_hash(account_id, metric, timeframe, day) % (high - low + 1)
    total = followers * percent // 100
    if timeframe == "this_month":
        total = total * _MONTH_FACTOR[0] // _MONTH_FACTOR[1]
    return total


def demographics_results(
    account_id: str, total: int, metric: str, breakdowns: tuple[str, ...], seed: object
) -> list[tuple[list[str], int]]:
    """`total` split over the cells of the combined breakdowns, deterministic per seed; zero
    cells dropped, then the 45 largest kept (ties to the earlier cell), in dimension order."""
    cells: list[tuple[list[str], int]] = [([], 1)]
    for dimension in breakdowns:
        values, bases = DEMOGRAPHIC_VALUES[dimension], _BASE_WEIGHTS[dimension]
        cells = [
            ([*cell, value], weight * base)
            for cell, weight in cells
            for value, base in zip(values, bases, strict=True)
        ]
    # each cell's base weight, jittered by ±50 % so accounts and days differ
    weights = [w * (50 + stable_hash(account_id, metric, seed, *cell) % 101) for cell, w in cells]
    served = [(index, share) for index, share in enumerate(apportion(total, weights)) if share > 0]
    top = sorted(served, key=lambda item: (-item[1], item[0]))[:TOP_VALUES]
    return [(cells[index][0], share) for index, share in sorted(top)]


def demographics_item(
    account_id: str,
    followers: int,
    metric: str,
    breakdowns: tuple[str, ...],
    timeframe: str,
    day: date,
) -> JSON:
    """One demographics item, in the key order of
    insights_total_value_follower_demographics_age_gender_airbyte.json."""
    total = audience_total(account_id, followers, metric, timeframe, day)
    results = demographics_results(account_id, total, metric, breakdowns, (timeframe, day))
    title, description = _TITLES[metric]
    return {
        "name": metric,
        "period": "lifetime",
        "title": title,
        "description": description,
        "total_value": {
            "breakdowns": [
                {
                    "dimension_keys": list(breakdowns),
                    "results": [{"dimension_values": d, "value": v} for d, v in results],
                }
            ]
        },
        "id": f"{account_id}/insights/{metric}/lifetime",
    }


def online_days(tz: str, since: datetime, until: datetime, now: datetime) -> list[date]:
    """The local days of (since, until] online_followers serves: whole days that ended within
    the last 30 days (GRAPH_API §7); older days in the window are left out, not refused."""
    return [
        day
        for day in covered_days(tz, since, until)
        if now - ONLINE_FOLLOWERS_DAYS < day_end(tz, day) <= now
    ]


def hourly_online(account_id: str, followers: int, day: date) -> dict[str, int]:
    """The followers online in each hour "0".."23" of `day`, deterministic per (account, day)."""
    values: dict[str, int] = {}
    for hour, permille in enumerate(_ONLINE_PERMILLE):
        jitter = 80 + stable_hash(account_id, ONLINE_FOLLOWERS, day, hour) % 41  # 80..120 %
        values[str(hour)] = min(followers, followers * permille * jitter // 100_000)
    return values


def online_followers_item(account_id: str, followers: int, tz: str, days: list[date]) -> JSON:
    """The online_followers item, in the key order of
    insights_lifetime_online_followers_airbyte.json: one value per day, keyed by end_time."""
    title, description = _TITLES[ONLINE_FOLLOWERS]
    return {
        "name": ONLINE_FOLLOWERS,
        "period": "lifetime",
        "values": [
            {
                "value": hourly_online(account_id, followers, day),
                "end_time": day_end(tz, day).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            }
            for day in days
        ],
        "title": title,
        "description": description,
        "id": f"{account_id}/insights/{ONLINE_FOLLOWERS}/lifetime",
    }
