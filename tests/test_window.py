import itertools
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from igsync.catalogue import METRIC_CONFIG
from igsync.errors import InputError
from igsync.local_day import day_label
from igsync.models import InsightRow
from igsync.window import (
    MAX_SPAN,
    chunks,
    day_request_range,
    plan_window,
)

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("end_time", "label"),
    [
        (utc(2026, 11, 21, 8), date(2026, 11, 20)),  # Los Angeles, winter
        (utc(2026, 10, 21, 7), date(2026, 10, 20)),  # Los Angeles, summer
        (utc(2026, 11, 21, 0), date(2026, 11, 20)),  # UTC / London winter
        (utc(2026, 11, 20, 18, 30), date(2026, 11, 20)),  # Kolkata, UTC+5:30
        (utc(2026, 11, 20, 11), date(2026, 11, 20)),  # Auckland summer, UTC+13
        (utc(2026, 11, 21, 10), date(2026, 11, 20)),  # Honolulu, UTC-10
        (utc(2026, 11, 20, 23), date(2026, 11, 20)),  # Paris winter, UTC+1
    ],
)
def test_day_label_names_the_local_day_an_end_time_ends(end_time: datetime, label: date) -> None:
    assert day_label(end_time) == label


def test_a_daily_insight_row_carries_the_local_date_its_end_time_ends() -> None:
    def insight(end_time: datetime | str, period: str = "day", **fields: object) -> InsightRow:
        return InsightRow.model_validate(
            {
                "u_id": uuid4(),
                "account_id": "1784",
                "metric": "reach",
                "metric_type": "time_series",
                "period": period,
                "end_time": end_time,
                "value": 1,
                **fields,
            }
        )

    assert insight(utc(2026, 11, 20, 8)).local_date == date(2026, 11, 19)  # Los Angeles
    assert insight(utc(2026, 11, 20, 18, 30)).local_date == date(2026, 11, 20)  # Kolkata
    # Meta's own spelling of the same Los Angeles instant
    assert insight("2026-11-20T08:00:00+0000").local_date == date(2026, 11, 19)
    assert insight(utc(2026, 11, 20, 8), period="lifetime").local_date is None
    # A row read back keeps the date it was stored with.
    stored = insight(utc(2026, 11, 20, 8), local_date="2026-11-19")
    assert stored.local_date == date(2026, 11, 19)


def test_date_window_covers_exactly_the_end_times_of_those_local_days() -> None:
    plan = plan_window(NOW, since=date(2026, 11, 1), until=date(2026, 11, 3))
    inside = [utc(2026, 11, 2, 7), utc(2026, 11, 1, 18, 30), utc(2026, 11, 4, 8)]
    outside = [utc(2026, 11, 1, 8), utc(2026, 10, 31, 18, 30), utc(2026, 11, 4, 18, 30)]
    assert all(plan.since < e <= plan.until for e in inside)
    assert not any(plan.since < e <= plan.until for e in outside)
    assert {day_label(e) for e in inside} <= {date(2026, 11, d) for d in (1, 2, 3)}


def test_window_never_reaches_past_now() -> None:
    plan = plan_window(NOW, since=date(2026, 11, 20), until=date(2026, 11, 30))
    assert plan.until == NOW
    assert plan_window(NOW).until == NOW


def test_days_window_asks_enough_to_find_n_complete_days_east_or_west() -> None:
    early = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # LA's 24th is not over yet
    plan = plan_window(early, days=3)
    la_days = [utc(2026, 11, d, 8) for d in (21, 22, 23, 24)]  # labels 20..23, all complete
    assert sum(plan.since < e <= plan.until for e in la_days) >= 3
    assert plan.keep_last == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "--days must be between"),
        ({"days": 5000}, "--days must be between"),
        ({"since": date(2026, 11, 10), "until": date(2026, 11, 1)}, "is before --since"),
        ({"since": date(2026, 11, 25)}, "not a complete day yet"),
        ({"since": date(2026, 12, 1)}, "not a complete day yet"),
        ({"since": date(2024, 1, 1)}, "two-year lookback"),
        ({"until": date(2026, 11, 1)}, "--until needs --since"),
        ({"days": 3, "since": date(2026, 11, 1)}, "either --days or --since"),
    ],
)
def test_bad_windows_are_input_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        plan_window(NOW, **kwargs)  # type: ignore[arg-type]


def test_long_windows_split_into_pieces_meta_accepts() -> None:
    since, until = utc(2026, 1, 1), utc(2026, 11, 1)
    pieces = list(chunks(since, until))
    assert pieces[0][0] == since
    assert pieces[-1][1] == until
    assert all(b - a <= MAX_SPAN <= timedelta(days=30) for a, b in pieces)
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(pieces))


def test_follower_count_range_is_clamped_to_its_30_days() -> None:
    plan = plan_window(NOW, since=date(2026, 9, 1), until=date(2026, 11, 20))
    rng = plan.metric_range(METRIC_CONFIG["follower_count"], NOW)
    assert rng is not None
    assert rng[0] > NOW - timedelta(days=30)
    assert plan.metric_range(METRIC_CONFIG["reach"], NOW) == (plan.since, plan.until)


def test_follower_count_outside_its_30_days_is_skipped() -> None:
    plan = plan_window(NOW, since=date(2026, 6, 1), until=date(2026, 6, 5))
    assert plan.metric_range(METRIC_CONFIG["follower_count"], NOW) is None


def test_a_day_request_covers_one_day_end_even_on_a_23_hour_day() -> None:
    end = utc(2026, 3, 9, 7)  # LA's spring-forward day ends 07:00Z, 23 h after the previous
    previous = utc(2026, 3, 8, 8)
    since, until = day_request_range(end, previous)
    assert since == previous
    assert until == end
    since, until = day_request_range(end, None)
    assert until - since == timedelta(days=1)
