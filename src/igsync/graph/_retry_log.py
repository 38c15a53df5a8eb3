"""Scheduled retries as plain sentences: what was retried, why, and how long igsync waits.

stamina's own hook logs `stamina.retry_scheduled` with the facts in `extra` fields that a plain
log line never shows. Its instrumentation is pluggable (stamina >= 23.2,
`stamina.instrumentation.set_on_retry_hooks`): the CLI installs `log_retry` in its place. The
hook runs in the task that retries, so a context variable set around each retried Graph call
tells it which call it is (stamina names every `retry_context` block `<context block>`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from stamina.instrumentation import RetryDetails

from igsync.errors import ErrorKind, GraphError
from igsync.redact import redact

log = logging.getLogger("igsync.retry")

_VERSION = re.compile(r"^/?v\d+\.\d+/")


@dataclass(frozen=True)
class _Call:
    what: str
    attempts: int


_current: ContextVar[_Call | None] = ContextVar("igsync_retried_call", default=None)


@contextmanager
def retried_call(path: str, attempts: int) -> Iterator[None]:
    """Name the Graph call (`/{ig-user-id}/insights`, `/v27.0/oauth/access_token`) that the
    retries inside this block are for, and how many attempts it gets in all."""
    what = "Graph call " + (_VERSION.sub("", path).lstrip("/") or "(batch)")
    reset = _current.set(_Call(what, attempts))
    try:
        yield
    finally:
        _current.reset(reset)


def seconds(value: float) -> str:
    """A wait as people say it: `60 s`, `1.5 s`, `0.2 s`."""
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def retry_sentence(details: RetryDetails) -> tuple[str, dict[str, object]]:
    """The sentence for one scheduled retry, and the same facts as fields for JSON logs.

    `account 1784…/insights throttled by Meta (code 4), waiting 60 s as Meta asked
    (retry 1 of 4)`. Throttling codes and `estimated_time_to_regain_access` are GRAPH_API.md §3.
    """
    call = _current.get()
    what = call.what if call else "a request"
    retries = (
        f"retry {details.retry_num} of {call.attempts - 1}"
        if call
        else (f"retry {details.retry_num}")
    )
    error = details.caused_by
    fields: dict[str, object] = {
        "event": "retry_scheduled",
        "call": what,
        "retry": details.retry_num,
        "wait_s": round(details.wait_for, 2),
    }
    wait = f"waiting {seconds(details.wait_for)}"
    if isinstance(error, GraphError):
        fields |= {"code": error.code, "subcode": error.subcode, "http_status": error.http_status}
        code = f"code {error.code}" if error.code is not None else None
        if error.subcode is not None and code:
            code += f"/{error.subcode}"
        if error.kind is ErrorKind.THROTTLED:
            why = f"throttled by Meta ({code or 'rate limit'})"
            if error.retry_after:
                wait += " as Meta asked"
        else:
            status = code or (f"HTTP {error.http_status}" if error.http_status else None)
            why = (
                f"failed for now ({status}: {error.message})"
                if status
                else (f"failed for now ({error.message})")
            )
    else:
        why = f"failed for now ({type(error).__name__}: {error})"
    return redact(f"{what} {why}, {wait} ({retries})"), fields


def log_retry(details: RetryDetails) -> None:
    """stamina on-retry hook: one WARNING sentence per scheduled retry (see `retry_sentence`)."""
    message, fields = retry_sentence(details)
    log.warning("%s", message, extra=fields)
