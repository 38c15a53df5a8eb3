"""The metric catalogue: every account metric Meta serves today, and the ones it retired, as data.

    METRIC_CONFIG      name -> MetricSpec of every current account metric (GRAPH_API.md §7)
    DEFAULT_METRICS    what fetch and sync-all ask for without --metrics or IGSYNC_METRICS
    RETIRED_METRICS    metrics Meta retired, each with its replacement (RetiredMetric)
    parse_metric_list  a --metrics / IGSYNC_METRICS list checked against all of the above
    metric_listing     the lines of `igsync metrics`

Adding a metric is adding a row in `_current.py`; nothing else branches on metric names.
Every row cites its source.
"""

from __future__ import annotations

from igsync.catalogue._current import METRICS
from igsync.catalogue._retired import RETIRED
from igsync.catalogue._spec import MetricListing, MetricSpec, Period, RetiredMetric, StreamName
from igsync.errors import InputError

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_CONFIG",
    "RETIRED_METRICS",
    "MetricListing",
    "MetricSpec",
    "Period",
    "RetiredMetric",
    "StreamName",
    "metric_listing",
    "parse_metric_list",
]

METRIC_CONFIG: dict[str, MetricSpec] = {spec.name: spec for spec in METRICS}
DEFAULT_METRICS: tuple[str, ...] = tuple(n for n, s in METRIC_CONFIG.items() if s.default)
RETIRED_METRICS: tuple[RetiredMetric, ...] = RETIRED
#: retired names that are not also current (profile_views lost only its time_series form)
_GONE: dict[str, RetiredMetric] = {r.name: r for r in RETIRED if r.form is None}


def parse_metric_list(text: str) -> tuple[str, ...]:
    """`reach, follower_count` -> ("reach", "follower_count"), checked before any request.

    Raises InputError (one line) for an empty list, a retired metric (naming its
    replacement), a metric of the audience stream (not fetched yet) or an unknown name.
    """
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise InputError("no metric named; give a comma list such as reach,follower_count")
    unknown: list[str] = []
    for name in names:
        if name in _GONE:
            raise InputError(_GONE[name].refusal())
        spec = METRIC_CONFIG.get(name)
        if spec is None:
            unknown.append(name)
        elif spec.stream != "account":
            shape = f"by {', '.join(spec.breakdowns)}" if spec.breakdowns else "by hour"
            raise InputError(
                f"{name} is an audience metric (period {spec.period}, {shape}): it comes with "
                "the audience stream, which igsync does not fetch yet"
            )
    if unknown:
        usable = ", ".join(n for n, s in METRIC_CONFIG.items() if s.stream == "account")
        raise InputError(
            f"unknown metric {', '.join(unknown)}; account metrics: {usable} (see `igsync metrics`)"
        )
    return names


def metric_listing() -> list[MetricListing]:
    """Every current metric, then every retired one: what `igsync metrics` shows."""
    return [MetricListing.current(s) for s in METRIC_CONFIG.values()] + [
        MetricListing.retired(r) for r in RETIRED_METRICS
    ]
