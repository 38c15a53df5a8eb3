"""`python -m igsync.simulator --port 0` in a child process, started as a user starts it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from igsync.simulator import Served


@contextmanager
def standalone_simulator() -> Iterator[Served]:
    """Yields the two URLs the simulator prints first (Facebook host, then Instagram host);
    stops it afterwards."""
    server = subprocess.Popen(
        [sys.executable, "-m", "igsync.simulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    try:
        graph_url = server.stdout.readline().strip()
        instagram_url = server.stdout.readline().strip()
        for url in (graph_url, instagram_url):
            assert url.startswith("http://127.0.0.1:"), f"the simulator printed {url!r}"
        assert graph_url != instagram_url
        yield Served(graph_url, instagram_url)
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
