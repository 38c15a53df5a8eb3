"""Peak RSS of an `igsync` child process, measured by the child itself.

`os.wait4`'s `ru_maxrss` is wrong for a child of a large process: Linux keeps the high-water
mark of the memory the child had before `exec` (a copy of its parent's) as the child's own.
Measured here: a parent holding 400 MB spawns `/bin/true`, and wait4 says 413 MB. A benchmark
that serves the simulator in its own process, whose request log grows with every run, then
reports its own size as igsync's. `VmHWM` in `/proc/self/status` counts only the address
space of the running program, so the child reads it as it exits and writes it to a file.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

_SHIM = """\
import atexit, os, sys

def _peak() -> None:
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(os.environ["IGSYNC_BENCH_PEAK"], "w") as out:
        out.write(str(kb))

atexit.register(_peak)
from igsync.cli import console
sys.argv[0] = "igsync"
console()
"""


def igsync_command(*args: str) -> list[str]:
    """The argv that runs `igsync ARGS` in this venv and records its peak RSS (see
    `peak_env`)."""
    return [sys.executable, "-c", _SHIM, *args]


def peak_env(env: Mapping[str, str], where: Path) -> dict[str, str]:
    """`env` plus where the child writes its peak RSS (`read_peak_mb(where)`)."""
    return {**env, "IGSYNC_BENCH_PEAK": str(where)}


def read_peak_mb(where: Path) -> float:
    """The peak RSS (MB) the child wrote; NaN when it wrote none (killed, or not Linux)."""
    try:
        return int(where.read_text()) / 1024
    except (OSError, ValueError):
        return float("nan")
    finally:
        where.unlink(missing_ok=True)
