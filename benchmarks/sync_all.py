"""`igsync sync-all`: batched, unbatched and the seed's sequential way, side by side.

    uv run python benchmarks/sync_all.py [--accounts 1000] [--many 10000] [--big]
                                         [--latency 0.1] [--postgres-url URL] [--no-postgres]

The simulator serves both of Meta's hosts over loopback (in this process, in a thread) with
`--latency` seconds per HTTP round trip; a batch is one round trip. For `--accounts` accounts
(4 default metrics, `--days 1`, SQLite, app credentials set so that batches may mix accounts)
it runs the installed `igsync sync-all` as a user would: batched (the default) and with
`--no-batch`, with `--json`, and batched with `--ndjson` (the cron form), and measures each
child process alone: wall and CPU seconds (os.wait4), and peak RSS as the child saw it
(benchmarks/peak_rss.py: wait4's figure would be this script's own size).
The simulator counts HTTP round trips and Graph calls (a batch item is one call). The seed's
sequential way (one request per metric, one account after another) is run by this script on a
sample of accounts and extrapolated. Then the batched run on PostgreSQL (a throwaway server
started like the tests' one, tests/postgres_server.py, or a fresh database on `--postgres-url`),
the same at `--many` accounts (SQLite `--ndjson` and `--json`, PostgreSQL `--ndjson`) and, with
`--big`, SQLite `--ndjson` at 100,000, and one account's 365-day backfill (`igsync fetch
--since`), in round trips.

Figures that travel: speed-up against the seed's way, wall / ideal (ideal: Graph calls x
latency / calls in flight, the time the calls would take were every slot always busy),
the same for the calls alone (the simulator's first call to its last answer,
without igsync's startup and exit), CPU seconds per 1,000 accounts (and net of a run's start,
measured as `sync-all --allow-empty` over no account), peak RSS. Goals (issue
9): >= 40x at the default settings, wall / ideal <= 1.25, <= 2 CPU-s per 1,000 accounts,
<= 150 MB flat in N, <= 25 round trips for a 365-day backfill.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from pydantic import SecretStr

from igsync.catalogue import DEFAULT_METRICS, METRIC_CONFIG
from igsync.models import UserToken
from igsync.simulator import Served, SimAccount, Simulator, serve_in_thread
from igsync.store import open_store
from igsync.store.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from peak_rss import igsync_command, peak_env, read_peak_mb

import postgres_server  # the tests' throwaway server, shared with this script

APP_ID, APP_SECRET = "sim-app-id", "sim-app-secret"


#: runs of `sync-all --allow-empty` whose median is "a run's start"
START_RUNS = 5


@dataclass
class Run:
    name: str
    accounts: int
    wall: float
    cpu: float
    rss_mb: float
    round_trips: int
    calls: int
    max_in_flight: int
    ok: int
    #: seconds from the simulator's first call to its last answer
    on_wire: float

    def ideal(self, latency: float) -> float:
        """Seconds the calls would take were every slot always busy."""
        return self.calls * latency / max(1, self.max_in_flight)


def seed_tokens(url: str, accounts: list[SimAccount]) -> None:
    async def save() -> None:
        async with open_store(url) as store:
            await store.init_schema()
            rows = [
                UserToken(
                    u_id=uuid4(),
                    access_token=SecretStr(f"EAAG-bench-{account.account_id}-{'x' * 40}"),
                    account_id=account.account_id,
                )
                for account in accounts
            ]
            for start in range(0, len(rows), 5000):
                await store.save_tokens(rows[start : start + 5000])

    asyncio.run(save())


def run_igsync(served: Served, url: str, home: Path, *args: str) -> tuple[float, float, float, Any]:
    """The installed igsync in a child process: wall, CPU seconds, peak RSS (MB), its JSON."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "NO_COLOR": "1",
        "IGSYNC_GRAPH_URL": served.graph_url,
        "IGSYNC_INSTAGRAM_URL": served.instagram_url,
        "IGSYNC_DATABASE_URL": url,
        "IG_APP_ID": APP_ID,
        "IG_APP_SECRET": APP_SECRET,
    }
    peak = home / "peak-rss"
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        output = [] if "--ndjson" in args else ["--json"]
        proc = subprocess.Popen(
            igsync_command(*args, *output),
            stdout=out,
            stderr=subprocess.DEVNULL,
            env=peak_env(env, peak),
        )
        # wait4: this child's own CPU, not the running total of all children
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode()
    cpu = usage.ru_utime + usage.ru_stime
    last = text.strip().splitlines()[-1] if text.strip() else "{}"
    document = json.loads(last)  # --json: the report; --ndjson: the summary line ends it
    return wall, cpu, read_peak_mb(peak), document.get("summary", document)


def sync_all(
    name: str, n: int, latency: float, extra: list[str], tmp: Path, url: str | None = None
) -> Run:
    """`sync-all --days 1` over `n` accounts on `url` (default: a new SQLite file in `tmp`)."""
    accounts = [SimAccount(f"178414{i:011d}", tz="America/Los_Angeles") for i in range(1, n + 1)]
    sim = Simulator(accounts, latency=latency, app_id=APP_ID, app_secret=APP_SECRET)
    url = url or f"sqlite:///{tmp / f'{name}-{n}.db'}"
    seed_tokens(url, accounts)
    with serve_in_thread(sim) as served:
        wall, cpu, rss, report = run_igsync(served, url, tmp, "sync-all", "--days", "1", *extra)
    round_trips = sum(1 for r in sim.requests if not r.in_batch)
    calls = sum(1 for r in sim.requests if r.path.endswith("/insights"))
    on_wire = (sim.last_answer_at or 0.0) - (sim.first_call_at or 0.0)
    ok = report.get("accounts_ok", 0)
    return Run(name, n, wall, cpu, rss, round_trips, calls, sim.max_in_flight, ok, on_wire)


def seed_way(n: int, sample: int, latency: float) -> float:
    """The seed's way: one GET per metric, one account after another; seconds for `n`."""
    accounts = [
        SimAccount(f"178414{i:011d}", tz="America/Los_Angeles") for i in range(1, sample + 1)
    ]
    sim = Simulator(accounts, latency=latency)
    until = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since = until - timedelta(days=1)
    with serve_in_thread(sim) as served, httpx.Client() as client:
        start = time.perf_counter()
        for account in accounts:
            for metric in DEFAULT_METRICS:
                client.get(
                    f"{served.graph_url}/v27.0/{account.account_id}/insights",
                    params={
                        "metric": metric,
                        "period": "day",
                        "metric_type": METRIC_CONFIG[metric].metric_type,
                        "since": str(int(since.timestamp())),
                        "until": str(int(until.timestamp())),
                        "access_token": "EAAG-seed",
                    },
                ).raise_for_status()
        took = time.perf_counter() - start
    return took / sample * n


def backfill(latency: float, tmp: Path) -> tuple[int, int, float]:
    """One account, 365 local days: (round trips, calls, wall)."""
    account = SimAccount("17841400000000001", tz="America/Los_Angeles")
    sim = Simulator([account], latency=latency, app_id=APP_ID, app_secret=APP_SECRET)
    db = tmp / "backfill.db"
    seed_tokens(f"sqlite:///{db}", [account])
    since = (date.today() - timedelta(days=365)).isoformat()
    with serve_in_thread(sim) as served:

        async def user() -> str:
            async with SQLiteStore(db) as store:
                return str((await store.list_tokens())[0].u_id)

        uid = asyncio.run(user())
        wall, _, _, _ = run_igsync(
            served, f"sqlite:///{db}", tmp, "fetch", "--user", uid, "--since", since
        )
    round_trips = sum(1 for r in sim.requests if not r.in_batch)
    return round_trips, sum(1 for r in sim.requests if r.path.endswith("/insights")), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--accounts", type=int, default=1000, help="accounts of the side-by-side runs"
    )
    parser.add_argument(
        "--many", type=int, default=10_000, help="accounts of the memory runs (0: none)"
    )
    parser.add_argument("--big", action="store_true", help="also SQLite --ndjson at 100,000")
    parser.add_argument(
        "--latency", type=float, default=0.1, help="seconds per HTTP round trip (default 0.1)"
    )
    parser.add_argument("--sample", type=int, default=20, help="accounts the seed's way runs")
    parser.add_argument("--postgres-url", default=os.environ.get(postgres_server.URL_ENV))
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL runs")
    args = parser.parse_args()
    n, many, latency = args.accounts, args.many, args.latency
    with tempfile.TemporaryDirectory(prefix="igsync-bench-") as name, ExitStack() as stack:
        tmp = Path(name)
        # unreported: the first run of a fresh clone compiles every module it imports
        sync_all("warm-up", 5, 0.0, [], tmp)
        # what every run pays once: interpreter, imports, settings, store, exit; the median
        # of a few (one sample was 0.51 s beside a usual 0.30-0.36 s)
        starts = [sync_all("start", 0, latency, ["--allow-empty"], tmp) for _ in range(START_RUNS)]
        start = sorted(starts, key=lambda run: run.wall)[START_RUNS // 2]
        seed = seed_way(n, args.sample, latency)
        runs = [
            sync_all("batched", n, latency, [], tmp),
            sync_all("--no-batch", n, latency, ["--no-batch"], tmp),
            sync_all("--ndjson", n, latency, ["--ndjson"], tmp),
        ]
        server = None
        if not args.no_postgres:
            # settings={}: the server's durable defaults, not the tests' fsync=off.
            server = args.postgres_url or stack.enter_context(
                postgres_server.postgres_server(settings={})
            )
            with postgres_server.fresh_database(server) as url:
                runs.append(sync_all("postgres", n, latency, [], tmp, url))
        # memory flat in N: --ndjson holds no result, --json only the text it prints
        if many:
            runs.append(sync_all("--ndjson", many, latency, ["--ndjson"], tmp))
            runs.append(sync_all("--json", many, latency, [], tmp))
            if server is not None:
                with postgres_server.fresh_database(server) as url:
                    runs.append(sync_all("pg --ndjson", many, latency, ["--ndjson"], tmp, url))
        if args.big:
            runs.append(sync_all("--ndjson", 100_000, latency, ["--ndjson"], tmp))
        trips, calls, wall = backfill(latency, tmp)
    print(f"{n} accounts, 4 metrics, --days 1, {latency * 1000:.0f} ms per round trip")
    store = "SQLite but for the postgres and pg rows; " if server is not None else "SQLite; "
    print(f"{store}batched (the default) but for --no-batch; --json unless it says --ndjson")
    print(f"seed's sequential way (extrapolated from {args.sample}): {seed:.1f} s")
    print(
        "trips: HTTP round trips; calls: Graph calls (a batch item is one); in flight: the most"
        " calls in flight at once;\nideal: calls x latency / in flight; calls alone: the"
        " simulator's first call to its last answer (no startup or exit);\nCPU s/1k: the"
        " igsync process's CPU seconds per 1,000 accounts; net: the same less a run's start;"
        " RSS: its peak, as it saw it"
    )
    print(
        f"a run's start and exit alone (sync-all --allow-empty, no account; median of"
        f" {START_RUNS}): wall {start.wall:.2f} s, CPU {start.cpu:.2f} s\n"
    )
    header = (
        f"{'case':<12} {'accounts':>8} {'wall s':>7} {'speed-up':>8} {'trips':>6} {'calls':>6} "
        f"{'in flight':>9} {'wall/ideal':>10} {'calls alone/ideal':>17} {'CPU s/1k':>8} "
        f"{'net':>5} {'RSS MB':>7} {'ok':>6}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        ideal = run.ideal(latency)
        print(
            f"{run.name:<12} {run.accounts:>8} {run.wall:>7.1f} "
            f"{seed / run.wall * run.accounts / n:>7.0f}x {run.round_trips:>6} {run.calls:>6} "
            f"{run.max_in_flight:>9} {run.wall / ideal:>10.2f} {run.on_wire / ideal:>17.2f} "
            f"{run.cpu / run.accounts * 1000:>8.2f} "
            f"{(run.cpu - start.cpu) / run.accounts * 1000:>5.2f} {run.rss_mb:>7.0f} {run.ok:>6}"
        )
    print(f"\n365-day backfill of one account: {trips} round trips, {calls} calls, {wall:.1f} s")


if __name__ == "__main__":
    main()
