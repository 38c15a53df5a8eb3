"""Parsing insights answers: time_series points and total_value totals (GRAPH_API.md §1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from igsync.errors import ErrorKind, GraphError
from igsync.models import as_utc


@dataclass(frozen=True)
class Point:
    """One day of a time_series metric."""

    end_time: datetime
    value: int | None
    value_json: Any = None


@dataclass(frozen=True)
class MetricValues:
    """One item of an insights answer: time_series `points`, or a `total` for total_value."""

    name: str
    period: str
    points: list[Point] = field(default_factory=list)
    total: int | None = None
    breakdowns: Any = None


def graph_time(value: object, field: str) -> datetime:
    """A Graph API timestamp (`2026-11-20T08:00:00+0000`, GRAPH_API.md §2) as a UTC datetime.

    Raises GraphError (kind INVALID: the same answer again would not help) naming `field` for
    a value that is not such a timestamp, or one datetime cannot hold in UTC.
    """
    if isinstance(value, str):
        try:
            # §2: "+0000" offsets need a real ISO parser; fromisoformat takes them on 3.11.
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            pass
    shown = repr(value)[:40]
    raise GraphError(
        f"the Graph API's {field} {shown} is not a timestamp",
        kind=ErrorKind.INVALID,
    )


def _parse_item(item: dict[str, Any]) -> MetricValues:
    name = str(item.get("name", ""))
    period = str(item.get("period", "day"))
    if "total_value" in item:
        total = item["total_value"] or {}
        value = total.get("value")
        return MetricValues(
            name=name,
            period=period,
            total=value if isinstance(value, int) else None,
            breakdowns=total.get("breakdowns"),
        )
    points = []
    total = None
    for entry in item.get("values") or []:
        if "end_time" not in entry:
            # a lifetime value (media insights) carries no end_time: it is the total so far
            # (graph_samples/media_insights_lifetime_values_no_end_time_pyfacebook.json)
            value = entry.get("value")
            total = value if isinstance(value, int) and not isinstance(value, bool) else None
            continue
        end_time = graph_time(entry["end_time"], "end_time")
        value = entry.get("value")
        if isinstance(value, bool) or not isinstance(value, int | None):
            points.append(Point(end_time, None, value))
        else:
            points.append(Point(end_time, value))
    return MetricValues(name=name, period=period, points=points, total=total)


def parse_insights(body: Any) -> list[MetricValues]:
    """Parse an insights answer. `{"data": []}` is "no data", not zero (§1)."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise GraphError("the Graph API answered without a data list", kind=ErrorKind.TRANSIENT)
    return [_parse_item(item) for item in body["data"] if isinstance(item, dict)]
