"""Which account-local days to fetch, and how to ask the Graph API for them.

Meta reports each day under `end_time`, the account's local midnight that ends the day, written
in UTC (GRAPH_API.md §2): 08:00Z for a Los Angeles day in winter, 18:30Z of the same date for
Kolkata. We never guess an account's time zone. Days are *labelled* from their end_time alone:

    end_time at or before 10:00 UTC  ->  the day before its UTC date   (UTC-10 .. UTC+0)
    end_time after 10:00 UTC         ->  its UTC date                  (UTC+0:xx .. UTC+13)

so the local dates S..U are exactly the days whose end_time falls in (S 10:00Z, U+1 10:00Z],
which is how a request covers days (GRAPH_API.md §1). Only UTC-11/-12 and UTC+14 (Samoa,
Baker, Kiribati) get a label one day off; their rows are still stored under the exact instant
Meta sent, so keys never collide or move.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from igsync.catalogue import MetricSpec
from igsync.errors import InputError
from igsync.local_day import LABEL_CUTOFF
from igsync.models import Window

DAY = timedelta(days=1)
#: Meta refuses a `since` older than about two years (GRAPH_API.md §1); stay a day inside it.
MAX_LOOKBACK_DAYS = 728
#: at most 30 days between since and until; 29 leaves room for clock skew
MAX_SPAN = timedelta(days=29)
#: how far inside a metric's lookback limit its requests start (see WindowPlan.metric_range)
LOOKBACK_MARGIN = timedelta(minutes=10)
DEFAULT_DAYS = 3
#: --days N asks from label today-N-1 on, which must stay inside the lookback
MAX_DAYS = MAX_LOOKBACK_DAYS - 2


def _boundary(day: date) -> datetime:
    """`day` at 10:00 UTC: the end_times of day `day` lie in (_boundary(day), _boundary(day+1)]."""
    return datetime.combine(day, LABEL_CUTOFF, tzinfo=UTC)


@dataclass(frozen=True)
class WindowPlan:
    """The range (since, until] to request and how many of the newest days to keep."""

    since: datetime
    until: datetime
    #: `--days N` keeps the N newest complete days found in the range; dates keep all
    keep_last: int | None
    requested: Window
    #: said in every account's result notes: an --until not over yet, cut back to now
    note: str | None = None

    def metric_range(self, spec: MetricSpec, now: datetime) -> tuple[datetime, datetime] | None:
        """The range clamped to what the API serves for this metric; None if nothing is left
        (or the metric takes a timeframe, not a since/until window: demographics)."""
        if spec.lookback_days is None:
            return None
        # Meta counts the limit back from its own clock when the request lands: a few minutes
        # inside it keep a slow or retried request from crossing it, and still take every one
        # of the N days (only in the last minutes of a local day is the oldest one left out).
        earliest = now - timedelta(days=spec.lookback_days) + LOOKBACK_MARGIN
        since = max(self.since, earliest)
        return (since, self.until) if since < self.until else None


def plan_window(
    now: datetime,
    *,
    days: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> WindowPlan:
    """Turn `--days` or `--since/--until` (inclusive local dates) into a request range.

    Raises InputError for a window Meta would refuse: in the future, beyond the lookback, or
    upside down. The end is clamped to `now`, so days not yet complete are never fetched.
    """
    now = now.astimezone(UTC)
    today = now.date()
    earliest = today - timedelta(days=MAX_LOOKBACK_DAYS)
    if since is None and until is not None:
        raise InputError("--until needs --since (or use --days N)")
    if since is not None and days is not None:
        raise InputError("use either --days or --since/--until, not both")
    if since is None:
        n = DEFAULT_DAYS if days is None else days
        if not 1 <= n <= MAX_DAYS:
            raise InputError(f"--days must be between 1 and {MAX_DAYS}, got {n}")
        # The newest complete day is today's label east of UTC late in the UTC day, and the
        # day before yesterday's west of UTC early in it: ask for labels from today-N-1 on
        # (the range ends at now) and keep the N newest that exist.
        first = today - timedelta(days=n + 1)
        return WindowPlan(
            since=_boundary(first - DAY),
            until=now,
            keep_last=n,
            requested=Window(since=today - timedelta(days=n), until=today - DAY),
        )
    if since >= today:
        raise InputError(f"--since {since} is not a complete day yet; the latest is {today - DAY}")
    last = today - DAY if until is None else until
    if since > last:
        raise InputError(f"--until {last} is before --since {since}")
    if since < earliest:
        raise InputError(
            f"--since {since} is beyond the Graph API's two-year lookback; "
            f"the earliest day it serves is {earliest}"
        )
    return WindowPlan(
        since=_boundary(since),
        until=min(_boundary(last + DAY), now),
        keep_last=None,
        requested=Window(since=since, until=last),
        note=None
        if last < today
        else f"--until {last} is not over yet: the window ends now, and a day is fetched once"
        " it is complete",
    )


def chunks(since: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Split (since, until] into pieces Meta accepts (at most 30 days each)."""
    start = since
    while start < until:
        end = min(start + MAX_SPAN, until)
        yield start, end
        start = end


def day_request_range(end_time: datetime, previous: datetime | None) -> tuple[datetime, datetime]:
    """(since, until] that covers exactly the day ending at `end_time`.

    Normally since = the previous day's end_time (known from the series) or one day before.
    A 23-hour day (DST) would let `end_time - 1 day` cover two day ends, so the known previous
    end wins when it is later.
    """
    since = end_time - DAY
    if previous is not None and since < previous < end_time:
        since = previous
    return since, end_time
