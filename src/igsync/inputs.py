"""Command-line values that are dates or instants, checked where they enter (issue 11).

Each parser takes the text as typed and returns the value or raises InputError: one line naming
the option, what was expected and what was given. Never a click or datetime message, never a
traceback (`--since 2026-11-31` used to print click's raw "does not match the formats").
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from igsync.errors import InputError
from igsync.models import as_utc

#: an Instagram account id (IG user id) as Meta gives it: ASCII digits, the first not 0
#: (`isdigit` alone takes "²"; "01784…" would be a second account Meta does not know), at
#: most 30 of them (Meta's are 17; a pasted number of hundreds of digits is no id)
_ACCOUNT_ID = re.compile(r"[1-9][0-9]{0,29}", re.ASCII)
#: what an account id must look like, for messages
ACCOUNT_ID_SHAPE = (
    "the numeric Instagram account id (ASCII digits, not starting with 0, at most 30)"
)

#: a calendar date as typed: four ASCII digits, two, two (fromisoformat alone takes more)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def is_account_id(text: str) -> bool:
    """Whether `text` is an Instagram account id as Meta writes them (`_ACCOUNT_ID`)."""
    return _ACCOUNT_ID.fullmatch(text) is not None


def parse_day(text: str, option: str) -> date:
    """`YYYY-MM-DD` as a date; InputError naming `option` for any other text or a day that
    does not exist (2026-11-31, 2026-02-29)."""
    if not _DAY.fullmatch(text):
        raise InputError(f"{option}: expected a date as YYYY-MM-DD, e.g. 2026-11-01, got {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{option}: {text} is not a day of the calendar ({exc})") from None


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """`--expires-at`: an ISO date or time (a naive one is UTC) as a UTC datetime after `now`
    (default: the clock). InputError for anything else, an instant datetime cannot hold in
    UTC ('0001-01-01T00:00:00+14:00'), or a moment already past."""
    try:
        when = as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise InputError(
            f"--expires-at: expected an ISO date or time such as 2027-01-24T10:00:00Z, got {text!r}"
        ) from None
    if when <= (now or datetime.now(UTC)):
        raise InputError(
            f"--expires-at {text}: that is in the past, so the token is dead; log in again "
            "for a new one"
        )
    return when
