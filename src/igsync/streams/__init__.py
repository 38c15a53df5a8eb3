"""Streams: each describes one kind of Instagram data igsync syncs (DESIGN §6).

A stream knows, for one account and one window: which Graph requests to make (all through
the one request primitive, `GraphClient.call`, so batching applies to every stream), how the
answers become rows, which table and key those rows have, and how far back Meta serves them.
It gathers; it never writes: `igsync.sync` writes what every stream of an account gathered,
verifies it and logs the run. A stream's `collect` raises `GraphError` only when the token
itself was refused (ErrorKind.AUTH), which the token policy (`igsync.token_policy`) handles;
every other failure is one metric's `MetricOutcome`, never the end of the others.

    account   daily account metrics            instagram_insights
    audience  demographics, online_followers   instagram_audience (+ instagram_insights)
    media     media objects, lifetime insights instagram_media, instagram_media_insights
    stories   live stories (24 h), insights    instagram_media, instagram_media_insights
"""

from __future__ import annotations

from collections.abc import Sequence

from igsync.catalogue import (
    DEFAULT_METRICS,
    DEFAULT_STREAMS,
    METRIC_CONFIG,
    STREAM_NAMES,
    parse_metric_list,
    parse_stream_list,
)
from igsync.errors import InputError
from igsync.streams._base import MetricOutcome, Stream, StreamOutcome
from igsync.streams.account import AccountStream
from igsync.streams.audience import AudienceStream
from igsync.streams.media import MediaStream, stories_stream

__all__ = [
    "DEFAULT_STREAMS",
    "STREAM_NAMES",
    "AccountStream",
    "AudienceStream",
    "MediaStream",
    "MetricOutcome",
    "Stream",
    "StreamOutcome",
    "choose_streams",
    "parse_stream_list",
]


def choose_streams(
    streams: Sequence[str] | None = None, metrics: Sequence[str] | None = None
) -> list[Stream]:
    """The streams to run, each with its metrics, in STREAM_NAMES order.

    `streams` None: the streams of the metrics named, else DEFAULT_STREAMS. `metrics`
    (catalogue names) picks metrics within the chosen streams; a chosen stream none of them
    belongs to runs its default set (the account stream's defaults, every audience metric),
    never nothing. Raises InputError for an unknown stream, a retired or unknown metric, or a
    metric whose stream is not chosen, before any request.
    """
    named = None if metrics is None else parse_metric_list(",".join(metrics))
    if streams is None:
        streams = (
            DEFAULT_STREAMS
            if named is None
            else tuple(dict.fromkeys(METRIC_CONFIG[m].stream for m in named))
        )
    chosen = parse_stream_list(",".join(streams))
    if named is not None:
        outside = [m for m in named if METRIC_CONFIG[m].stream not in chosen]
        if outside:
            spec = METRIC_CONFIG[outside[0]]
            raise InputError(
                f"{spec.name} belongs to the {spec.stream} stream, which is not chosen; add "
                f"it: --streams {','.join(dict.fromkeys([*chosen, spec.stream]))}"
            )
    result: list[Stream] = []
    for name in STREAM_NAMES:
        if name not in chosen:
            continue
        if name in ("media", "stories"):
            # their metrics depend on each object's media product type (streams.media)
            result.append(MediaStream() if name == "media" else stories_stream())
            continue
        default = DEFAULT_METRICS if name == "account" else tuple(METRIC_CONFIG)
        mine = [m for m in named or () if METRIC_CONFIG[m].stream == name]
        specs = [METRIC_CONFIG[m] for m in mine or default if METRIC_CONFIG[m].stream == name]
        result.append(AccountStream(specs) if name == "account" else AudienceStream(specs))
    return result
