"""`igsync export`: every stream in every format reads back as exactly the rows the store holds,
with their types, on SQLite and on a real PostgreSQL server; the store is filled by a real sync
of every stream against the in-process simulator.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli_runner import run_cli
from igsync.config import DEFAULT_GRAPH_VERSION
from igsync.export import EXPORT_FORMATS, RowFilter, atomic_output, export_rows
from igsync.graph import GraphClient
from igsync.models import Account
from igsync.simulator import SimAccount, Simulator
from igsync.store import Store, open_store
from igsync.store.tables import AUDIENCE, INSIGHTS, MEDIA, MEDIA_INSIGHTS
from igsync.sync import RunContext, sync_account
from igsync.window import plan_window

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNTS = {"17841400000000011": "America/Los_Angeles", "17841400000000012": "Asia/Kolkata"}
JOINED = (
    "u_id",
    "account_id",
    "media_id",
    "media_type",
    "media_product_type",
    "timestamp",
    "permalink",
    "like_count",
    "comments_count",
    "metric",
    "captured_on",
    "value",
    "value_json",
)
KINDS = {
    **dict(INSIGHTS.columns),
    **dict(AUDIENCE.columns),
    **dict(MEDIA.columns),
    **dict(MEDIA_INSIGHTS.columns),
}
ARROW = {
    "uuid": pa.string(),
    "text": pa.string(),
    "date": pa.date32(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "int8": pa.int64(),
    "jsonb": pa.string(),
}


def user_of(account_id: str) -> UUID:
    return uuid5(UUID(int=0), account_id)


async def fill(store: Store) -> None:
    """A sync of every stream for two accounts in far-apart time zones, 5 days."""
    sim = Simulator([SimAccount(a, tz=tz) for a, tz in ACCOUNTS.items()], now=lambda: NOW)
    async with GraphClient(
        base_url="https://graph.facebook.com",
        instagram_url="https://graph.instagram.com",
        version=DEFAULT_GRAPH_VERSION,
        transport=sim.transport(),
    ) as graph:
        ctx = RunContext.create(
            graph,
            store,
            plan=plan_window(NOW, days=5),
            streams=["account", "audience", "media", "stories"],
            now=NOW,
        )
        for account_id in ACCOUNTS:
            account = Account(user_of(account_id), account_id, f"EAAJ-export-{account_id}")
            result = await sync_account(ctx, account)
            assert result.success, result.errors


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'igsync.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    async with open_store(url) as opened:
        await fill(opened)
        yield opened


async def stored(store: Store, stream: str) -> list[dict[str, Any]]:
    """The store's rows of `stream`, read with the plain (non-streaming) reads."""
    if stream == "account":
        return [r.model_dump() for r in await store.read_insights()]
    if stream == "audience":
        return [r.model_dump() for r in await store.read_audience()]
    media = {m.key: m for m in await store.read_media()}
    found = []
    for snapshot in await store.read_media_insights():
        obj = media.get(snapshot.key[:3])
        assert obj is not None, "every snapshot has its media object"
        if (obj.media_product_type == "STORY") == (stream == "stories"):
            found.append({**obj.model_dump(), **snapshot.model_dump()})
    return found


def typed(name: str, value: Any) -> Any:
    """A value read back from CSV or NDJSON text as the type its column holds."""
    kind = KINDS.get(name, "int8")  # a wide metric column holds values
    if value is None or value == "":
        return None
    if kind == "uuid":
        return UUID(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "timestamptz":
        stamp = datetime.fromisoformat(value)
        assert stamp.utcoffset() == timedelta(0), "written in UTC"
        return stamp
    if kind == "int8":
        return int(value)
    if kind == "jsonb" and isinstance(value, str):
        return json.loads(value)
    return value


def read_back(fmt: str, data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows with typed values) of an export, read with the format's own reader."""
    if fmt == "csv":
        assert b"\r\n" in data, "RFC 4180 ends records with CRLF"
        reader = csv.DictReader(io.StringIO(data.decode(), newline=""))
        rows = [{k: typed(k, v) for k, v in r.items()} for r in reader]
        return list(reader.fieldnames or []), rows
    if fmt == "ndjson":
        lines = [json.loads(line) for line in data.decode().splitlines()]
        assert all(isinstance(v, int) or v is None for r in lines for v in [r.get("value")])
        return (list(lines[0]) if lines else []), [
            {k: typed(k, v) for k, v in r.items()} for r in lines
        ]
    table = pq.read_table(io.BytesIO(data))
    for field in table.schema:
        kind = KINDS.get(field.name, "int8")  # a wide metric column holds values
        assert field.type == ARROW[kind], (field.name, field.type)
    return table.column_names, [
        {k: arrow_value(k, v) for k, v in r.items()} for r in table.to_pylist()
    ]


def arrow_value(name: str, value: Any) -> Any:
    """A Parquet value as the store's: uuids and JSON were written as their text."""
    kind = KINDS.get(name)
    if value is None or kind not in ("uuid", "jsonb", "timestamptz"):
        return value
    if kind == "timestamptz":
        assert value.utcoffset() == timedelta(0), "read back in UTC"
        return value.astimezone(UTC)  # pyarrow's zoneinfo UTC, as datetime's own UTC
    return UUID(value) if kind == "uuid" else json.loads(value)


def as_bag(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Counter[str]:
    return Counter(repr(tuple(r[c] for c in columns)) for r in rows)


async def export(store: Store, stream: Any, fmt: Any, **options: Any) -> bytes:
    out = io.BytesIO()
    await export_rows(store, stream, fmt, out, **options)
    return out.getvalue()


async def test_every_stream_round_trips_in_every_format_with_types_intact(store: Store) -> None:
    await round_trip(store)


async def test_export_from_supabase_pages_through_postgrest(supabase_store: Store) -> None:
    await fill(supabase_store)
    await round_trip(supabase_store)


async def round_trip(store: Store) -> None:
    columns = {
        "account": INSIGHTS.names,
        "audience": AUDIENCE.names,
        "media": JOINED,
        "stories": JOINED,
    }
    for stream, names in columns.items():
        expected = await stored(store, stream)
        assert len(expected) > 10, stream
        for fmt in EXPORT_FORMATS:
            header, rows = read_back(fmt, await export(store, stream, fmt))
            assert tuple(header) == names, (stream, fmt)
            assert as_bag(rows, names) == as_bag(expected, names), (stream, fmt)
    # nulls stay null: the media export holds a story-less object without comments_count…
    _, stories = read_back("parquet", await export(store, "stories", "parquet"))
    assert any(r["comments_count"] is None for r in stories)
    # …and value_json its breakdowns, as JSON
    _, account = read_back("ndjson", await export(store, "account", "ndjson"))
    hourly = [r for r in account if r["metric"] == "online_followers"]
    assert hourly
    assert all(len(r["value_json"]) == 24 for r in hourly)


async def test_user_and_local_dates_select_the_rows(store: Store) -> None:
    user = user_of("17841400000000012")
    first, last = date(2026, 11, 22), date(2026, 11, 23)
    rows = RowFilter(u_id=user, since=first, until=last)
    _, found = read_back("csv", await export(store, "account", "csv", rows=rows))
    expected = [
        r
        for r in await stored(store, "account")
        if r["u_id"] == user and r["local_date"] and first <= r["local_date"] <= last
    ]
    assert len(expected) >= 8
    assert as_bag(found, INSIGHTS.names) == as_bag(expected, INSIGHTS.names)
    _, media = read_back("csv", await export(store, "media", "csv", rows=RowFilter(u_id=user)))
    assert media
    assert {r["u_id"] for r in media} == {user}


async def test_wide_has_one_row_per_key_and_a_column_per_metric(store: Store) -> None:
    expected: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(dict)
    for r in await stored(store, "account"):
        if r["local_date"] is not None:
            expected[(r["u_id"], r["account_id"], r["local_date"])][r["metric"]] = r["value"]
    metrics = sorted({m for cells in expected.values() for m in cells})
    for fmt in EXPORT_FORMATS:
        header, rows = read_back(fmt, await export(store, "account", fmt, wide=True))
        assert header == ["u_id", "account_id", "local_date", *metrics]
        got = {(r["u_id"], r["account_id"], r["local_date"]): r for r in rows}
        assert len(got) == len(rows) == len(expected)
        for key, cells in expected.items():
            assert {m: got[key][m] for m in metrics} == {m: cells.get(m) for m in metrics}

    snapshots: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(dict)
    for r in await stored(store, "media"):
        snapshots[(r["media_id"], r["captured_on"])][r["metric"]] = r["value"]
    _, rows = read_back("parquet", await export(store, "media", "parquet", wide=True))
    assert len(rows) == len(snapshots)
    for r in rows:
        cells = snapshots[(r["media_id"], r["captured_on"])]
        assert all(r[m] == v for m, v in cells.items())
        assert r["media_product_type"] != "STORY"
        assert r["permalink"]


async def test_an_empty_selection_is_a_header_or_an_empty_table(store: Store) -> None:
    nobody = RowFilter(u_id=UUID(int=1))
    assert (await export(store, "audience", "csv", rows=nobody)).decode().count("\r\n") == 1
    assert await export(store, "audience", "ndjson", rows=nobody) == b""
    table = pq.read_table(io.BytesIO(await export(store, "media", "parquet", rows=nobody)))
    assert table.num_rows == 0
    assert table.column_names == list(JOINED)


def test_a_failed_output_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")

    def fail_halfway() -> None:
        with atomic_output(target) as file:
            file.write(b"half an export")
            raise RuntimeError("the store failed")

    with pytest.raises(RuntimeError):
        fail_halfway()
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with atomic_output(target) as file:
        file.write(b"new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_an_output_keeps_the_mode_and_the_symlink_of_the_file_it_replaces(
    tmp_path: Path,
) -> None:
    private = tmp_path / "private.csv"
    private.write_text("old\n")
    private.chmod(0o600)  # an export of user ids and figures someone kept to themselves
    with atomic_output(private) as file:
        file.write(b"new\n")
    assert (private.read_text(), private.stat().st_mode & 0o777) == ("new\n", 0o600)

    real = tmp_path / "exports" / "latest.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    with atomic_output(link) as file:
        file.write(b"new\n")
    assert link.is_symlink()  # still the link, now to the new export
    assert real.read_text() == "new\n"
    assert sorted(p.name for p in real.parent.iterdir()) == ["latest.csv"]  # no temporary

    previous = os.umask(0o077)  # a user who keeps new files to themselves
    try:
        fresh = tmp_path / "fresh.csv"
        with atomic_output(fresh) as file:
            file.write(b"x\n")
    finally:
        os.umask(previous)
    assert fresh.stat().st_mode & 0o777 == 0o600


def test_an_output_that_is_a_pipe_is_written_into_not_replaced(tmp_path: Path) -> None:
    """/dev/stdout, `>(gzip > x.gz)` and named pipes are no files to rename over: as root,
    `export -o /dev/stderr 2>/dev/null` once put a regular file where /dev/null was."""
    import threading

    fifo = tmp_path / "export.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    with atomic_output(fifo) as file:
        file.write(b"a,b\n1,2\n")
    reader.join(timeout=10)
    assert received == [b"a,b\n1,2\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the pipe
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.fifo"]  # no temporary


@pytest.fixture
def filled_db(tmp_path: Path) -> Path:
    """A SQLite database holding `fill`'s rows, for the command-line tests."""
    import anyio

    db = tmp_path / "igsync.db"

    async def filled() -> None:
        async with open_store(f"sqlite:///{db}") as opened:
            await fill(opened)

    anyio.run(filled)
    return db


def test_an_output_never_replaces_the_database_it_reads(
    tmp_path: Path,
    filled_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = filled_db
    before = db.read_bytes()
    (tmp_path / "link.db").symlink_to(db)
    monkeypatch.chdir(tmp_path)
    for args in (
        ("export", "--output", "igsync.db"),
        ("export", "--output", "igsync.db-wal"),  # a part of it: SQLite would remove or misread it
        ("export", "--output", str(tmp_path / "link.db")),  # the same file by another name
        ("report", "--html", "./igsync.db"),
    ):
        code, out, err = run_cli(monkeypatch, capsys, "--db", f"sqlite:///{db}", *args)
        assert (code, out) == (2, ""), err
        assert err.count("\n") == 1
        assert "is the database igsync reads from" in err
    assert db.read_bytes() == before


def test_an_output_of_dash_is_stdout_as_unix_tools_have_it(
    tmp_path: Path,
    filled_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = filled_db
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "--db", f"sqlite:///{db}", "export", "-o", "-")
    assert (code, err) == (0, "")
    assert out.startswith("u_id,")  # the CSV header, on stdout
    assert not (tmp_path / "-").exists()
    code, out, err = run_cli(monkeypatch, capsys, "--db", f"sqlite:///{db}", "export", "-o", "./-")
    assert (code, out, err) == (0, "", "")
    assert (tmp_path / "-").read_text().startswith("u_id,")  # ./- is a file of that name


def test_cli_writes_the_file_and_says_so_in_json(
    tmp_path: Path,
    filled_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = filled_db
    target = tmp_path / "audience.parquet"
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        *("--db", f"sqlite:///{db}", "export", "--stream", "audience", "--format", "parquet"),
        *("--output", str(target), "--json", "--since", "2026-11-25"),
    )
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["rows"] == pq.read_table(target).num_rows > 0
    assert summary["output"] == str(target)

    code, out, err = run_cli(monkeypatch, capsys, "--db", f"sqlite:///{db}", "export", "--json")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "--output" in err


@pytest.mark.e2e
def test_a_reader_that_stops_reading_ends_the_export_without_a_traceback(tmp_path: Path) -> None:
    import subprocess

    import anyio

    from igsync.models import InsightRow

    db = tmp_path / "igsync.db"
    user = user_of("17841400000000011")
    start = datetime(2020, 1, 1, 8, tzinfo=UTC)
    rows = [
        InsightRow(
            u_id=user,
            account_id="17841400000000011",
            metric="reach",
            metric_type="time_series",
            period="day",
            end_time=start + timedelta(days=i),
            value=i,
        )
        for i in range(5000)  # far more than a pipe holds
    ]

    async def filled() -> None:
        async with open_store(f"sqlite:///{db}") as opened:
            await opened.upsert_insights(rows)

    anyio.run(filled)
    igsync = str(Path(sys.executable).parent / "igsync")
    with subprocess.Popen(
        [igsync, "--db", f"sqlite:///{db}", "export", "--format", "ndjson"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as export:
        assert export.stdout is not None
        assert export.stderr is not None
        first = json.loads(export.stdout.readline())
        export.stdout.close()  # as `| head -1` does
        err = export.stderr.read()
        code = export.wait(timeout=60)
    assert first["metric"] == "reach"
    assert (code, err) == (0, b"")


def test_parquet_without_pyarrow_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    target = tmp_path / "out.parquet"
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        *("--db", f"sqlite:///{tmp_path / 'igsync.db'}", "export", "--format", "parquet"),
        *("--output", str(target)),
    )
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "uv tool install '.[parquet]'" in err  # as README "Install" says
    assert not target.exists()
