"""`python -m igsync.simulator --port 0` in a child process, started as a user starts it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def standalone_simulator() -> Iterator[str]:
    """Yields the URL the simulator prints on its first line; stops it afterwards."""
    server = subprocess.Popen(
        [sys.executable, "-m", "igsync.simulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"the simulator printed {url!r}"
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
