"""Property-based tests (hypothesis) of every parser of outside text (issue 11, item 2).

For any text at all, a parser returns a value or raises the project's own error for bad input
(InputError, ConfigError, GraphError for what Meta sends): never a ValueError, OverflowError or
TypeError that would end as a traceback. And every valid value survives the round trip through
its text form.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from igsync.config import MAX_HTTP_TIMEOUT, Settings, database_url, load_settings
from igsync.errors import ConfigError, ErrorKind, GraphError, InputError
from igsync.graph import graph_time
from igsync.inputs import parse_day, parse_expiry
from igsync.store import open_store
from igsync.sync_all import Shard, parse_shard
from igsync.tokens import MAX_WITHIN, parse_duration

#: text as a user could type it, and worse: any Unicode, digits of other scripts, controls
ANY_TEXT = st.text(max_size=40)
#: text made of the characters these formats are built from, so near-misses come up often
FORMATISH = st.text(alphabet="0123456789-:+/TZWmhdw.² ", max_size=30)
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
T = TypeVar("T")
#: instants datetime holds in any offset: a day inside its range at each end
INSTANTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def attempt(call: Callable[[], T], error: type[Exception]) -> T | Exception:
    """What `call` returns, or the `error` it raises (any other exception fails the test)."""
    try:
        return call()
    except error as exc:
        return exc


def one_line(exc: Exception, starts: str) -> None:
    assert str(exc).startswith(starts), str(exc)
    assert "\n" not in str(exc)


# --- durations (refresh-token --expiring-within) ---


@given(st.one_of(ANY_TEXT, FORMATISH))
@example("0d")
@example("9999999d")
@example("99999999999999999999w")
@example("7²d")
@example("7\u0663d")  # ARABIC-INDIC DIGIT THREE: isdigit, not ASCII
def test_durations_parse_or_say_why(text: str) -> None:
    within = attempt(lambda: parse_duration(text), InputError)
    if isinstance(within, Exception):
        one_line(within, "--expiring-within")
    else:
        assert timedelta(0) < within <= MAX_WITHIN


@given(st.integers(min_value=1, max_value=525_600), st.sampled_from("mhdwMHDW"))
def test_valid_durations_round_trip(amount: int, unit: str) -> None:
    names = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    within = timedelta(**{names[unit.lower()]: amount})
    if within <= MAX_WITHIN:
        assert parse_duration(f"{amount}{unit}") == within
    else:
        with pytest.raises(InputError, match="at most 365d"):
            parse_duration(f"{amount}{unit}")


# --- dates (--since, --until) ---


@given(st.one_of(ANY_TEXT, FORMATISH))
@example("2026-11-31")
@example("2026-02-29")
@example("0000-01-01")
@example("20261101")
@example("2026-W48-1")
@example("\uff12\uff10\uff12\uff16-11-01")  # FULLWIDTH digits
def test_dates_parse_or_say_why(text: str) -> None:
    day = attempt(lambda: parse_day(text, "--since"), InputError)
    if isinstance(day, Exception):
        one_line(day, "--since: ")
    else:
        assert day.isoformat() == text


@given(st.dates())
def test_valid_dates_round_trip(day: date) -> None:
    assert parse_day(day.isoformat(), "--until") == day


# --- shards (sync-all --shard K/N) ---


@given(st.one_of(ANY_TEXT, FORMATISH))
@example("0/3")
@example("4/3")
@example("1/0")
@example("¹/³")
@example(" 1/2 ")
def test_shards_parse_or_say_why(text: str) -> None:
    shard = attempt(lambda: parse_shard(text), InputError)
    if isinstance(shard, Exception):
        one_line(shard, "--shard ")
    else:
        assert 1 <= shard.index <= shard.count


@given(
    st.integers(min_value=1, max_value=10**6).flatmap(
        lambda n: st.tuples(st.integers(1, n), st.just(n))
    )
)
def test_valid_shards_round_trip(k_n: tuple[int, int]) -> None:
    k, n = k_n
    assert parse_shard(f"{k}/{n}") == Shard(k, n)


# --- expiries (accounts add --expires-at) ---


@given(st.one_of(ANY_TEXT, FORMATISH))
@example("0001-01-01T00:00:00+14:00")
@example("9999-12-31T23:59:59-14:00")
@example("9999-12-31T23:59:59-23:59")
@example("2027-02-30")
@example("2027-01-24T10:00:00Z")
def test_expiries_parse_or_say_why(text: str) -> None:
    when = attempt(lambda: parse_expiry(text, NOW), InputError)
    if isinstance(when, Exception):
        one_line(when, "--expires-at")
    else:
        assert when.tzinfo is UTC
        assert when > NOW


@given(INSTANTS, OFFSETS)
def test_valid_expiries_round_trip(instant: datetime, offset: timezone) -> None:
    try:
        text = instant.astimezone(offset).isoformat()
    except OverflowError:  # not an instant of that offset: not a text anyone can type
        return
    if instant > NOW:
        assert parse_expiry(text, NOW) == instant
    else:
        with pytest.raises(InputError, match="in the past"):
            parse_expiry(text, NOW)


# --- Graph timestamps (end_time, media timestamp) ---


@given(st.one_of(ANY_TEXT, FORMATISH, st.integers(), st.none(), st.floats()))
@example("2026-11-20T08:00:00+0000")
@example("0001-01-01T00:00:00+1400")
@example("2026-11-20T08:00:00+2400")
@example("")
def test_graph_timestamps_parse_or_raise_a_graph_error(value: object) -> None:
    when = attempt(lambda: graph_time(value, "end_time"), GraphError)
    if isinstance(when, GraphError):
        assert when.kind is ErrorKind.INVALID
        one_line(when, "the Graph API's end_time ")
    else:
        assert isinstance(when, datetime)
        assert when.tzinfo is UTC


@given(INSTANTS, OFFSETS)
def test_graph_timestamps_round_trip_in_metas_format(instant: datetime, offset: timezone) -> None:
    try:
        local = instant.astimezone(offset)
    except OverflowError:
        return
    # Meta's form: `+0000`, no colon in the offset (GRAPH_API.md §2)
    text = local.isoformat(timespec="seconds")
    metas = text[:-3] + text[-2:]
    assert graph_time(metas, "end_time") == instant.replace(microsecond=0)


# --- database URLs (--db, IGSYNC_DATABASE_URL) ---

URLISH = st.one_of(
    ANY_TEXT,
    st.builds(
        "".join,
        st.lists(
            st.sampled_from(
                [
                    "sqlite:",
                    "///",
                    "//",
                    "postgresql://",
                    "postgres://",
                    "supabase",
                    "user",
                    ":",
                    "@",
                    "[",
                    "]",
                    "::1",
                    "host",
                    "/db",
                    "?",
                    "sslmode=",
                    "%",
                    "%zz",
                    "x",
                    " ",
                ]
            ),
            max_size=8,
        ),
    ),
)


@given(URLISH)
@example("sqlite:///")
@example("sqlite://relative.db")
@example("postgresql://[::1")
@example("postgresql://u:p@host:99999/db")
@example("mysql://u@h/db")
def test_database_urls_are_taken_or_refused_as_configuration_errors(url: str) -> None:
    checked = attempt(lambda: database_url(Settings.model_construct(), url), ConfigError)
    if isinstance(checked, Exception):
        one_line(checked, "--db: ")
        return
    assert checked == url
    # building a store does no I/O: it must not choke on the URL; `supabase` alone is refused
    # (it needs SUPABASE_URL and SUPABASE_KEY)
    built = attempt(lambda: open_store(checked), ConfigError)
    assert not isinstance(built, Exception) or checked == "supabase"


@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=30,
    )
)
def test_valid_sqlite_urls_round_trip(path: str) -> None:
    url = f"sqlite:///{path}"
    assert database_url(Settings.model_construct(), url) == url


# --- environment variables ---

VARIABLES = [
    "IGSYNC_DATABASE_URL",
    "SUPABASE_URL",
    "IG_ACCOUNT_ID",
    "IG_LONG_TOKEN",
    "IGSYNC_GRAPH_URL",
    "IGSYNC_INSTAGRAM_URL",
    "IGSYNC_GRAPH_VERSION",
    "IGSYNC_METRICS",
    "IGSYNC_STREAMS",
    "IGSYNC_HTTP_TIMEOUT",
    "IGSYNC_TOKEN_KEYS",
]


@contextmanager
def environment(name: str, value: str) -> Iterator[None]:
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run where no .env is, with none of the variables set from outside."""
    saved = {name: os.environ.pop(name) for name in VARIABLES if name in os.environ}
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("noenv"))
    try:
        yield
    finally:
        os.chdir(cwd)
        os.environ.update(saved)
        from igsync.token_crypto import use_keys

        use_keys(None)


@settings(max_examples=300)
@given(
    st.sampled_from(VARIABLES),
    st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
        max_size=30,
    ),
)
@example("IGSYNC_HTTP_TIMEOUT", "nan")
@example("IGSYNC_HTTP_TIMEOUT", "inf")
@example("IGSYNC_HTTP_TIMEOUT", "1e309")
@example("IGSYNC_HTTP_TIMEOUT", str(MAX_HTTP_TIMEOUT + 1))
@example("IGSYNC_TOKEN_KEYS", "a,b")
@example("IGSYNC_GRAPH_URL", "http://[::1")
@example("IGSYNC_GRAPH_URL", "http://host:99999")
def test_every_variable_loads_or_is_one_line_naming_it(name: str, value: str) -> None:
    with environment(name, value):
        loaded = attempt(lambda: load_settings(env_file=None), ConfigError)
    if isinstance(loaded, Exception):
        one_line(loaded, name)


def test_an_insights_answer_with_a_bad_end_time_is_a_graph_error_not_a_crash() -> None:
    from igsync.graph import parse_insights

    body = {
        "data": [
            {"name": "reach", "period": "day", "values": [{"value": 1, "end_time": "next tuesday"}]}
        ]
    }
    with pytest.raises(GraphError, match="end_time 'next tuesday' is not a timestamp") as caught:
        parse_insights(body)
    assert caught.value.kind is ErrorKind.INVALID
