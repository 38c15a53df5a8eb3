"""The account-local date a day's `end_time` ends, from the instant alone.

Its own module so that both the models (`InsightRow.local_date`) and the window planning can
use it: window.py imports the models. Why the rule holds is explained in window.py.
"""

from __future__ import annotations

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
