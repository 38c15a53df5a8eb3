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
    "DEFAULT_STREAMS",
    "METRIC_CONFIG",
    "RETIRED_METRICS",
    "STREAM_NAMES",
    "MetricListing",
    "MetricSpec",
    "Period",
    "RetiredMetric",
    "StreamName",
    "metric_listing",
    "parse_metric_list",
    "parse_stream_list",
]

METRIC_CONFIG: dict[str, MetricSpec] = {spec.name: spec for spec in METRICS}
DEFAULT_METRICS: tuple[str, ...] = tuple(n for n, s in METRIC_CONFIG.items() if s.default)
RETIRED_METRICS: tuple[RetiredMetric, ...] = RETIRED
#: retired names that are not also current (profile_views lost only its time_series form)
_GONE: dict[str, RetiredMetric] = {r.name: r for r in RETIRED if r.form is None}


def _named(names: list[str]) -> str:
    """Names for a one-line message: a name with a newline or control character quoted."""
    return ", ".join(n if n.isprintable() else repr(n) for n in names)


def parse_metric_list(text: str) -> tuple[str, ...]:
    """`reach, follower_count` -> ("reach", "follower_count"), checked before any request.

    Raises InputError (one line) for an empty list, a retired metric (naming its
    replacement) or an unknown name.
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
    if unknown:
        raise InputError(
            f"unknown metric {_named(unknown)}; Meta serves {', '.join(METRIC_CONFIG)}"
            " (see `igsync metrics`)"
        )
    return names


#: every stream, in the order an account's streams run (the account stream first: its day
#: ends teach the account's local date to the snapshot streams)
STREAM_NAMES: tuple[str, ...] = ("account", "audience", "media", "stories")
#: what fetch, sync-all and demo run without --streams or IGSYNC_STREAMS: the account's daily
#: metrics, 2 Graph calls per account and day asked (benchmarks/sync_all.py)
DEFAULT_STREAMS: tuple[str, ...] = ("account",)


def parse_stream_list(text: str) -> tuple[str, ...]:
    """`account, audience` -> ("account", "audience"); InputError (one line) for an empty list
    or an unknown name."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise InputError(f"no stream named; choose from {', '.join(STREAM_NAMES)}")
    unknown = [n for n in names if n not in STREAM_NAMES]
    if unknown:
        raise InputError(
            f"unknown stream {_named(unknown)}; the streams are {', '.join(STREAM_NAMES)}"
        )
    return names


def metric_listing() -> list[MetricListing]:
    """Every current metric, then every retired one, one entry per name: what `igsync metrics`
    shows. A retired form of a current metric is inside that metric's entry (`retired_forms`)."""
    return [
        MetricListing.current(s, tuple(r for r in RETIRED_METRICS if r.name == s.name))
        for s in METRIC_CONFIG.values()
    ] + [MetricListing.retired(r) for r in RETIRED_METRICS if r.name not in METRIC_CONFIG]
