"""Issue 11, item 6: `kill -9` at a random moment, then a run to the end, stores exactly what
one clean run stores, on SQLite and on the real PostgreSQL.

The installed `igsync sync-all` runs as a subprocess against the simulator over loopback
(with latency, so that a run lasts long enough to be cut anywhere: startup, Graph calls,
writes, sync logs). Each trial kills it with SIGKILL after a random delay, runs it again to
completion, and compares instagram_insights with a clean run's: the same keys (u_id,
account_id, metric, end_time), the same values, no key twice. Sync logs may differ (the
killed run's are partial by nature). The window is pinned with --since/--until to complete
days, so every run asks for the same days whatever the clock says, and the simulator's values
depend only on (account, metric, day).

The delays come from a seeded random: the seed is printed (shown with the failure), and
IGSYNC_KILL_SEED=<seed> replays it.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

import psycopg
import pytest
from pydantic import SecretStr

from igsync.models import UserToken
from igsync.simulator import Served, SimAccount, Simulator, serve_in_thread
from igsync.store import open_store, sqlite_path
from postgres_server import fresh_database
from test_cli_e2e import IGSYNC

# ~30 s each on an idle machine; a loaded CI runner may take several times that
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ACCOUNTS = [f"178414{i:011d}" for i in range(1, 9)]
ZONES = ("America/Los_Angeles", "Asia/Kolkata", "Europe/London", "Pacific/Auckland")
TRIALS = 10
LATENCY = 0.05  # seconds per round trip
# complete local days in every zone: the newest is two days back
UNTIL = date.today() - timedelta(days=2)
SINCE = UNTIL - timedelta(days=3)

Key = tuple[str, str, str, datetime]  # u_id, account_id, metric, end_time


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    accounts = [SimAccount(a, tz=ZONES[i % len(ZONES)]) for i, a in enumerate(ACCOUNTS)]
    with serve_in_thread(Simulator(accounts, latency=LATENCY)) as served:
        yield served


@pytest.fixture(scope="module")
def seed() -> int:
    value = int(os.environ.get("IGSYNC_KILL_SEED") or random.SystemRandom().randrange(2**32))
    print(f"kill -9 trials: IGSYNC_KILL_SEED={value}")
    return value


def seed_tokens(url: str) -> None:
    """The same user_tokens rows (u_id, token) in every database, so keys compare equal."""

    async def save() -> None:
        async with open_store(url) as store:
            await store.init_schema()
            for account in ACCOUNTS:
                await store.save_token(
                    UserToken(
                        u_id=uuid5(NAMESPACE_URL, f"igsync-kill-{account}"),
                        access_token=SecretStr(f"EAAJ-kill-{account}-Hq72mNbV"),
                        account_id=account,
                    )
                )

    asyncio.run(save())


def stored(url: str) -> dict[Key, int | None]:
    async def read() -> dict[Key, int | None]:
        async with open_store(url) as store:
            rows = await store.read_insights()
        keys = [(str(r.u_id), r.account_id, r.metric, r.end_time.astimezone(UTC)) for r in rows]
        assert len(keys) == len(set(keys)), "a row was stored twice"
        return dict(zip(keys, (r.value for r in rows), strict=True))

    return asyncio.run(read())


def expire_claims(url: str) -> None:
    """What six minutes do to a killed run's claims (igsync.claims: CLAIM_TTL_S): they expire,
    and the next run may take those accounts. Without this the resume would skip them."""
    past = "2000-01-01T00:00:00.000000+00:00"
    query = "update igsync_claims set claimed_until = {} where released_at is null"
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(sqlite_path(url))) as conn, conn:
            conn.execute(query.format("?"), (past,))
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(query.format("%s").encode(), (past,))


def sync_all(served: Served, url: str, home: Path) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "NO_COLOR": "1",
        "IGSYNC_GRAPH_URL": served.graph_url,
        "IGSYNC_INSTAGRAM_URL": served.instagram_url,
        "IGSYNC_DATABASE_URL": url,
        "IGSYNC_HTTP_TIMEOUT": "10",
    }
    window = ["--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]
    return subprocess.Popen(
        [IGSYNC, "sync-all", "--concurrency", "2", *window],
        env=env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def clean_run(served: Served, url: str, home: Path) -> tuple[dict[Key, int | None], float]:
    """What an uninterrupted run stores, and how long it took (seconds)."""
    seed_tokens(url)
    started = time.monotonic()
    assert sync_all(served, url, home).wait(timeout=120) == 0
    took = time.monotonic() - started
    rows = stored(url)
    # every account, 4 metrics, 4 days
    assert len(rows) == len(ACCOUNTS) * 4 * 4
    return rows, took


def kill_and_resume(
    served: Served, url: str, home: Path, clean: dict[Key, int | None], delay: float, label: str
) -> bool:
    """One trial on a fresh database `url`: kill -9 after `delay` s, run again to the end,
    compare with `clean`. True when the kill landed before the run ended."""
    seed_tokens(url)
    proc = sync_all(served, url, home)
    try:
        proc.wait(timeout=delay)
        killed = False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed = True
    at_kill = len(stored(url))
    expire_claims(url)
    assert sync_all(served, url, home).wait(timeout=120) == 0, label
    after = stored(url)
    assert set(after) == set(clean), f"{label}: keys differ"
    assert after == clean, f"{label}: values differ"
    print(f"{label}: {'killed' if killed else 'ended'} with {at_kill} of {len(clean)} rows")
    return killed


def trials(
    served: Served, seed: int, home: Path, backend: str, clean_url: str, trial_urls: Iterator[str]
) -> None:
    clean, took = clean_run(served, clean_url, home)
    rng = random.Random(f"{seed}-{backend}")
    killed = 0
    for trial in range(TRIALS):
        # the first ~third of a run is the interpreter starting: no need to kill there often
        delay = rng.uniform(0.3, 1.0) * took
        label = f"IGSYNC_KILL_SEED={seed} {backend} trial {trial} (kill after {delay:.3f} s)"
        killed += kill_and_resume(served, next(trial_urls), home, clean, delay, label)
    print(f"{backend}: clean run {took:.2f} s; {killed} of {TRIALS} runs killed mid-way")
    # the delays span the run: nearly all of them land before it ends
    assert killed >= TRIALS // 2, f"IGSYNC_KILL_SEED={seed}: only {killed} kills landed"


def test_kill_9_then_resume_on_sqlite(served: Served, seed: int, tmp_path: Path) -> None:
    urls = (f"sqlite:///{tmp_path / f'trial-{i}.db'}" for i in range(TRIALS))
    trials(served, seed, tmp_path, "sqlite", f"sqlite:///{tmp_path / 'clean.db'}", urls)


def test_kill_9_then_resume_on_postgres(
    served: Served, seed: int, postgres_url: str, fresh_postgres_url: str, tmp_path: Path
) -> None:
    def fresh() -> Iterator[str]:
        for _ in range(TRIALS):
            with fresh_database(postgres_url) as url:
                yield url

    urls = fresh()
    try:
        trials(served, seed, tmp_path, "postgres", fresh_postgres_url, urls)
    finally:
        urls.close()  # drops the last trial's database
