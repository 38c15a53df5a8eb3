"""`igsync report`: the numbers it assembles from the store (gaps stay gaps, the latest value,
the change of the mean against the previous period) on SQLite and a real PostgreSQL server, and
what the command prints on the terminal, as JSON and as HTML, in-process.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from cli_runner import run_cli
from igsync.config import demo_database_path
from igsync.models import AudienceRow, InsightRow, MediaInsightRow, MediaRow
from igsync.report import build_report, sparkline
from igsync.store import Store, open_store

pytestmark = pytest.mark.anyio

USER = UUID("00000000-0000-4000-8000-000000000013")
ACCOUNT = "17841400000000013"
UNTIL = date(2026, 11, 28)


def day(local: date, metric: str, value: int | None) -> InsightRow:
    """A daily row of an account at UTC-8: the day ends at 08:00Z of the next date."""
    end = datetime.combine(local + timedelta(days=1), time(8), tzinfo=UTC)
    return InsightRow(
        u_id=USER,
        account_id=ACCOUNT,
        metric=metric,
        metric_type="time_series",
        period="day",
        end_time=end,
        value=value,
    )


#: reach over 4 days (UNTIL-3 … UNTIL) and the 4 before: a day with no row, one Meta had no
#: value for (None), a real zero
REACH = {
    UNTIL - timedelta(days=7): 100,
    UNTIL - timedelta(days=6): 300,
    UNTIL - timedelta(days=3): 0,
    UNTIL - timedelta(days=2): None,
    # UNTIL - 1: no row at all
    UNTIL: 400,
}


async def fill(store: Store) -> None:
    rows = [day(d, "reach", v) for d, v in REACH.items()]
    rows.append(day(UNTIL, "profile_views", 7))
    # a row outside both periods is left out
    rows.append(day(UNTIL - timedelta(days=30), "reach", 999_999))
    await store.upsert_insights(rows)
    await store.upsert_audience(
        [
            AudienceRow(
                u_id=USER,
                account_id=ACCOUNT,
                metric="follower_demographics",
                timeframe="this_month",
                breakdown="country",
                dimension_values=country,
                captured_on=captured,
                value=value,
            )
            for captured, country, value in [
                (UNTIL - timedelta(days=2), "US", 500),  # older snapshot: not shown
                (UNTIL + timedelta(days=1), "US", 10),
                (UNTIL + timedelta(days=1), "IN", 30),
            ]
        ]
    )
    await store.upsert_media(
        [
            MediaRow(u_id=USER, account_id=ACCOUNT, media_id=m, media_product_type=kind)
            for m, kind in [("m1", "FEED"), ("m2", "REELS"), ("s1", "STORY")]
        ]
    )
    await store.upsert_media_insights(
        [
            MediaInsightRow(
                u_id=USER,
                account_id=ACCOUNT,
                media_id=m,
                metric="views",
                captured_on=captured,
                value=v,
            )
            for m, captured, v in [
                ("m1", UNTIL - timedelta(days=1), 50),
                ("m1", UNTIL, 80),
                ("m2", UNTIL, 60),
                ("s1", UNTIL, 5),
            ]
        ]
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'igsync.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    async with open_store(url) as opened:
        await fill(opened)
        yield opened


async def test_report_keeps_gaps_and_compares_means(store: Store) -> None:
    report = await build_report(store, days=4)
    assert report.until == UNTIL  # the newest local date stored
    assert report.since == UNTIL - timedelta(days=3)
    assert (report.previous_since, report.previous_until) == (
        UNTIL - timedelta(days=7),
        UNTIL - timedelta(days=4),
    )
    [account] = report.accounts
    assert (account.u_id, account.account_id) == (USER, ACCOUNT)
    reach, views = account.metrics
    assert (reach.metric, views.metric) == ("reach", "profile_views")
    # the zero is a value; the null and the missing day are gaps
    assert reach.values == [0, None, None, 400]
    assert (reach.latest, reach.latest_date) == (400, UNTIL)
    assert reach.mean == 200
    assert reach.previous_mean == 200
    assert reach.change_pct == 0
    assert views.values == [None, None, None, 7]
    assert views.previous_mean is None
    assert views.change_pct is None
    [countries] = account.audience
    assert countries.captured_on == UNTIL + timedelta(days=1)
    assert countries.top == [("IN", 30), ("US", 10)]
    assert [(m.media_id, m.value) for m in account.top_media] == [("m1", 80), ("m2", 60)]
    assert [(m.media_id, m.media_product_type) for m in account.top_stories] == [("s1", "STORY")]


async def test_report_change_and_selection(store: Store) -> None:
    report = await build_report(
        store, days=2, until=UNTIL - timedelta(days=2), metrics=["reach"], streams=["account"]
    )
    [account] = report.accounts
    [reach] = account.metrics
    # period: UNTIL-3 (0), UNTIL-2 (None); previous: UNTIL-5 (none), UNTIL-4 (none)
    assert reach.values == [0, None]
    assert reach.previous_mean is None
    assert account.audience == []
    assert account.top_media == []
    later = await build_report(store, days=3, until=UNTIL - timedelta(days=4))
    # period UNTIL-6 … UNTIL-4 holds 300; previous UNTIL-9 … UNTIL-7 holds 100: +200%
    assert later.accounts[0].metrics[0].change_pct == 200.0
    other = await build_report(store, u_id=UUID(int=1))
    assert other.accounts == []


def test_sparkline_draws_gaps_as_blanks() -> None:
    assert sparkline([0, None, 7, 14]) == "▁ ▅█"
    assert sparkline([5, 5, None]) == "▄▄ "
    assert sparkline([None, None]) == "  "


@pytest.fixture
def db(tmp_path: Path) -> str:
    import asyncio

    url = f"sqlite:///{tmp_path / 'igsync.db'}"

    async def seed() -> None:
        async with open_store(url) as opened:
            await fill(opened)

    asyncio.run(seed())
    return url


def test_cli_report_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db: str
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "--db", db, "report", "--days", "4")
    assert (code, err) == (0, "")
    assert f"account {ACCOUNT}" in out
    reach = next(line for line in out.splitlines() if " reach " in line)
    assert "400" in reach
    assert "2026-11-28" in reach
    assert "+0.0%" in reach
    assert "│▁  █│" in reach  # 0, a null, a missing day, 400
    assert "IN 30, US 10" in out
    assert "m1" in out
    assert "s1" in out


def test_cli_report_json_matches_core(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db: str
) -> None:
    code, out, _ = run_cli(
        monkeypatch, capsys, "--db", db, "report", "--days", "4", "--json", "--streams", "account"
    )
    assert code == 0
    document = json.loads(out)
    [account] = document["accounts"]
    reach = account["metrics"][0]
    assert reach["values"] == [0, None, None, 400]
    assert reach["latest"] == 400
    assert reach["change_pct"] == 0
    assert document["streams"] == ["account"]
    assert account["audience"] == []


def test_cli_report_html(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db: str,
    tmp_path: Path,
) -> None:
    page = tmp_path / "r.html"
    code, out, _ = run_cli(
        monkeypatch, capsys, "--db", db, "report", "--days", "4", "--html", str(page), "--json"
    )
    assert code == 0
    assert json.loads(out)["html"] == str(page)
    text = page.read_text()
    assert text.count("class='chart metric'") == 2
    assert text.count("class='chart audience'") == 1
    assert text.count("class='chart media'") == 2
    assert "Plotly.newPlot" in text
    assert "<script src=" not in text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--streams", "account,clicks"], "--streams: unknown stream clicks"),
        (["--metrics", "impressions"], "--metrics:"),
        (["--metrics", "reach,follower_demographics"], "not a daily account metric"),
        (  # it said "show with --streams audience", and with that the same error came back
            ["--metrics", "follower_demographics", "--streams", "audience"],
            "values show with --streams audience, without --metrics",
        ),
        (  # --metrics was silently ignored: only the audience showed
            ["--metrics", "reach", "--streams", "audience"],
            "leaves the account stream out; add it: --streams account,audience",
        ),
        (["--html", "-"], "--html -: the page is written to a file"),  # it wrote a file named '-'
        (["--days", "0"], "--days"),
        (["--until", "2026-13-01"], "--until"),
        (["--until", "2026-11-31"], "--until"),
        (["--demo"], "--demo"),
    ],
)
def test_cli_report_bad_input(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db: str,
    args: list[str],
    says: str,
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "--db", db, "report", *args)
    assert code == 2
    assert out == ""
    assert says in err
    assert len(err.strip().splitlines()) == 1


def test_cli_report_html_without_plotly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly now raises ImportError
    code, out, err = run_cli(
        monkeypatch, capsys, "--db", db, "report", "--html", str(tmp_path / "r.html")
    )
    assert (code, out) == (2, "")
    assert "uv tool install '.[report]'" in err
    assert not (tmp_path / "r.html").exists()


def test_cli_report_empty_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    # report only reads: the database must exist first (a missing one is exit 2)
    assert run_cli(monkeypatch, capsys, "--db", url, "db", "init")[0] == 0
    code, out, _ = run_cli(monkeypatch, capsys, "--db", url, "report")
    assert code == 0
    assert out.startswith("no rows stored for ")
    assert "run `igsync fetch` first" in out
    user = "00000000-0000-4000-8000-00000000a11c"
    code, out, _ = run_cli(monkeypatch, capsys, "--db", url, "report", "--user", user)
    assert code == 0
    assert out.startswith(f"no rows stored for user {user} from ")
    assert "check --user (`igsync accounts list`)" in out


def test_cli_report_demo_shows_what_the_last_demo_stored(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "report", "--demo")
    assert (code, out) == (2, "")
    assert "run `igsync demo` first" in err
    code, out, err = run_cli(monkeypatch, capsys, "demo", "--accounts", "2", "--days", "4")
    assert code == 0, err
    assert "see them: igsync report --demo" in out
    code, out, err = run_cli(monkeypatch, capsys, "report", "--demo", "--json")
    assert code == 0, err
    accounts = json.loads(out)["accounts"]
    assert len(accounts) == 2
    # human output: the period once, then each account's heading right above its table
    code, out, _ = run_cli(monkeypatch, capsys, "report", "--demo")
    lines = out.splitlines()
    assert code == 0
    assert "; change: mean per day vs " in lines[0]
    for account in accounts:
        at = lines.index(f"account {account['account_id']} (user {account['u_id']})")
        assert lines[at - 1] == ""
        assert lines[at + 1].startswith("┏")
    assert sum("change: mean per day" in line for line in lines) == 1
    # a second demo replaces the first one's database: still two accounts, no stale days
    code, _, _ = run_cli(monkeypatch, capsys, "demo", "--accounts", "2", "--days", "2")
    assert code == 0
    code, out, _ = run_cli(monkeypatch, capsys, "report", "--demo", "--json", "--days", "30")
    assert len(json.loads(out)["accounts"]) == 2
    with closing(sqlite3.connect(demo_database_path())) as conn:
        query = "select count(distinct local_date) from instagram_insights group by account_id"
        assert [n for (n,) in conn.execute(query)] == [2, 2]
    code, out, err = run_cli(monkeypatch, capsys, "--db", "sqlite:///x.db", "report", "--demo")
    assert (code, out) == (2, "")
    assert "drop --db" in err
