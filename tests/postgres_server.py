"""A throwaway PostgreSQL server for tests and benchmarks, and the pytest plugin that serves it.

One server per test session (initdb + pg_ctl in a temp dir, 127.0.0.1 on a free port, `trust`
auth); every test that asks for `fresh_postgres_url` gets a brand-new database on it, dropped
afterwards. `IGSYNC_TEST_POSTGRES_URL` (a `postgresql://` URL) points the suite at a server you
already run instead (its role needs CREATEDB). Without PostgreSQL binaries the tests skip
locally and fail when `CI=true`: a CI run that silently skipped the database proves nothing.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

URL_ENV = "IGSYNC_TEST_POSTGRES_URL"

# Durability is pointless for a server that lives for one test session; these make it fast.
TEST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL binaries (or no way to run them) on this machine."""


def find_bindir() -> Path:
    """The directory holding `initdb` and `pg_ctl`: PATH first, then Debian's versioned dirs."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    versioned = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    for initdb in reversed(versioned):
        if (initdb.parent / "pg_ctl").exists():
            return initdb.parent
    raise PostgresUnavailableError(
        f"no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin; "
        f"install PostgreSQL or set {URL_ENV}"
    )


def _run_as() -> list[str]:
    """initdb refuses to run as root: run the server as the `postgres` OS user then."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailableError(
            "running as root and there is no `postgres` OS user to run initdb as"
        ) from None
    return ["runuser", "-u", "postgres", "--"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerControl:
    """A private server that a test may stop and start again (`stoppable_postgres_server`)."""

    def __init__(self, url: str, ctl: Callable[..., None], start_options: list[str]) -> None:
        self.url = url
        self._ctl = ctl
        self._start_options = start_options
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m MODE`: fast ends every session with 57P01, as a service stop does."""
        self._ctl("stop", "-m", mode, "-w")
        self.running = False

    def start(self) -> None:
        self._ctl("start", "-w", *self._start_options)
        self.running = True


@contextmanager
def stoppable_postgres_server(
    settings: Mapping[str, str] = TEST_SETTINGS,
) -> Iterator[ServerControl]:
    """Start a private server (as `postgres_server`) and yield its control: the store-outage
    tests stop it in the middle of a run. Raises PostgresUnavailableError without binaries."""
    bindir = find_bindir()
    prefix = _run_as()
    root = Path(tempfile.mkdtemp(prefix="igsync-pg-"))
    data, log = root / "data", root / "server.log"
    try:
        if prefix:
            shutil.chown(root, user="postgres", group="postgres")

        def run(*args: str) -> None:
            done = subprocess.run(
                [*prefix, *args], capture_output=True, text=True, check=False, cwd=root
            )
            if done.returncode != 0:
                server_log = log.read_text() if log.exists() else ""
                raise RuntimeError(
                    f"{' '.join(args[:2])} failed ({done.returncode}):\n"
                    f"{done.stdout}{done.stderr}{server_log}"
                )

        run(
            str(bindir / "initdb"),
            *("-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
            *("--locale=C", "--no-sync", "--no-instructions"),
        )
        port = free_port()
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={port}",
            f"-c unix_socket_directories={root}",
            *(f"-c {name}={value}" for name, value in settings.items()),
        ]
        pg_ctl = str(bindir / "pg_ctl")

        def ctl(action: str, *args: str) -> None:
            run(pg_ctl, action, "-D", str(data), *args)

        control = ServerControl(
            f"postgresql://postgres@127.0.0.1:{port}/postgres",
            ctl,
            ["-l", str(log), "-o", " ".join(options)],
        )
        control.start()
        try:
            yield control
        finally:
            if control.running:
                control.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_server(settings: Mapping[str, str] = TEST_SETTINGS) -> Iterator[str]:
    """Start a private server and yield `postgresql://postgres@127.0.0.1:PORT/postgres`."""
    with stoppable_postgres_server(settings) as server:
        yield server.url


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    return urlsplit(url)._replace(path=f"/{dbname}").geturl()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Create an empty database, yield its URL, drop it (and any connection left on it)."""
    name = f"igsync_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@contextmanager
def with_role(url: str) -> Iterator[tuple[str, str]]:
    """A new login role with a password and no privileges; yields (its URL, its name).

    Roles are cluster-wide: it is dropped afterwards (drop what it owns or was granted in each
    database first, with `drop owned by`).
    """
    role = f"igsync_role_{uuid.uuid4().hex[:12]}"
    password = f"pw-{secrets.token_hex(12)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("create role {} login password {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    try:
        parts = urlsplit(url)
        netloc = f"{role}:{password}@{parts.hostname}:{parts.port or 5432}"
        yield parts._replace(netloc=netloc).geturl(), role
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


@contextmanager
def login_role(url: str, *grants: str) -> Iterator[str]:
    """A login role without ownership or CREATE rights (plus `grants`, SQL with `{role}` for
    its name): a cron's role. Yields its URL."""
    with with_role(url) as (role_url, role):
        with psycopg.connect(url, autocommit=True) as conn:
            for grant in grants:
                conn.execute(sql.SQL(grant).format(role=sql.Identifier(role)))
        try:
            yield role_url
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))


# --- the pytest plugin (tests/conftest.py: pytest_plugins = ["postgres_server"]) ---


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required when CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A running PostgreSQL server for the whole session (its `postgres` database)."""
    if url := os.environ.get(URL_ENV):
        yield url
        return
    try:
        find_bindir()
        _run_as()
    except PostgresUnavailableError as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:
        _unavailable(reason)
    with postgres_server() as url:
        yield url


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A brand-new, empty database for one test."""
    with fresh_database(postgres_url) as url:
        yield url
