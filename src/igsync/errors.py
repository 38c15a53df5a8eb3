"""The one error tree of igsync.

    IgsyncError                 root; the CLI maps it once, at the top
    ├── ConfigError             a missing or malformed setting (exit 2)
    ├── InputError              bad input on the command line (exit 2)
    ├── NothingToSyncError      sync-all saw no account at all (exit 1)
    ├── GraphError              the Graph API answered with an error, or could not be reached
    └── StoreError              the database refused, failed or could not confirm a write
        ├── StoreConfigError    the store cannot be opened as configured (exit 2)
        │   └── NotADatabaseError  the SQLite path names a file that is not a SQLite database
        ├── SchemaMissingError  the igsync tables are not there (and igsync cannot create them)
        └── StoreUnavailableError  the store stopped answering: a run stops sending accounts
            └── StoreCorruptError  the database file is damaged

Every message is safe to show: secrets are redacted where the error is built, so no caller has
to remember to do it.
"""

from __future__ import annotations

from enum import StrEnum


class IgsyncError(Exception):
    """Root of every error igsync raises on purpose."""

    exit_code = 1


class ConfigError(IgsyncError):
    """A setting is missing or malformed; the message names the variable and how to fix it."""

    exit_code = 2


class InputError(IgsyncError):
    """A command-line value is wrong; the message says which and what is accepted."""

    exit_code = 2


class NothingToSyncError(IgsyncError):
    """sync-all ran and this role sees no account at all: the message names the database and
    the likely causes (issue 12: an empty run must never pass for a good one)."""


class ErrorKind(StrEnum):
    """How to react to a Graph error (GRAPH_API.md §3)."""

    THROTTLED = "throttled"  # back off and retry
    TRANSIENT = "transient"  # retry a few times
    AUTH = "auth"  # token invalid or expired: refresh once, else needs_reauth
    PERMISSION = "permission"  # permanent: a permission is missing
    INVALID = "invalid"  # permanent: bad parameter or metric


class GraphError(IgsyncError):
    """An error answered by the Graph API (or a transport failure on the way to it)."""

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        code: int | None = None,
        subcode: int | None = None,
        error_type: str | None = None,
        fbtrace_id: str | None = None,
        is_transient: bool = False,
        http_status: int | None = None,
        retry_after: float | None = None,
        unreachable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code
        self.subcode = subcode
        self.error_type = error_type
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient
        self.http_status = http_status
        #: seconds Meta asked us to wait (estimated_time_to_regain_access), if it said
        self.retry_after = retry_after
        #: no connection to the Graph API could be made (refused, no DNS answer, no route,
        #: a connect timeout): Meta never saw the call
        self.unreachable = unreachable

    def clone(self, message: str | None = None) -> GraphError:
        """A new error with the same fields (and `message`, when given): one per caller when
        many share one failure."""
        return GraphError(
            self.message if message is None else message,
            kind=self.kind,
            code=self.code,
            subcode=self.subcode,
            error_type=self.error_type,
            fbtrace_id=self.fbtrace_id,
            is_transient=self.is_transient,
            http_status=self.http_status,
            retry_after=self.retry_after,
            unreachable=self.unreachable,
        )

    def __str__(self) -> str:
        if self.code is None:
            return self.message
        sub = f"/{self.subcode}" if self.subcode else ""
        return f"{self.message} [code {self.code}{sub}]"

    def __repr__(self) -> str:
        return f"GraphError({str(self)!r}, kind={self.kind.value!r})"


class StoreError(IgsyncError):
    """The store failed, refused a write, or confirmed fewer rows than were sent."""


class StoreConfigError(StoreError):
    """The store cannot be opened as configured: a wrong password, no such database, a host
    that does not answer, a read-only file. A setting to fix before any work: exit 2."""

    exit_code = 2


class NotADatabaseError(StoreConfigError):
    """The file --db names is not a SQLite database: SQLITE_NOTADB as it opens, and its first
    16 bytes are not SQLite's header string (https://www.sqlite.org/fileformat.html). A
    setting to fix (exit 2); `igsync db check` reports it as a problem, since a header
    overwritten by a failing disk looks the same."""


class SchemaMissingError(StoreError):
    """The igsync tables are missing; the message says how to apply the schema."""


class StoreUnavailableError(StoreError):
    """The store stopped answering: its server is gone or refuses sessions, no connection came
    within the pool's timeout, or its file cannot be read or written any more (SQLite: disk
    I/O error, locked past the busy timeout, read-only). Not one write's failure: every write
    after it would fail the same way or wait its timeout, so `sync-all` sends no more accounts
    to Meta (igsync.store_health)."""


class StoreCorruptError(StoreUnavailableError):
    """The database file is damaged (SQLite's SQLITE_CORRUPT, SQLITE_NOTADB); the message says
    to stop writing to it, run `igsync db check` and restore it from a backup."""
