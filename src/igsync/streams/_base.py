"""What every stream shares: the Stream protocol and the outcomes it returns."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from igsync.catalogue import MetricSpec
from igsync.errors import ErrorKind, GraphError
from igsync.graph import GraphClient, accepted_metrics
from igsync.local_day import LocalClock
from igsync.models import Account, AudienceRow, InsightRow, MediaInsightRow, MediaRow
from igsync.window import WindowPlan

T = TypeVar("T")


async def gather_calls(calls: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """`asyncio.gather(*calls)`, without a task for a lone call: most accounts' requests
    come one at a time (`--days 1`), and a task would send each one loop turn later, behind
    whatever else was ready (benchmarks/sync_all.py: the time from a batch's answer to the
    next batch is the gap between slots busy and ideal)."""
    if len(calls) == 1:
        return [await calls[0]]
    return list(await asyncio.gather(*calls))


@dataclass(frozen=True)
class MetricOutcome:
    """How one metric ended for one account: rows gathered, or why none were."""

    metric: str
    #: rows gathered (written or not: a dry run writes nothing)
    rows: int = 0
    #: None when the metric was fetched; else what kind of failure ended it
    error: ErrorKind | None = None
    #: the failure for people, without the metric's name: "(#100) The value must be …"
    reason: str | None = None

    @property
    def message(self) -> str | None:
        """The line `FetchResult.errors` carries: "metric: reason"."""
        return None if self.reason is None else f"{self.metric}: {self.reason}"

    @classmethod
    def failed(cls, metric: str, error: GraphError) -> MetricOutcome:
        """`metric` refused with `error`; named retired when Meta's own list of the metrics it
        accepts leaves it out (GRAPH_API.md §7: Meta retires metrics in every version)."""
        accepted = accepted_metrics(error)
        if accepted is not None and metric not in accepted:
            return cls(
                metric,
                error=error.kind,
                reason=f"retired by Meta: not among the metrics it accepts today ({error})",
            )
        return cls(metric, error=error.kind, reason=str(error))


@dataclass
class StreamOutcome:
    """What one stream gathered for one account, before anything is written."""

    stream: str
    rows: list[InsightRow] = field(default_factory=list)
    #: per metric asked for, in the order they were decided
    metrics: dict[str, MetricOutcome] = field(default_factory=dict)
    #: worth knowing, not failures: a clamped window, a metric with no data
    notes: list[str] = field(default_factory=list)
    #: the day ends (UTC) rows were gathered for, oldest first
    days: list[datetime] = field(default_factory=list)
    #: snapshot rows of the other tables (DESIGN §6), by kind
    audience: list[AudienceRow] = field(default_factory=list)
    media: list[MediaRow] = field(default_factory=list)
    media_insights: list[MediaInsightRow] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [m.message for m in self.metrics.values() if m.message is not None]

    @property
    def table_rows(self) -> tuple[list[Any], ...]:
        """Its rows of each table, in the order they are written: InsightRow, AudienceRow,
        MediaRow, MediaInsightRow (the lists themselves, not copies)."""
        return (self.rows, self.audience, self.media, self.media_insights)


class Stream(Protocol):
    """One kind of data: its requests, its rows, its table and key."""

    @property
    def name(self) -> str:
        """The name `--streams` uses."""
        ...

    @property
    def table(self) -> str:
        """The table its rows go to."""
        ...

    @property
    def key(self) -> tuple[str, ...]:
        """The columns of that table's unique key."""
        ...

    async def collect(
        self,
        graph: GraphClient,
        account: Account,
        plan: WindowPlan,
        now: datetime,
        clock: LocalClock,
    ) -> StreamOutcome:
        """Ask the Graph API for this stream's data of `account` over `plan`.

        `now` is UTC; `clock` is the account's local date, shared by its streams (a stream
        that sees day end_times teaches it). Raises GraphError (AUTH) only when the token
        itself was refused.
        """
        ...


def served_range(
    plan: WindowPlan, spec: MetricSpec, now: datetime, notes: list[str]
) -> tuple[datetime, datetime] | None:
    """`plan.metric_range(spec, now)`, saying in `notes` when Meta's lookback for the metric
    leaves nothing of the window (GRAPH_API.md §1). Whether a clamp left out any day depends
    on when the account's days end: `clamp_note` tells from its day ends."""
    served = plan.metric_range(spec, now)
    if served is None:
        notes.append(f"{spec.name}: the API serves only its last {spec.lookback_days} days")
    return served


def clamp_note(spec: MetricSpec, served_since: datetime, keys: Iterable[datetime]) -> str | None:
    """The note for the days (their end_times `keys`, UTC) of the window that Meta's lookback,
    clamping `spec`'s requests to start at `served_since`, left out; None when it left none
    out (a window of exactly the last 30 days loses none)."""
    lost = sum(1 for key in keys if key <= served_since)
    if not lost:
        return None
    days = spec.lookback_days
    return f"{spec.name}: window clamped to its last {days} days ({lost} day(s) left out)"
