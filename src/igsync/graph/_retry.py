"""The retry policy of every Graph call: bounded, capped exponential backoff with jitter, paced
by the usage Meta reports (GRAPH_API.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from igsync.errors import ErrorKind, GraphError


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Bounded retries with capped exponential backoff and jitter (stamina's defaults shape)."""

    attempts: int = 5
    wait_initial: float = 1.0
    wait_max: float = 30.0
    wait_jitter: float = 1.0
    #: total time budget for one request, retries included
    timeout: float = 180.0
    #: a regain-access estimate longer than this fails fast instead of blocking a cron run
    max_regain_wait: float = 300.0
    #: usage (percent of a quota) from which requests slow down (GRAPH_API.md §3: pace before
    #: 100%, from ~80-90%), and the pause before each request at 100%
    pace_from: float = 80.0
    pace_max: float = 30.0

    def pace(self, usage: float | None) -> float:
        """Seconds to pause before the next request at this usage; 0 below `pace_from`.

        Grows with the square of how far past `pace_from` the usage is: barely a pause at 81%,
        a quarter of `pace_max` halfway to 100%, all of it at 100%.
        """
        if usage is None or usage < self.pace_from:
            return 0.0
        share = min(1.0, (usage - self.pace_from) / max(1e-9, 100.0 - self.pace_from))
        return self.pace_max * share**2


def should_retry(policy: RetryPolicy) -> Callable[[Exception], bool | float]:
    """stamina backoff hook: False = give up, True = default backoff, float = wait that long."""

    def hook(exc: Exception) -> bool | float:
        if not isinstance(exc, GraphError) or exc.kind not in (
            ErrorKind.THROTTLED,
            ErrorKind.TRANSIENT,
        ):
            return False
        if exc.retry_after:
            # Honour Meta's estimate, unless it is longer than a cron run should block.
            return exc.retry_after if exc.retry_after <= policy.max_regain_wait else False
        return True

    return hook
