"""sync-all's counted progress bar on a terminal: accounts done and failed of N, rows, rate, ETA.

N grows as `user_tokens` pages are read (the accounts of this run: a shard holds only its own),
shown as `N+` until the last page is in; the rate and the time left come from rich's own
speed estimate over the accounts finished so far.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, Task, TaskID
    from rich.text import Text

    from igsync.models import FetchResult


class SyncProgress:
    """What sync-all tells the bar; every method is a no-op without a bar (cron, -q)."""

    def __init__(self, bar: tuple[Progress, TaskID] | None) -> None:
        self._bar = bar
        self.done = 0
        self.failed = 0
        self.rows = 0

    def queued(self, count: int, final: bool) -> None:
        """`count` accounts are known so far; `final`: every page of tokens is read."""
        if self._bar is not None:
            progress, task = self._bar
            progress.update(task, total=count, final=final)

    def finished(self, result: FetchResult) -> None:
        """One account ended (written and logged, or failed)."""
        self.done += 1
        self.failed += not result.success
        self.rows += result.total_inserted
        if self._bar is not None:
            progress, task = self._bar
            progress.update(task, advance=1, failed=self.failed, rows=self.rows)


def _columns() -> tuple[object, ...]:
    from rich.progress import (
        BarColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Counted(ProgressColumn):
        """`12/201 accounts` (`12/500+` while pages of tokens are still being read)."""

        def render(self, task: Task) -> Text:
            total = "?" if task.total is None else f"{int(task.total):,}"
            more = "" if task.fields.get("final") else "+"
            return Text(
                f"{int(task.completed):,}/{total}{more} accounts", style="progress.download"
            )

    class Failed(ProgressColumn):
        def render(self, task: Task) -> Text:
            failed = int(task.fields.get("failed", 0))
            return Text(f"{failed:,} failed", style="red" if failed else "dim")

    class Rate(ProgressColumn):
        """Accounts per second over the recent ones, as rich estimates its speed."""

        def render(self, task: Task) -> Text:
            speed = task.speed
            return Text("-/s" if speed is None else f"{speed:.1f}/s", style="progress.data.speed")

    return (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        Counted(),
        Failed(),
        TextColumn("{task.fields[rows]:,} rows"),
        Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )


@contextlib.contextmanager
def sync_bar(console: Console, text: str) -> Iterator[tuple[Progress, TaskID]]:
    """A live bar on `console` (stderr), gone when the block ends: the report follows it."""
    from rich.progress import Progress

    with Progress(*_columns(), console=console, transient=True) as progress:  # type: ignore[arg-type]
        task = progress.add_task(text, total=None, failed=0, rows=0, final=False)
        yield progress, task
