"""Startup cost of the CLI: `igsync --help` and `--version` beside a bare `python -c pass`.

    uv run python benchmarks/startup.py [--runs 15]

Prints the median wall time of each and its ratio to the bare interpreter, measured side by
side in one run (this machine is noisy; ratios travel better than seconds). Goal: --help <= 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

IGSYNC = str(Path(sys.executable).parent / "igsync")
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "igsync --version": [IGSYNC, "--version"],
    "igsync --help": [IGSYNC, "--help"],
    "igsync fetch --help": [IGSYNC, "fetch", "--help"],
}


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    for cmd in CASES.values():
        wall(cmd)  # warm the page cache once
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):  # interleaved, so drift hits every case alike
        for name, cmd in CASES.items():
            samples[name].append(wall(cmd))
    base = statistics.median(samples["python -c pass"])
    print(f"{'command':<22} {'median s':>9} {'min s':>7} {'x python':>9}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<22} {median:>9.3f} {min(values):>7.3f} {median / base:>9.1f}")
    help_median = statistics.median(samples["igsync --help"])
    verdict = "meets" if help_median <= 0.3 else "misses"
    print(f"--help {verdict} the 0.3 s goal ({help_median:.3f} s, {runs} runs)")


if __name__ == "__main__":
    main()
