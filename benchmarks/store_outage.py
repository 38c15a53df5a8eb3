"""PostgreSQL stopped in the middle of `igsync sync-all`: how long until it ends, and what Meta saw.

    uv run python benchmarks/store_outage.py [--accounts 200] [--after 10] [--latency 0.05]
                                             [--concurrency 8] [--mode fast|immediate]

The scenario of issue 11, finding 7: a throwaway PostgreSQL server (tests/postgres_server.py),
`--accounts` rows in user_tokens, the simulator over loopback with `--latency` seconds per
round trip, and the installed `igsync sync-all --json` as a child process. Once `--after`
sync-log rows are in, the server is stopped (`pg_ctl stop -m MODE`: fast is a service stop,
immediate a crash). Printed: seconds from the stop to the child's exit, its exit code, the
Graph calls it made after the stop (and how many accounts they were for), and the report's
accounts ok / not attempted / failed. Before issue 11 every remaining account was fetched
and waited out a 30 s pool timeout for its insert and again for its sync log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

import psycopg
from pydantic import SecretStr

from igsync.models import UserToken
from igsync.simulator import SimAccount, Simulator, serve_in_thread
from igsync.store.postgres import PostgresStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import postgres_server  # the tests' throwaway server, shared with this script

IGSYNC = str(Path(sys.executable).parent / "igsync")
_ACCOUNT_IN_PATH = re.compile(r"/(\d{15,})/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--after", type=int, default=10, help="sync logs before the stop")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--mode", choices=("fast", "immediate"), default="fast")
    args = parser.parse_args()

    ids = [f"1784170000{i:07d}" for i in range(1, args.accounts + 1)]
    sim = Simulator([SimAccount(a) for a in ids], latency=args.latency)
    with postgres_server.stoppable_postgres_server() as server, serve_in_thread(sim) as served:

        async def seed() -> None:
            async with PostgresStore(server.url) as store:
                for account in ids:
                    token = SecretStr(sim.issue_token(account))
                    row = UserToken(u_id=uuid4(), access_token=token, account_id=account)
                    await store.save_token(row)

        asyncio.run(seed())
        home = Path(tempfile.mkdtemp(prefix="igsync-outage-"))
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "IGSYNC_GRAPH_URL": served.graph_url,
            "IGSYNC_INSTAGRAM_URL": served.instagram_url,
            "IGSYNC_DATABASE_URL": server.url,
        }
        command = [IGSYNC, "sync-all", "--json", "--days", "1"]
        command += ["--concurrency", str(args.concurrency)]
        with (home / "out.json").open("w+") as out:
            child = subprocess.Popen(
                command, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=home
            )
            with psycopg.connect(server.url, autocommit=True) as conn:
                while child.poll() is None:
                    (logged,) = conn.execute("select count(*) from instagram_sync_logs").fetchone()
                    if logged >= args.after:
                        break
                    time.sleep(0.02)
            calls_before = len(sim.requests)
            accounts_before = _accounts(sim, 0)
            stopped = time.perf_counter()
            server.stop(args.mode)
            code = child.wait()
            after_stop = time.perf_counter() - stopped
            out.seek(0)
            report = json.loads(out.read() or "{}")
    late = _accounts(sim, calls_before) - accounts_before
    print(f"accounts {args.accounts}, stopped ({args.mode}) after {args.after} sync logs,")
    print(f"  latency {args.latency} s, concurrency {args.concurrency}")
    print(f"seconds from the stop to exit:   {after_stop:.2f}")
    print(f"exit code:                       {code}")
    print(f"Graph calls after the stop:      {len(sim.requests) - calls_before}")
    print(f"  accounts first called after:   {len(late)}")
    print(f"accounts ok:                     {report.get('accounts_ok')}")
    print(f"accounts not attempted:          {report.get('accounts_not_attempted')}")
    print(f"accounts failed (incl. those):   {report.get('accounts_failed')}")
    print(f"stopped: {report.get('stopped')}")


def _accounts(sim: Simulator, since: int) -> set[str]:
    found = set()
    for request in sim.requests[since:]:
        if match := _ACCOUNT_IN_PATH.search(request.path):
            found.add(match[1])
    return found


if __name__ == "__main__":
    main()
