"""Whether a run's store still answers: the circuit that stops a run on a dead store (issue 11).

Once a store raises `StoreUnavailableError` (its server stopped, its pool timed out, its file
failed, is locked past the busy timeout or is damaged), every later write would fail the same
way, each after its own timeout, while the run kept spending Meta's rate limits on data it
cannot keep. `StoreHealth` remembers the first such error for the whole run: accounts not yet
started are reported "not attempted" without a Graph call, rows gathered before it are reported
not written without trying, and no more sync-log rows are tried. One write's failure (a
constraint, a short count, a full disk) is a plain `StoreError` and does not trip it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from igsync.errors import StoreCorruptError, StoreUnavailableError

log = logging.getLogger(__name__)


@dataclass
class StoreHealth:
    """The first `StoreUnavailableError` of a run (None while the store answers).

    Shared by every account of a run (`RunContext.health`); asyncio runs one task at a time,
    so no lock is needed.
    """

    down: StoreUnavailableError | None = None

    def saw(self, error: BaseException) -> None:
        """Note `error`: a StoreUnavailableError trips the circuit (the first one is kept)."""
        if self.down is None and isinstance(error, StoreUnavailableError):
            self.down = error
            log.error("the store stopped answering; no more accounts are started: %s", error)

    @property
    def reason(self) -> str | None:
        """Why the run stopped, as one line for results and the summary (None: it did not):
        "the store stopped answering (…)", or the damaged file's own message, which says so
        and what to do."""
        if self.down is None:
            return None
        if isinstance(self.down, StoreCorruptError):
            return str(self.down)
        return f"the store stopped answering ({self.down})"
