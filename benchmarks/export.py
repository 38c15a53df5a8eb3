"""Peak memory and time of `igsync export` by size: flat memory means streaming works.

    uv run python benchmarks/export.py [--rows 100000,1000000] [--formats csv,ndjson,parquet]

Fills a SQLite database per size with that many instagram_insights rows (bulk-inserted
directly, not through a sync: filling must not be what takes the time), then runs
`igsync export --format F --output FILE` as a subprocess for each format and prints rows,
wall and CPU seconds, peak RSS of the export process (getrusage of its own child, measured in
a fresh intermediate process so every run is its own peak) and the file's size.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

from igsync.store.sqlite import SQLiteStore

IGSYNC = str(Path(sys.executable).parent / "igsync")
METRICS = ("reach", "profile_views", "accounts_engaged", "follower_count", "views")
START = datetime(2024, 1, 1, 8, tzinfo=UTC)


def fill(path: Path, rows: int) -> None:
    """`rows` daily rows: 5 metrics x 365 days per account, as many accounts as it takes."""
    import asyncio

    async def schema() -> None:
        async with SQLiteStore(path):
            pass  # opening creates the schema

    asyncio.run(schema())
    fetched = datetime.now(UTC).isoformat(timespec="seconds")

    def generate() -> object:
        for i in range(rows):
            account, rest = divmod(i, len(METRICS) * 365)
            metric, day = divmod(rest, 365)
            end_time = START + timedelta(days=day)
            user = uuid5(NAMESPACE_URL, f"bench:{account}")
            yield (
                str(user),
                f"178414{account:011d}",
                METRICS[metric],
                "time_series" if METRICS[metric] in ("reach", "follower_count") else "total_value",
                "day",
                end_time.isoformat(),
                (end_time - timedelta(hours=8)).date().isoformat(),
                None if i % 97 == 0 else i % 5000,  # some rows without data
                None,
                fetched,
            )

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma synchronous = off")
    conn.execute("begin")
    conn.executemany(
        "insert into instagram_insights (u_id, account_id, metric, metric_type, period,"
        " end_time, local_date, value, value_json, fetched_at)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        generate(),  # type: ignore[arg-type]
    )
    conn.execute("commit")
    conn.close()


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in KiB) of `cmd`, run by a fresh Python so the
    peak is its own. CPU seconds travel better than wall time on a shared machine."""
    probe = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "s = time.perf_counter() - t\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps([s, u.ru_utime + u.ru_stime, u.ru_maxrss]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True
    )
    seconds, cpu, peak = json.loads(done.stdout)
    return float(seconds), float(cpu), int(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--formats", default="csv,ndjson,parquet")
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    formats = args.formats.split(",")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"{'rows':>9} {'format':>8} {'wall s':>7} {'CPU s':>6} {'rows/CPU-s':>10}"
        f" {'peak RSS MiB':>13} {'file MiB':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="igsync-export-bench-") as tmp:
        for size in sizes:
            db = Path(tmp) / f"{size}.db"
            started = time.perf_counter()
            fill(db, size)
            print(f"# filled {size} rows in {time.perf_counter() - started:.1f} s", flush=True)
            for fmt in formats:
                target = Path(tmp) / f"{size}.{fmt}"
                cmd = [
                    IGSYNC,
                    "--db",
                    f"sqlite:///{db}",
                    "export",
                    "--format",
                    fmt,
                    "-o",
                    str(target),
                ]
                seconds, cpu, peak = measure(cmd)
                print(
                    f"{size:>9} {fmt:>8} {seconds:>7.1f} {cpu:>6.1f} {size / cpu:>10.0f}"
                    f" {peak / 1024:>13.1f} {target.stat().st_size / 2**20:>9.1f}",
                    flush=True,
                )
            db.unlink()
    print(f"# (this script's own peak before the runs: {own / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()
