"""Where a `sync-all` run's wall goes: its start, the calls, and how full the slots stay.

    uv run python benchmarks/in_flight.py [--accounts 1000] [--latency 0.1] [-- ARGS…]

One batched `igsync sync-all --days 1` over `--accounts` accounts on a new SQLite file,
against the simulator over loopback (as benchmarks/sync_all.py runs it; ARGS are passed on).
The simulator notes every change of its calls in flight; this prints the child's wall and
CPU, the time to its first call (interpreter, imports, settings, store, first page of
accounts), the calls' span (first call to last answer) against the ideal (calls x latency /
the most in flight), what follows the last answer, the mean calls in flight over the span,
and that mean per tenth of the span: the dips show where slots stood idle.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_all import APP_ID, APP_SECRET, run_igsync, seed_tokens

from igsync.simulator import SimAccount, Simulator, serve_in_thread
from igsync.simulator._app import time_now


class Traced(Simulator):
    """The simulator, keeping (time, calls in flight) at every change."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.changes: list[tuple[float, int]] = []

    def enter_calls(self, count: int) -> None:
        super().enter_calls(count)
        self.changes.append((time_now(), self.in_flight))

    def exit_calls(self, count: int) -> None:
        super().exit_calls(count)
        self.changes.append((time_now(), self.in_flight))


def mean_in_flight(changes: list[tuple[float, int]], start: float, end: float) -> float:
    """Calls in flight averaged over [start, end): each level weighted by how long it held."""
    area = 0.0
    for (at, level), (until, _) in pairwise(changes):
        lo, hi = max(at, start), min(until, end)
        if hi > lo:
            area += level * (hi - lo)
    return area / (end - start) if end > start else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("extra", nargs="*", help="more sync-all arguments, after --")
    args = parser.parse_args()
    accounts = [
        SimAccount(f"178414{i:011d}", tz="America/Los_Angeles") for i in range(1, args.accounts + 1)
    ]
    sim = Traced(accounts, latency=args.latency, app_id=APP_ID, app_secret=APP_SECRET)
    with tempfile.TemporaryDirectory(prefix="igsync-bench-") as name:
        tmp = Path(name)
        url = f"sqlite:///{tmp / 'in-flight.db'}"
        seed_tokens(url, accounts)
        with serve_in_thread(sim) as served:
            began = time_now()
            wall, cpu, _, report = run_igsync(
                served, url, tmp, "sync-all", "--days", "1", *args.extra
            )
    first, last = sim.first_call_at or began, sim.last_answer_at or began
    calls = sum(1 for r in sim.requests if r.path.endswith("/insights"))
    ideal = calls * args.latency / max(1, sim.max_in_flight)
    span = last - first
    print(
        f"{args.accounts} accounts ({report.get('accounts_ok')} ok), {calls} Graph calls,"
        f" at most {sim.max_in_flight} in flight, {args.latency * 1000:.0f} ms a round trip"
    )
    print(f"wall {wall:.2f} s (ideal {ideal:.2f} s: {wall / ideal:.2f}), CPU {cpu:.2f} s")
    tail = began + wall - last
    print(f"to the first call {first - began:.2f} s, after the last answer {tail:.2f} s")
    print(f"calls' span {span:.2f} s ({span / ideal:.2f} of ideal)")
    print(f"mean in flight {mean_in_flight(sim.changes, first, last):.1f}")
    tenths = [
        mean_in_flight(sim.changes, first + span * k / 10, first + span * (k + 1) / 10)
        for k in range(10)
    ]
    print("per tenth of the span: " + " ".join(f"{m:.0f}" for m in tenths))


if __name__ == "__main__":
    main()
