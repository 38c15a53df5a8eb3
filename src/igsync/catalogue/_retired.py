"""Account metrics Meta retired, known by name so that asking for one says what to ask instead.

A retired metric fails the whole request it is in (GRAPH_API.md §1), so `--metrics` refuses
them before any request.
"""

from __future__ import annotations

from datetime import date

from igsync.catalogue._sources import (
    GRAPH_API_1,
    GRAPH_API_7,
    META_V18,
    META_V21,
    META_V22,
    PLINXORE,
)
from igsync.catalogue._spec import RetiredMetric

_V18_DAY = date(2023, 12, 11)
_V21_DAY = date(2025, 1, 8)
_V22_DAY = date(2025, 4, 21)


def _v21_click(name: str, taps: str) -> RetiredMetric:
    return RetiredMetric(
        name=name,
        retired_in="v21.0",
        retired_everywhere=_V21_DAY,
        replacement="profile_links_taps",
        note=f"it counted taps on the {taps} button, which profile_links_taps now counts "
        "(breakdown contact_button_type)",
        source=f"{META_V21}; {GRAPH_API_1}",
    )


def _v18_audience(name: str, replacement: str | None, note: str) -> RetiredMetric:
    return RetiredMetric(
        name=name,
        retired_in="v18.0",
        retired_everywhere=_V18_DAY,
        replacement=replacement,
        note=note,
        source=META_V18,
    )


RETIRED: tuple[RetiredMetric, ...] = (
    RetiredMetric(
        name="impressions",
        retired_in="v22.0",
        retired_everywhere=_V22_DAY,
        replacement="views",
        note="times content was displayed; Meta now answers it with 'must be one of'",
        source=f"{META_V22}; {GRAPH_API_7}; {PLINXORE}",
    ),
    RetiredMetric(
        name="profile_visits",
        retired_in=None,
        retired_everywhere=None,
        replacement="profile_views",
        note="a media metric; the account endpoint refuses it with 'must be one of'",
        source=f"{PLINXORE}; {GRAPH_API_7}",
    ),
    _v21_click("email_contacts", "email"),
    # Meta's v21 changelog spells it get_direction_clicks; the API served get_directions_clicks.
    _v21_click("get_directions_clicks", "directions"),
    _v21_click("phone_call_clicks", "call"),
    _v21_click("text_message_clicks", "text"),
    RetiredMetric(
        name="profile_views",
        form="time_series",
        retired_in="v21.0",
        retired_everywhere=_V21_DAY,
        replacement="profile_views",
        note="only its time_series form; igsync asks for it as total_value",
        source=f"{META_V21}; {GRAPH_API_1}",
    ),
    RetiredMetric(
        name="website_clicks",
        form="time_series",
        retired_in="v21.0",
        retired_everywhere=_V21_DAY,
        replacement="website_clicks",
        note="only its time_series form; igsync asks for it as total_value",
        source=f"{META_V21}; {GRAPH_API_1}",
    ),
    _v18_audience("audience_gender_age", "follower_demographics", "followers by gender and age"),
    _v18_audience("audience_country", "follower_demographics", "followers by country"),
    _v18_audience("audience_city", "follower_demographics", "followers by city"),
    _v18_audience("audience_locale", None, "followers by locale; no demographics breakdown has it"),
)
