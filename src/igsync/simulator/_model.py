"""What a test configures (accounts, faults) and what it inspects afterwards (requests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args
from zoneinfo import ZoneInfo

FaultKind = Literal[
    "throttle",
    "throttle_ig",
    "user_throttle",
    "page_throttle",
    "rate_limit_613",
    "server_error",
    "bad_gateway",
    "transient",
    "timeout",
    "expired_token",
    "logged_out",
    "object_missing",
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))

# Zones chosen to exercise GRAPH_API §2: DST west of UTC, a half-hour offset east of UTC, DST in
# the southern hemisphere, and plain UTC.
DEMO_ZONES = (
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Europe/London",
    "America/New_York",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "UTC",
)


@dataclass
class SimAccount:
    """One Instagram professional account the simulator knows."""

    account_id: str
    tz: str = "UTC"  # IANA zone: end_time is the local midnight that ends each day (GRAPH_API §2)
    followers: int = 1500  # below 100, follower_count serves no data (GRAPH_API §1)
    empty: bool = False  # no insights at all: every insights call answers {"data": []}
    denied_metrics: frozenset[str] = frozenset()  # answer code 10 (permission) for these

    def __post_init__(self) -> None:
        ZoneInfo(self.tz)  # fail at set-up, not in the middle of a request, on a typo'd zone


@dataclass
class Fault:
    """One injected failure; it hits the next `times` matching requests, then it is spent."""

    kind: FaultKind
    times: int = 1
    metric: str | None = None  # only requests whose `metric` list contains this
    account_id: str | None = None  # only requests for this account
    regain_minutes: int = 0  # throttle_ig: estimated_time_to_regain_access
    delay: float = 30.0  # timeout: seconds the response is held back

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            msg = f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}"
            raise ValueError(msg)


@dataclass
class SimRequest:
    """One request as the simulator saw it; `status` is 0 until the response starts."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    status: int = 0


def demo_accounts(n: int = 3) -> list[SimAccount]:
    """`n` accounts with ids 17841400000000001… whose zones cycle through `DEMO_ZONES`."""
    return [
        SimAccount(
            account_id=f"178414{i:011d}",
            tz=DEMO_ZONES[(i - 1) % len(DEMO_ZONES)],
            followers=1500 + 700 * (i - 1),
        )
        for i in range(1, n + 1)
    ]
