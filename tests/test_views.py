"""The modelled views as README documents them: `instagram_daily` has a column for every daily
account metric of the catalogue, and README's example queries run as written (PostgreSQL) or
with the one substitution README names (SQLite), on a store filled by `igsync demo`'s sync.
"""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from igsync.catalogue import METRIC_CONFIG
from igsync.demo import run_demo
from igsync.store import open_store, sqlite_path

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parent.parent / "README.md"
DAYS = 5
ACCOUNTS = 2
Query = Callable[[str], list[tuple[Any, ...]]]


def readme_queries() -> tuple[str, str]:
    """The two SQL blocks of README's "Modelled views" section: (daily, audience)."""
    section = README.read_text().split("### Modelled views", 1)[1].split("\n## ", 1)[0]
    daily, audience = re.findall(r"```sql\n(.*?)```", section, re.DOTALL)
    return daily, audience


@pytest.fixture(params=["sqlite", "postgres"])
async def query(request: pytest.FixtureRequest, tmp_path: Path) -> Query:
    """A filled database of either kind, and how to run SQL on it behind the store's back."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'igsync.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    async with open_store(url) as store:
        result = await run_demo(
            accounts=ACCOUNTS, days=DAYS, keep_in=store, streams=["account", "audience"]
        )
        assert result.report.success

    def run(sql: str) -> list[tuple[Any, ...]]:
        if url.startswith("sqlite"):
            sql = sql.replace("current_date - 30", "date('now', '-30 days')")
            with closing(sqlite3.connect(sqlite_path(url))) as conn:
                return conn.execute(sql).fetchall()
        with psycopg.connect(url) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    return run


async def test_instagram_daily_has_a_column_per_daily_account_metric(query: Query) -> None:
    daily = [
        n for n, spec in METRIC_CONFIG.items() if spec.stream == "account" and spec.period == "day"
    ]
    found = _columns(query)
    assert found[:3] == ["u_id", "account_id", "local_date"]
    assert sorted(found[3:]) == sorted(daily)


def _columns(query: Query) -> list[str]:
    try:
        return [r[0] for r in query("select name from pragma_table_info('instagram_daily')")]
    except psycopg.Error:  # PostgreSQL: no pragma_table_info
        return [
            r[0]
            for r in query(
                "select column_name from information_schema.columns"
                " where table_name = 'instagram_daily' order by ordinal_position"
            )
        ]


async def test_readme_daily_query_gives_each_accounts_last_days(query: Query) -> None:
    daily, _ = readme_queries()
    rows = query(daily)
    per_account: dict[str, int] = defaultdict(int)
    for account_id, _day, reach, *_ in rows:
        per_account[account_id] += 1
        assert reach is not None  # the demo fetches reach every day
    assert len(per_account) == ACCOUNTS
    assert all(n >= DAYS - 1 for n in per_account.values()), per_account


async def test_readme_audience_query_gives_top_countries_largest_first(query: Query) -> None:
    _, audience = readme_queries()
    rows = query(audience)
    by_account: dict[str, list[int]] = defaultdict(list)
    for account_id, country, followers in rows:
        assert re.fullmatch(r"[A-Z]{2}", country)
        by_account[account_id].append(followers)
    assert len(by_account) == ACCOUNTS
    for values in by_account.values():
        assert len(values) == 5
        assert values == sorted(values, reverse=True)
