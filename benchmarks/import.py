"""Onboarding time: `igsync accounts import` of N accounts, and one `igsync accounts add`.

    uv run python benchmarks/import.py [--accounts 2000] [--adds 3] [--postgres-url URL]
                                       [--igsync PATH] [--no-import]

Runs the installed `igsync` as a user would (a subprocess, stdin from a file), so the figure
includes start-up, checking every row and the writes:
- `accounts import` of N accounts (NDJSON) into a new SQLite file and into a real PostgreSQL
  (a throwaway server with the server's default durability, started as the tests start theirs,
  unless `--postgres-url` or IGSYNC_TEST_POSTGRES_URL names one; a fresh database on it);
- `accounts add` of one account, `--adds` times, without a bytecode cache (every module
  compiled from source at each start: what a `PYTHONDONTWRITEBYTECODE=1` environment or a
  read-only install without .pyc files does) and with one (`uv tool install
  --compile-bytecode`, or any install where Python may write `__pycache__`). The cache is
  steered with PYTHONPYCACHEPREFIX, so the project's own files are left alone.
`--igsync` times another installation's igsync (e.g. an older checkout's, for a before/after
of `accounts add`; `--no-import` then skips the import, which older versions lack).
Prints seconds, wall and CPU (CPU time moves less when other work shares the machine).
Goal: N=2,000 accounts in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from statistics import median
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import postgres_server

IGSYNC = str(Path(sys.executable).parent / "igsync")
USER = UUID("00000000-0000-4000-8000-0000000b0a7d")


def rows(count: int) -> str:
    return "".join(
        json.dumps(
            {
                "user_id": str(USER),
                "account_id": f"1784140{n:010d}",
                "access_token": f"EAAGbench{n:08d}" + "x" * 150,
                "expires_at": "2030-01-01T00:00:00Z",
            }
        )
        + "\n"
        for n in range(count)
    )


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(args: list[str], stdin: str, env: dict[str, str]) -> tuple[float, float]:
    return timed_with(IGSYNC, args, stdin, env)


def timed_with(
    igsync: str, args: list[str], stdin: str, env: dict[str, str]
) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `igsync ARGS` run; CPU time moves less than wall
    time when other work shares the machine."""
    started, cpu = time.perf_counter(), _cpu()
    done = subprocess.run(
        [igsync, *args], input=stdin, capture_output=True, text=True, env=env, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"igsync {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return elapsed, _cpu() - cpu


def shown(figures: tuple[float, float]) -> str:
    return f"{figures[0]:6.2f} s wall, {figures[1]:6.2f} s CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--adds", type=int, default=3)
    parser.add_argument("--postgres-url", default=os.environ.get("IGSYNC_TEST_POSTGRES_URL"))
    parser.add_argument("--igsync", default=IGSYNC, help="the igsync whose `accounts add` to time")
    parser.add_argument("--no-import", action="store_true", help="time `accounts add` only")
    options = parser.parse_args()
    data = rows(options.accounts)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IGSYNC_", "SUPABASE"))}
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")  # warmed by the first run below
        env.pop("PYTHONDONTWRITEBYTECODE", None)

        igsync = options.igsync
        sqlite_url = f"sqlite:///{tmp / 'import.db'}"
        # the schema created, and the bytecode cache filled, before anything is timed
        timed_with(igsync, ["--db", sqlite_url, "accounts", "list"], "", env)
        if not options.no_import:
            seconds = timed(["--db", sqlite_url, "accounts", "import"], data, env)
            print(f"accounts import, {options.accounts} accounts, SQLite:     {shown(seconds)}")

        server = options.postgres_url or stack.enter_context(
            postgres_server.postgres_server(settings={})
        )
        pg_url = stack.enter_context(postgres_server.fresh_database(server))
        timed_with(igsync, ["--db", pg_url, "accounts", "list"], "", env)
        if not options.no_import:
            seconds = timed(["--db", pg_url, "accounts", "import"], data, env)
            print(f"accounts import, {options.accounts} accounts, PostgreSQL: {shown(seconds)}")

        token = "EAAGbenchadd" + "y" * 150
        for store, url in (("SQLite", sqlite_url), ("PostgreSQL", pg_url)):
            for label, cache in (("no bytecode cache", False), ("bytecode cached", True)):
                run_env = dict(env)
                if not cache:
                    # an empty cache each time, never written: every module compiled anew
                    run_env["PYTHONDONTWRITEBYTECODE"] = "1"
                times = []
                for n in range(options.adds):
                    if not cache:
                        run_env["PYTHONPYCACHEPREFIX"] = str(tmp / f"empty-{store}-{n}")
                    args = ["--db", url, "accounts", "add", "--user", str(USER)]
                    args += ["--account-id", f"99{n}", "--token-stdin"]
                    times.append(timed_with(igsync, args, token, run_env))
                wall, cpu = median(t[0] for t in times), median(t[1] for t in times)
                print(
                    f"accounts add, one account, {store + ',':11} {label:18} "
                    f"{shown((wall, cpu))} (medians of {options.adds})"
                )


if __name__ == "__main__":
    main()
