"""Log lines on stderr: plain text or one JSON object per line, redacted, never wrapped.

`--log-format text` (the default): `2026-11-30T15:40:01Z WARNING <sentence>`, one line per
record, neither padded nor cut to the terminal's width, so that `grep` and a log shipper see
whole lines. `--log-format json`: one JSON object per line (python-json-logger) with `time`
(UTC, ISO 8601), `level`, `logger`, `message` and the record's own fields (a retry's `wait_s`,
`code`…). Every line goes through `redact` as a whole, traceback included.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from igsync.redact import redact

if TYPE_CHECKING:
    from igsync.cli._render import ErrSink

LogFormat = Literal["text", "json"]

#: the loggers igsync's lines come from (stamina's default hook is replaced by ours, see
#: igsync.graph._retry_log; its logger is kept in case another hook is configured), and
#: those of the libraries that log on their own: psycopg's pool (a connection it dropped or
#: could not make) and procrastinate (the job queue). Without them those would reach
#: Python's last-resort handler: warnings and tracebacks on stderr whatever -q or -v said.
LOGGERS = ("igsync", "stamina", "psycopg", "procrastinate")
#: of those, the libraries: their records' tracebacks shrink to one line below -vv
_LIBRARIES = ("psycopg", "procrastinate")


class _OneLine(logging.Filter):
    """A library's record with a traceback says its exception in one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name.split(".", 1)[0] in _LIBRARIES:
            exc = record.exc_info[1]
            if exc is not None:
                record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
                record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def level_for(verbose: int) -> int:
    """WARNING by default, INFO with -v, DEBUG with -vv."""
    return logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING


class TextFormatter(logging.Formatter):
    """`2026-11-30T15:40:01Z WARNING message` (with the logger's name at -vv); a message's own
    line breaks become spaces, so one record is one line (a traceback keeps its lines)."""

    def __init__(self, *, with_name: bool) -> None:
        fmt = "%(asctime)s %(levelname)s " + ("[%(name)s] " if with_name else "") + "%(message)s"
        super().__init__(fmt)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = " ".join(record.message.split())
        return super().formatMessage(record)


def json_formatter() -> logging.Formatter:
    """One JSON object per record: time, level, logger, message, and any `extra` fields."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        json_ensure_ascii=False,
    )


class LineHandler(logging.Handler):
    """Writes each formatted, redacted record as one line through the stderr sink (above a
    live progress bar on a terminal; nothing once the reader of stderr is gone)."""

    def __init__(self, sink: ErrSink, formatter: logging.Formatter) -> None:
        super().__init__()
        self.sink = sink
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = redact(self.format(record))
        except Exception:  # a bad format string must not end a sync
            self.handleError(record)
            return
        self.sink.line(line)


def setup_logging(sink: ErrSink | None, *, verbose: int, log_format: LogFormat) -> None:
    """Route igsync's loggers to `sink` (None: nowhere) at the level -v asks for, and make
    stamina's scheduled retries plain sentences (igsync.graph._retry_log)."""
    from stamina.instrumentation import set_on_retry_hooks

    from igsync.graph._retry_log import log_retry

    handler: logging.Handler
    if sink is None:
        handler = logging.NullHandler()
    else:
        formatter = (
            json_formatter() if log_format == "json" else TextFormatter(with_name=verbose > 1)
        )
        handler = LineHandler(sink, formatter)
        if verbose < 2:
            handler.addFilter(_OneLine())
    level = level_for(verbose)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(level)
    set_on_retry_hooks([log_retry])
