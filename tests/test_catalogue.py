"""The metric catalogue: what it holds, where each fact comes from, what --metrics accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from igsync.catalogue import (
    DEFAULT_METRICS,
    METRIC_CONFIG,
    RETIRED_METRICS,
    MetricSpec,
    metric_listing,
    parse_metric_list,
)
from igsync.errors import InputError
from igsync.streams import AccountStream, AudienceStream, choose_streams
from samples import sample

# GRAPH_API.md §1: "the API refuses them without metric_type=total_value".
TOTAL_VALUE_ONLY = {
    "views",
    "profile_views",
    "accounts_engaged",
    "total_interactions",
    "likes",
    "comments",
    "shares",
    "saves",
    "replies",
    "profile_links_taps",
    "website_clicks",
    "follows_and_unfollows",
}
# Meta's list also holds Threads metrics and content_views, which Instagram does not document.
NOT_INSTAGRAM = re.compile(r"^(threads_.*|quotes|content_views)$")


def meta_accepted_metrics() -> set[str]:
    message = sample("error_100_metric_must_be_one_of_partial.json")["error"]["message"]
    return {m.strip() for m in message.split("following values:", 1)[1].split(",")}


def test_the_default_set_is_unchanged() -> None:
    assert DEFAULT_METRICS == ("reach", "profile_views", "accounts_engaged", "follower_count")


def test_every_instagram_metric_meta_accepts_is_catalogued() -> None:
    instagram = {m for m in meta_accepted_metrics() if not NOT_INSTAGRAM.match(m)}
    assert set(METRIC_CONFIG) == instagram


def test_no_retired_name_is_among_what_meta_accepts() -> None:
    gone = {r.name for r in RETIRED_METRICS if r.form is None}
    assert gone.isdisjoint(meta_accepted_metrics())
    assert gone.isdisjoint(METRIC_CONFIG)
    # a retired form keeps its name in the catalogue, served the other way
    for retired in (r for r in RETIRED_METRICS if r.form is not None):
        assert METRIC_CONFIG[retired.name].metric_type != retired.form


def test_every_fact_names_its_source() -> None:
    cited = re.compile(r"https://|GRAPH_API\.md §\d|graph_samples/|airbytehq/|plinxore/")
    for spec in METRIC_CONFIG.values():
        assert cited.search(spec.source), spec.name
        assert spec.description.strip(), spec.name
    for retired in RETIRED_METRICS:
        assert cited.search(retired.source), retired.name


def test_total_value_only_metrics_are_asked_for_as_total_value() -> None:
    for name in TOTAL_VALUE_ONLY:
        assert METRIC_CONFIG[name].metric_types == ("total_value",), name
    assert METRIC_CONFIG["reach"].metric_types == ("time_series", "total_value")
    assert METRIC_CONFIG["follower_count"].metric_types == ("time_series",)


def test_streams_split_daily_metrics_from_audience_snapshots() -> None:
    audience = {n for n, s in METRIC_CONFIG.items() if s.stream == "audience"}
    assert audience == {
        "online_followers",
        "follower_demographics",
        "engaged_audience_demographics",
        "reached_audience_demographics",
    }
    for name in audience - {"online_followers"}:
        spec = METRIC_CONFIG[name]
        assert (spec.period, spec.metric_type) == ("lifetime", "total_value")
        assert spec.breakdowns == ("age", "city", "country", "gender")
        assert spec.timeframes
        assert spec.lookback_days is None
    for spec in METRIC_CONFIG.values():
        if spec.stream == "account":
            assert spec.period == "day"
            assert spec.lookback_days
            assert not spec.timeframes


def test_breakdowns_follow_metas_reference() -> None:
    assert METRIC_CONFIG["views"].breakdowns == ("follower_type", "media_product_type")
    assert METRIC_CONFIG["follows_and_unfollows"].breakdowns == ("follow_type",)
    assert METRIC_CONFIG["profile_links_taps"].breakdowns == ("contact_button_type",)
    assert METRIC_CONFIG["accounts_engaged"].breakdowns == ()


def test_a_spec_that_contradicts_itself_is_refused() -> None:
    base = {"name": "x", "lookback_days": 1, "description": "d", "source": "GRAPH_API.md §1"}
    with pytest.raises(ValidationError, match="not among"):
        MetricSpec(**base, metric_type="time_series", metric_types=("total_value",))
    with pytest.raises(ValidationError, match="daily windows"):
        MetricSpec(
            **base, metric_type="total_value", metric_types=("total_value",), period="lifetime"
        )


# -- --metrics / IGSYNC_METRICS ------------------------------------------------------------------


def test_metric_lists_are_deduplicated_and_checked() -> None:
    assert parse_metric_list(" reach, reach ,views") == ("reach", "views")
    assert parse_metric_list("likes,comments,reposts") == ("likes", "comments", "reposts")
    with pytest.raises(InputError, match="no metric"):
        parse_metric_list(" , ")
    with pytest.raises(InputError, match=r"unknown metric bogus, nope; Meta serves reach,"):
        parse_metric_list("bogus,reach,nope")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("impressions", ["retired by Meta in v22.0", "2025-04-21", "ask for views instead"]),
        ("email_contacts", ["v21.0", "2025-01-08", "ask for profile_links_taps"]),
        ("profile_visits", ["not served", "ask for profile_views instead"]),
        ("audience_locale", ["v18.0", "Meta offers no replacement"]),
        ("audience_gender_age", ["ask for follower_demographics"]),
    ],
)
def test_a_retired_metric_is_refused_naming_its_replacement(name: str, words: list[str]) -> None:
    with pytest.raises(InputError) as refused:
        parse_metric_list(f"reach,{name}")
    message = str(refused.value)
    assert message.startswith(f"{name} is ")
    assert "\n" not in message
    for word in words:
        assert word in message


def test_metrics_whose_time_series_form_was_retired_are_still_accepted() -> None:
    assert parse_metric_list("profile_views,website_clicks") == ("profile_views", "website_clicks")


@pytest.mark.parametrize("name", ["follower_demographics", "online_followers"])
def test_an_audience_metric_needs_the_audience_stream(name: str) -> None:
    with pytest.raises(
        InputError,
        match=rf"^{name} belongs to the audience stream.*"
        r"--streams account,audience$",
    ):
        choose_streams(["account"], ["reach", name])
    (stream,) = choose_streams(None, [name])  # named alone, it picks its own stream
    assert stream.name == "audience"


def test_streams_run_in_order_with_each_default_set() -> None:
    account, audience = choose_streams(["audience", "account"])
    assert (account.name, audience.name) == ("account", "audience")
    assert isinstance(account, AccountStream)
    assert isinstance(audience, AudienceStream)
    assert tuple(s.name for s in account.specs) == DEFAULT_METRICS
    assert {s.name for s in audience.specs} == {
        "online_followers",
        "follower_demographics",
        "engaged_audience_demographics",
        "reached_audience_demographics",
    }
    with pytest.raises(InputError, match="unknown stream reels; the streams are account, audience"):
        choose_streams(["reels"])


def test_the_listing_holds_every_current_and_retired_metric() -> None:
    lines = metric_listing()
    current = [line.name for line in lines if line.status == "current"]
    assert current == list(METRIC_CONFIG)
    retired = [line for line in lines if line.status == "retired"]
    assert len({line.name for line in lines}) == len(lines)  # one entry per name
    listed = {(line.name, None) for line in retired} | {
        (line.name, form.metric_type) for line in lines for form in line.retired_forms
    }
    assert listed == {(r.name, r.form) for r in RETIRED_METRICS}  # each one, once
    assert all(line.status == "current" for line in lines if line.retired_forms)
    impressions = next(line for line in retired if line.name == "impressions")
    assert impressions.replacement == "views"


def test_the_readme_tables_name_every_metric() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### `igsync metrics`", 1)[1].split("\n### ", 1)[0]
    for name in [*METRIC_CONFIG, *(r.name for r in RETIRED_METRICS)]:
        assert f"`{name}`" in section, name


def test_a_chosen_stream_none_of_the_metrics_belongs_to_runs_its_defaults() -> None:
    account, audience = choose_streams(["account", "audience"], ["reach"])
    assert [s.name for s in account.specs] == ["reach"]
    assert len(audience.specs) == 4  # never a chosen stream that silently fetches nothing


def test_igsync_metrics_never_refuses_a_run_of_other_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from igsync.cli._common import selection
    from igsync.config import Settings

    monkeypatch.setenv("IGSYNC_METRICS", "reach,views")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert selection(settings, "stories", None) == (("stories",), None)
    assert selection(settings, "account,stories", None) == (
        ("account", "stories"),
        ("reach", "views"),
    )
    with pytest.raises(InputError, match=r"^--metrics: reach belongs to the account stream"):
        selection(settings, "stories", "reach")  # on the command line it is a mistake
