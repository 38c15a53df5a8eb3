"""The account-local date a day's `end_time` ends, from the instant alone.

Its own module so that both the models (`InsightRow.local_date`) and the window planning can
use it: window.py imports the models. Why the rule holds is explained in window.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

#: an end_time at or before this UTC time of day ends the day before its UTC date
LABEL_CUTOFF = time(10, 0)


def day_label(end_time: datetime) -> date:
    """The account-local date that a day's `end_time` ends.

    `end_time` must be aware (any offset). At or before 10:00 UTC: the day before its UTC date
    (UTC-10 .. UTC+0); after: its UTC date (UTC+0:xx .. UTC+13).
    """
    end_time = end_time.astimezone(UTC)
    if end_time.timetz().replace(tzinfo=None) <= LABEL_CUTOFF:
        return end_time.date() - timedelta(days=1)
    return end_time.date()


def utc_offset(end_time: datetime) -> timedelta:
    """The UTC offset of the account whose local midnight `end_time` is, by the same rule as
    `day_label`: 08:00Z is UTC-8 (Los Angeles in winter), 18:30Z is UTC+5:30 (Kolkata)."""
    end_time = end_time.astimezone(UTC)
    since_midnight = end_time - end_time.replace(hour=0, minute=0, second=0, microsecond=0)
    if end_time.timetz().replace(tzinfo=None) <= LABEL_CUTOFF:
        return -since_midnight
    return timedelta(days=1) - since_midnight


@dataclass
class LocalClock:
    """An account's local date, learned from the day end_times Meta sent for it.

    igsync never guesses a time zone (window.py): until an end_time is seen, `today` is the
    UTC date. Streams of one account share one clock, so a snapshot stream (audience, media)
    dates its rows by the account's own day when the account stream ran first.
    """

    offset: timedelta | None = None

    def learn(self, end_time: datetime) -> None:
        self.offset = utc_offset(end_time)

    def today(self, now: datetime) -> date:
        """The account-local date at `now` (aware)."""
        now = now.astimezone(UTC)
        return (now + self.offset).date() if self.offset is not None else now.date()
