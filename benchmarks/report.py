"""How long `igsync report` takes to assemble (and render as HTML) over a filled SQLite store.

    uv run python benchmarks/report.py [--accounts 100] [--days 365]

Fills a throwaway SQLite file with `--accounts` accounts x `--days` local days x the 15 daily
account metrics, then times build_report for the last 14 days (the default), and render_html
of it. Prints wall and CPU seconds (the machine is shared: CPU time varies less).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from uuid import UUID

from igsync.catalogue import METRIC_CONFIG
from igsync.models import InsightRow
from igsync.report import build_report, render_html
from igsync.store import open_store

METRICS = [n for n, s in METRIC_CONFIG.items() if s.stream == "account" and s.period == "day"]


async def main(accounts: int, days: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        last = datetime.now(UTC).date() - timedelta(days=1)
        async with open_store(url) as store:
            for a in range(accounts):
                rows = [
                    InsightRow(
                        u_id=UUID(int=a + 1),
                        account_id=f"1784140000{a:07d}",
                        metric=metric,
                        metric_type="total_value",
                        period="day",
                        end_time=datetime.combine(d + timedelta(days=1), clock(8), tzinfo=UTC),
                        value=(a * 31 + i * 7 + len(metric)) % 1000,
                    )
                    for i in range(days)
                    for d in [last - timedelta(days=i)]
                    for metric in METRICS
                ]
                await store.upsert_insights(rows)
            total = accounts * days * len(METRICS)
            print(f"{total:,} rows: {accounts} accounts x {days} days x {len(METRICS)} metrics")
            for label, until in (("newest date looked up", None), ("--until given", last)):
                wall, cpu = time.perf_counter(), time.process_time()
                report = await build_report(store, days=14, until=until)
                print(
                    f"build_report, 14 days, {label}: {time.perf_counter() - wall:.2f} s wall,"
                    f" {time.process_time() - cpu:.2f} s CPU, {len(report.accounts)} accounts"
                )
            wall, cpu = time.perf_counter(), time.process_time()
            page = render_html(report)
            print(
                f"render_html: {time.perf_counter() - wall:.2f} s wall,"
                f" {time.process_time() - cpu:.2f} s CPU, {len(page) / 1e6:.1f} MB"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    asyncio.run(main(args.accounts, args.days))
