"""stdout that cannot be written: a full disk (`> /dev/full`) or a closed descriptor (`>&-`).

A reader that left (`| head`) ends the output quietly (README "Progress, logs and pipes"); a
write that fails for any other reason is a failure the user must hear of: the work goes on
(every account of a `sync-all` is still synced), then `main()` says so in one line on stderr
and exits 1, never with a traceback nor Python's "Exception ignored" at exit.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

#: why stdout could not be written ("No space left on device"), once it failed; None until then
failure: str | None = None

_CLOSED = "stdout is closed"


class _ClosedBinary(io.RawIOBase):
    """`sys.stdout.buffer` when the process started with descriptor 1 closed."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise OSError(errno.EBADF, _CLOSED)


class ClosedStdout(io.TextIOWrapper):
    """`sys.stdout` when the process started with descriptor 1 closed (Python sets it to None):
    every write raises OSError(EBADF, "stdout is closed"), which the writers report as above,
    instead of an AttributeError on None. Not a terminal; flushing nothing written succeeds."""

    def __init__(self) -> None:
        super().__init__(io.BufferedWriter(_ClosedBinary()), encoding="utf-8")

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, _CLOSED)

    def isatty(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise io.UnsupportedOperation(_CLOSED)


def install() -> None:
    """Give a process started with stdout closed a `sys.stdout` that fails as above; forget
    an earlier command's failure (tests run many commands in one process)."""
    global failure
    failure = None
    if sys.stdout is None:
        sys.stdout = ClosedStdout()


def note(exc: OSError) -> None:
    """Record that writing stdout failed with `exc`, and point descriptor 1 at /dev/null so
    that what is still buffered (Python's flush at exit) goes nowhere instead of failing again."""
    global failure
    if failure is None:
        failure = exc.strerror or str(exc)
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Writes to stdout inside the block: a failure other than a reader that left is noted
    (see `note`) and ends the block quietly. A BrokenPipeError passes through to its caller."""
    try:
        yield
    except (BrokenPipeError, ConnectionResetError):
        raise
    except OSError as exc:
        note(exc)


def finish() -> None:
    """Flush stdout at the end of a command, noting a failure still buffered (`> /dev/full`)."""
    if sys.stdout is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError), guarded():
        sys.stdout.flush()


def message() -> str | None:
    """The one line for stderr when stdout could not be written, else None."""
    return None if failure is None else f"cannot write the output: {failure}"
