"""Soak: `igsync sync-all` `--runs` times in a row over many accounts, ~10 % of them faulted.

    uv run python benchmarks/soak.py [--accounts 2000] [--runs 3] [--fault-rate 0.1]
                                     [--latency 0.05] [--seed N] [--quick] [--logs DIR]
                                     [--postgres | --postgres-url URL]

The simulator serves both of Meta's hosts over loopback (in this process, in a thread). Before
each run, `--fault-rate` of the accounts (drawn afresh, seeded; at least one account per kind,
so 25 of a small run's accounts) get one injected fault each, cycling through every kind the
simulator has (throttles 4/17/32/613/80002, codes 1 and 2,
HTTP 502/503 pages, an HTML page with 200, truncated JSON, empty data, a cut connection, a
held answer past the client timeout, a `null` batch item, 100 unknown metric / metric_type /
100/33, 10, and 190 with subcodes 458/460/463/467, invalid and unparseable tokens), half of
them striking once (retried and recovered, or the token refreshed) and half on every request
(reported); with `--quick` (CI), the kinds igsync retries strike once only. The installed
`igsync sync-all --ndjson -v` runs as a child process on SQLite
(and on PostgreSQL with `--postgres` or `--postgres-url`), with app credentials, so that
calls share batches. The window is pinned to four complete days (--since/--until), whose
values the simulator knows, so after each run the database is checked against them:

* accounts ok / failed, as igsync reported them (failures grow run by run: a token a 190
  fault marked needs_reauth stays failed, as designed);
* rows lost: a row an account reported ok lacks, or a row stored by an earlier run that is
  gone (0);
* duplicates: a key (u_id, account_id, metric, end_time) stored twice, or an account logged
  twice in one run (0);
* wrong values: a stored value that is not the simulator's (0); NULL is "no data", the
  answer to an empty-data fault, counted apart as no-data;
* sync logs missing: an account of the run with no sync-log row (0);
* secrets seen: any token or the app secret in stdout, stderr or the sync logs (0);
* peak RSS of the child (as it saw it: benchmarks/peak_rss.py), and its wall time.

Exits 1 if any of lost, duplicates, wrong values, missing sync logs or secrets is not 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import get_args
from uuid import NAMESPACE_URL, UUID, uuid5

import psycopg
from pydantic import SecretStr

from igsync.catalogue import DEFAULT_METRICS
from igsync.models import UserToken
from igsync.simulator import Fault, FaultKind, Served, SimAccount, Simulator, serve_in_thread
from igsync.store import open_store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import postgres_server  # the tests' throwaway databases, shared with this script

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak_rss import igsync_command, peak_env, read_peak_mb

APP_ID, APP_SECRET = "sim-app-id", "sim-app-secret"
ZONES = ("America/Los_Angeles", "Asia/Kolkata", "Europe/London", "Pacific/Auckland", "UTC")
HTTP_TIMEOUT = 2.0  # seconds; a `timeout` fault holds its answer longer than this
KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
# the newest of four complete local days in every zone
UNTIL = date.today() - timedelta(days=2)
SINCE = UNTIL - timedelta(days=3)

Key = tuple[str, str, str, datetime]  # u_id, account_id, metric, end_time (UTC)


@dataclass
class Figures:
    run: int
    accounts_ok: int
    accounts_failed: int
    lost: int
    duplicates: int
    wrong: int
    no_data: int
    logs_missing: int
    secrets: int
    rss_mb: float
    wall_s: float
    exit_code: int

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicates or self.wrong or self.logs_missing or self.secrets)


def account_ids(n: int) -> list[str]:
    return [f"178414{i:011d}" for i in range(1, n + 1)]


def user_of(account: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"igsync-soak-{account}")


def token_of(account: str, rng: random.Random) -> str:
    return f"EAAJ-soak-{account}-{rng.randbytes(12).hex()}"


def seed_tokens(url: str, tokens: dict[str, str]) -> None:
    async def save() -> None:
        async with open_store(url) as store:
            await store.init_schema()
            for account, token in tokens.items():
                row = UserToken(
                    u_id=user_of(account), access_token=SecretStr(token), account_id=account
                )
                await store.save_token(row)

    asyncio.run(save())


#: faults igsync retries: one that never clears costs its account the whole backoff (~20 s)
RETRIED = frozenset(
    {
        "throttle",
        "throttle_ig",
        "user_throttle",
        "page_throttle",
        "rate_limit_613",
        "server_error",
        "bad_gateway",
        "transient",
        "timeout",
        "service_unavailable",
        "html_page",
        "truncated_json",
        "connection_reset",
        "batch_timeout",
    }
)


def inject(
    sim: Simulator, accounts: list[str], rate: float, rng: random.Random, *, quick: bool
) -> Counter[str]:
    """Fresh faults for this run: one each on `rate` of the accounts (at least one of every
    kind, unless `rate` is 0), every kind in turn;
    half strike once, half on every request (with `quick`, retried kinds strike once)."""
    sim.faults.clear()
    # every kind at least once, even on a small run
    count = min(len(accounts), max(round(len(accounts) * rate), len(KINDS))) if rate else 0
    chosen = rng.sample(accounts, count)
    kinds: Counter[str] = Counter()
    for i, account in enumerate(chosen):
        kind = KINDS[i % len(KINDS)]
        always = rng.random() < 0.5 and not (quick and kind in RETRIED)
        # a metric filter on half of them: the fault hits that metric's requests only
        metric = rng.choice([None, *DEFAULT_METRICS])
        fault = Fault(
            kind,
            times=1000 if always else 1,
            account_id=account,
            metric=metric,
            delay=HTTP_TIMEOUT * 2,
        )
        sim.faults.append(fault)
        kinds[kind] += 1
    return kinds


def expected_rows(sim: Simulator, accounts: list[str]) -> dict[Key, int | None]:
    """Every row a fault-free run stores, with the simulator's values."""
    rows: dict[Key, int | None] = {}
    days = [SINCE + timedelta(days=i) for i in range((UNTIL - SINCE).days + 1)]
    for account in accounts:
        for day in days:
            end_time = sim.day_end(account, day).astimezone(UTC)
            for metric in DEFAULT_METRICS:
                key = (str(user_of(account)), account, metric, end_time)
                rows[key] = sim.daily_value(account, metric, day)
    return rows


def stored_rows(url: str) -> tuple[dict[Key, int | None], int]:
    """The instagram_insights rows by key, and how many keys were stored more than once."""

    async def read() -> tuple[dict[Key, int | None], int]:
        async with open_store(url) as store:
            rows = await store.read_insights()
        keys = Counter(
            (str(r.u_id), r.account_id, r.metric, r.end_time.astimezone(UTC)) for r in rows
        )
        by_key = {
            (str(r.u_id), r.account_id, r.metric, r.end_time.astimezone(UTC)): r.value for r in rows
        }
        return by_key, sum(c - 1 for c in keys.values() if c > 1)

    return asyncio.run(read())


def sync_logs(url: str) -> list[tuple[str, str | None, str]]:
    """(run_id, account_id, the row as text) of every sync-log row."""
    query = "select run_id, account_id, * from instagram_sync_logs"
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            found = conn.execute(query).fetchall()
    else:
        with psycopg.connect(url) as conn:
            found = conn.execute(query).fetchall()
    return [(str(row[0]), row[1], repr(row[2:])) for row in found]


def run_igsync(served: Served, url: str, home: Path) -> tuple[int, str, str, float, float]:
    """The installed igsync in a child process: exit code, stdout, stderr, wall s, RSS MB."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "NO_COLOR": "1",
        "IGSYNC_GRAPH_URL": served.graph_url,
        "IGSYNC_INSTAGRAM_URL": served.instagram_url,
        "IGSYNC_DATABASE_URL": url,
        "IG_APP_ID": APP_ID,
        "IG_APP_SECRET": APP_SECRET,
        "IGSYNC_HTTP_TIMEOUT": str(HTTP_TIMEOUT),
    }
    window = ["--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]
    args = igsync_command("-v", "sync-all", "--ndjson", *window)
    peak = home / "peak-rss"
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=peak_env(env, peak), cwd=home)
        status = proc.wait()
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    return status, stdout, stderr, wall, read_peak_mb(peak)


def soak_run(
    number: int,
    sim: Simulator,
    served: Served,
    url: str,
    home: Path,
    tokens: dict[str, str],
    expected: dict[Key, int | None],
    before: dict[Key, int | None],
    seen_runs: set[str],
    empty: set[str],
    logs_dir: Path | None = None,
) -> tuple[Figures, dict[Key, int | None]]:
    code, stdout, stderr, wall, rss = run_igsync(served, url, home)
    if logs_dir is not None:
        (logs_dir / f"run-{number}.stdout").write_text(stdout)
        (logs_dir / f"run-{number}.stderr").write_text(stderr)
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    summary = lines[-1].get("summary", lines[-1]) if lines else {}
    results = [r for r in lines[:-1] if "account_id" in r]
    ok_accounts = {r["account_id"] for r in results if r.get("success")}

    stored, duplicates = stored_rows(url)
    lost = sum(1 for k in before if k not in stored)  # rows an earlier run stored
    # an account Meta answered {"data": []} may be ok without rows: that is "no data"
    complete = ok_accounts - empty
    lost += sum(1 for k in expected if k[1] in complete and k not in stored)
    wrong = sum(1 for k, v in stored.items() if v is not None and expected.get(k, v) != v)
    wrong += sum(1 for k in stored if k not in expected)
    no_data = sum(1 for v in stored.values() if v is None)

    logs = sync_logs(url)
    # one run_id is shared by every sync-log row of a run: this run's is the new one
    this_run = {run_id for run_id, _, _ in logs} - seen_runs
    seen_runs.update(this_run)
    logged = Counter(account for run_id, account, _ in logs if run_id in this_run)
    duplicates += max(0, len(this_run) - 1)
    duplicates += sum(c - 1 for c in logged.values() if c > 1)
    logs_missing = sum(1 for account in tokens if account not in logged)

    texts = [stdout, stderr, *(text for _, _, text in logs)]
    secrets = sum(text.count(s) for s in [*tokens.values(), APP_SECRET] for text in texts)
    figures = Figures(
        run=number,
        accounts_ok=int(summary.get("accounts_ok", len(ok_accounts))),
        accounts_failed=int(summary.get("accounts_failed", len(results) - len(ok_accounts))),
        lost=lost,
        duplicates=duplicates,
        wrong=wrong,
        no_data=no_data,
        logs_missing=logs_missing,
        secrets=secrets,
        rss_mb=rss,
        wall_s=wall,
        exit_code=code,
    )
    return figures, stored


@contextmanager
def database(kind: str, tmp: Path, postgres_url: str | None) -> Iterator[str]:
    """A new SQLite file, or a fresh database on `postgres_url`'s server (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'soak.db'}"
        return
    assert postgres_url is not None
    with postgres_server.fresh_database(postgres_url) as url:
        yield url


def soak(kind: str, args: argparse.Namespace, tmp: Path, postgres_url: str | None) -> list[Figures]:
    accounts = account_ids(args.accounts)
    rng = random.Random(f"{args.seed}-{kind}")
    sims = [SimAccount(a, tz=ZONES[i % len(ZONES)]) for i, a in enumerate(accounts)]
    sim = Simulator(sims, latency=args.latency, app_id=APP_ID, app_secret=APP_SECRET)
    tokens = {a: token_of(a, rng) for a in accounts}
    expected = expected_rows(sim, accounts)
    figures: list[Figures] = []
    with database(kind, tmp, postgres_url) as url, serve_in_thread(sim) as served:
        seed_tokens(url, tokens)
        stored: dict[Key, int | None] = {}
        seen_runs: set[str] = set()
        for number in range(1, args.runs + 1):
            kinds = inject(sim, accounts, args.fault_rate, rng, quick=args.quick)
            run, stored = soak_run(
                number,
                sim,
                served,
                url,
                tmp,
                tokens,
                expected,
                stored,
                seen_runs,
                {f.account_id for f in sim.faults if f.kind == "empty_data" and f.account_id},
                args.logs,
            )
            figures.append(run)
            print(
                f"{kind:<8} run {number}: {sum(kinds.values())} faults of {len(kinds)} kinds, "
                f"exit {run.exit_code}, ok {run.accounts_ok}, failed {run.accounts_failed}, "
                f"lost {run.lost}, duplicates {run.duplicates}, wrong {run.wrong}, "
                f"no-data {run.no_data}, sync logs missing {run.logs_missing}, "
                f"secrets {run.secrets}, peak RSS {run.rss_mb:.0f} MB, {run.wall_s:.1f} s",
                flush=True,
            )
    return figures


class _CutConnections(logging.Filter):
    """Drops uvicorn's line for each `connection_reset` fault: the cut is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def main() -> int:
    logging.getLogger("uvicorn.error").addFilter(_CutConnections())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--fault-rate", type=float, default=0.1, help="share of accounts faulted (0: none)"
    )
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per round trip")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--postgres-url", help="also soak a fresh database on this server")
    parser.add_argument("--logs", type=Path, help="keep each run's stdout and stderr here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="retried faults strike once (CI): a retried fault that never clears adds its "
        "backoff, ~20 s, to every run",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also soak PostgreSQL, on a throwaway server (like the tests') unless "
        "--postgres-url is given",
    )
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    print(
        f"soak: {args.accounts} accounts, {args.runs} runs, {args.fault_rate:.0%} faulted"
        " (at least one account per fault kind), "
        f"{args.latency * 1000:.0f} ms per round trip, seed {args.seed}, "
        f"days {SINCE}..{UNTIL}",
        flush=True,
    )
    figures: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="igsync-soak-") as name:
        tmp = Path(name)
        figures += soak("sqlite", args, tmp, None)
        if args.postgres_url:
            figures += soak("postgres", args, tmp, args.postgres_url)
        elif args.postgres:
            # settings={}: the server's durable defaults, not the tests' fsync=off
            with postgres_server.postgres_server(settings={}) as server:
                figures += soak("postgres", args, tmp, server)
    bad = [f for f in figures if not f.clean]
    print("soak: " + ("FAILED" if bad else "clean: no row lost, duplicated or wrong, no secret"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
