"""Every bad input a user can give, as a table (issue 11, item 2): each command, option,
environment variable and settings file.

Each row is argv, environment, files in the working directory and standard input; each must end
with exit code 2, nothing on stdout, and exactly one non-empty line on stderr that names what
was wrong (the option, the variable or the file), never a traceback. Run in-process through
`main()` (tests/cli_runner.py), against an empty SQLite file in a temporary directory; none of
these rows reaches the Graph API (IGSYNC_GRAPH_URL points at a closed port to make sure).
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli_runner import run_cli
from igsync.token_shape import token_shaped

USER = "00000000-0000-4000-8000-00000000a11c"
TOKEN = "EAAGbadinputtesttoken0123456789abcdefABCDEF"
YESTERDAY = "2020-01-01T00:00:00Z"
#: every variable igsync reads: unset unless a row sets it
VARIABLES = (
    "IGSYNC_DATABASE_URL",
    "SUPABASE_URL",
    "SUPABASE_KEY",
    "IG_ACCOUNT_ID",
    "IG_LONG_TOKEN",
    "IG_APP_ID",
    "IG_APP_SECRET",
    "IG_INSTAGRAM_APP_SECRET",
    "IGSYNC_GRAPH_URL",
    "IGSYNC_INSTAGRAM_URL",
    "IGSYNC_GRAPH_VERSION",
    "IGSYNC_METRICS",
    "IGSYNC_STREAMS",
    "IGSYNC_HTTP_TIMEOUT",
    "IGSYNC_TOKEN_KEYS",
)


@dataclass(frozen=True)
class Bad:
    """One bad input and the word its error line must contain."""

    name: str
    argv: tuple[str, ...]
    names: str
    env: dict[str, str] = field(default_factory=dict)
    #: path (relative to the working directory) -> bytes; a None value makes a directory
    files: dict[str, bytes | None] = field(default_factory=dict)
    stdin: str = ""


ADD = ("accounts", "add", "--user", USER, "--account-id", "17841400000000001")
FETCH = ("fetch", "--user", USER)
LIST = ("accounts", "list")

ROWS = [
    # --- environment variables (read by every command that loads settings) ---
    Bad("timeout_nan", LIST, "IGSYNC_HTTP_TIMEOUT", env={"IGSYNC_HTTP_TIMEOUT": "nan"}),
    Bad("timeout_inf", LIST, "IGSYNC_HTTP_TIMEOUT", env={"IGSYNC_HTTP_TIMEOUT": "inf"}),
    Bad("timeout_zero", LIST, "IGSYNC_HTTP_TIMEOUT", env={"IGSYNC_HTTP_TIMEOUT": "0"}),
    Bad("timeout_words", LIST, "IGSYNC_HTTP_TIMEOUT", env={"IGSYNC_HTTP_TIMEOUT": "ten"}),
    Bad("timeout_huge", LIST, "IGSYNC_HTTP_TIMEOUT", env={"IGSYNC_HTTP_TIMEOUT": "1e309"}),
    Bad("graph_url_ftp", LIST, "IGSYNC_GRAPH_URL", env={"IGSYNC_GRAPH_URL": "ftp://graph"}),
    Bad("graph_url_port", LIST, "IGSYNC_GRAPH_URL", env={"IGSYNC_GRAPH_URL": "http://h:99999"}),
    Bad("instagram_url_words", LIST, "IGSYNC_INSTAGRAM_URL", env={"IGSYNC_INSTAGRAM_URL": "a b"}),
    Bad("supabase_url_bare", LIST, "SUPABASE_URL", env={"SUPABASE_URL": "x.supabase.co"}),
    Bad("graph_version", LIST, "IGSYNC_GRAPH_VERSION", env={"IGSYNC_GRAPH_VERSION": "27"}),
    Bad("metrics_retired", LIST, "IGSYNC_METRICS", env={"IGSYNC_METRICS": "impressions"}),
    Bad("metrics_unknown", LIST, "IGSYNC_METRICS", env={"IGSYNC_METRICS": "reach,bogus"}),
    Bad("metrics_newline", LIST, "IGSYNC_METRICS", env={"IGSYNC_METRICS": "re\nach"}),
    Bad("metrics_empty_list", LIST, "IGSYNC_METRICS", env={"IGSYNC_METRICS": " , "}),
    Bad("streams_unknown", LIST, "IGSYNC_STREAMS", env={"IGSYNC_STREAMS": "video"}),
    Bad("account_id_path", LIST, "IG_ACCOUNT_ID", env={"IG_ACCOUNT_ID": "../../me"}),
    Bad("long_token_newline", LIST, "IG_LONG_TOKEN", env={"IG_LONG_TOKEN": "EAAG\nsecret"}),
    Bad(
        "database_url_mysql", LIST, "IGSYNC_DATABASE_URL", env={"IGSYNC_DATABASE_URL": "mysql://h"}
    ),
    Bad("database_url_bare", LIST, "IGSYNC_DATABASE_URL", env={"IGSYNC_DATABASE_URL": "sqlite://"}),
    Bad(
        "supabase_without_key",
        LIST,
        "SUPABASE_URL and SUPABASE_KEY",
        env={"IGSYNC_DATABASE_URL": "supabase"},
    ),
    Bad("token_keys_not_fernet", LIST, "IGSYNC_TOKEN_KEYS", env={"IGSYNC_TOKEN_KEYS": "k1,k2"}),
    # --- the store named cannot be opened: a configuration error, before any work ---
    Bad(
        "postgres_refused",
        ("--db", "postgresql://cron:pw-not-shown@127.0.0.1:9/igsync", *LIST),
        "--db or IGSYNC_DATABASE_URL",
    ),
    Bad(
        "sqlite_under_a_file",
        LIST,
        "IGSYNC_DATABASE_URL",
        env={"IGSYNC_DATABASE_URL": "sqlite:///a-file/igsync.db"},
        files={"a-file": b""},
    ),
    Bad("list_no_database", LIST, "no SQLite database at"),
    # --- the settings file ---
    Bad("dotenv_not_utf8", LIST, ".env", files={".env": b"IG_APP_ID=\xff\xfe1\n"}),
    Bad("dotenv_directory", LIST, ".env", files={".env": None}),
    Bad(
        "dotenv_bad_value",
        LIST,
        "/.env): expected seconds",  # IGSYNC_HTTP_TIMEOUT (in the file that set it)
        files={".env": b"IGSYNC_HTTP_TIMEOUT=nan\n"},
    ),
    Bad("dotenv_unparsable_line", LIST, ".env, line 2", files={".env": b"A=1\nnot a line\n"}),
    Bad(
        "dotenv_unclosed_quote",
        LIST,
        ".env, line 1",
        files={".env": f'IG_LONG_TOKEN="{TOKEN}\n'.encode()},  # the token is not shown
    ),
    # --- global options ---
    Bad("db_mysql", ("--db", "mysql://h/db", *LIST), "--db"),
    Bad("db_bare_sqlite_schema", ("--db", "sqlite", "db", "schema"), "--db"),
    Bad("db_sqlite_two_slashes", ("--db", "sqlite://rel.db", *LIST), "three slashes"),
    # libpq would quote what follows an unencoded @ as the host: part of the password
    Bad(
        "db_password_unencoded_at",
        ("--db", "postgresql://cron:pw-not-shown@x@127.0.0.1:9/igsync", *LIST),
        "percent-encode",
    ),
    Bad(
        "db_password_bare_percent",
        ("--db", "postgresql://cron:pw-not-shown%zz@127.0.0.1:9/igsync", *LIST),
        "percent-encode",
    ),
    Bad(
        "queue_url_not_postgres",
        ("sync-all", "--enqueue"),
        "IGSYNC_QUEUE_URL must be a postgresql:// URL",
        env={
            "IGSYNC_DATABASE_URL": "postgresql://cron@127.0.0.1:9/igsync",
            "IGSYNC_QUEUE_URL": "mysql://q@127.0.0.1/queue",
        },
    ),
    Bad("unknown_command", ("bogus",), "bogus"),
    Bad("unknown_option", ("metrics", "--colour"), "--colour"),
    # --- fetch ---
    Bad("fetch_no_user", ("fetch",), "--user"),
    Bad("fetch_user_not_uuid", ("fetch", "--user", "alice"), "--user"),
    Bad("fetch_days_zero", (*FETCH, "--days", "0"), "--days"),
    Bad("fetch_days_beyond_lookback", (*FETCH, "--days", "100000"), "--days"),
    Bad("fetch_days_words", (*FETCH, "--days", "three"), "--days"),
    Bad("fetch_since_no_such_day", (*FETCH, "--since", "2026-11-31"), "--since"),
    Bad("fetch_since_short_year", (*FETCH, "--since", "26-11-01"), "--since"),
    Bad("fetch_since_beyond_lookback", (*FETCH, "--since", "2000-01-01"), "--since"),
    Bad("fetch_since_future", (*FETCH, "--since", "2099-01-01"), "--since"),
    Bad("fetch_until_alone", (*FETCH, "--until", "2026-11-20"), "--until"),
    Bad(
        "fetch_until_no_such_day",
        (*FETCH, "--since", "2026-11-01", "--until", "2026-02-30"),
        "--until",
    ),
    Bad(
        "fetch_until_before_since",
        (*FETCH, "--since", "2026-11-20", "--until", "2026-11-10"),
        "--until",
    ),
    Bad("fetch_days_and_since", (*FETCH, "--days", "3", "--since", "2026-11-01"), "--days"),
    Bad("fetch_metrics_retired", (*FETCH, "--metrics", "impressions"), "--metrics"),
    Bad("fetch_metrics_unknown", (*FETCH, "--metrics", "bogus"), "--metrics"),
    Bad("fetch_streams_unknown", (*FETCH, "--streams", "video"), "--streams"),
    Bad("fetch_account_id_path", (*FETCH, "--account-id", "../../me"), "--account-id"),
    # --- sync-all ---
    Bad("shard_zero", ("sync-all", "--shard", "0/3"), "--shard"),
    Bad("shard_words", ("sync-all", "--shard", "first"), "--shard"),
    Bad("shard_superscript", ("sync-all", "--shard", "¹/³"), "--shard"),
    Bad("concurrency_zero", ("sync-all", "--concurrency", "0"), "--concurrency"),
    Bad("sync_all_since_no_such_day", ("sync-all", "--since", "2026-02-29"), "--since"),
    # --- demo ---
    Bad("demo_accounts_zero", ("demo", "--accounts", "0"), "--accounts"),
    Bad("demo_days_too_many", ("demo", "--days", "30"), "--days"),
    # --- refresh-token ---
    Bad("refresh_neither", ("refresh-token",), "--all"),
    Bad("refresh_both", ("refresh-token", "--all", "--user", USER), "--user"),
    Bad(
        "refresh_within_unit",
        ("refresh-token", "--all", "--expiring-within", "7x"),
        "--expiring-within",
    ),
    Bad(
        "refresh_within_huge",
        ("refresh-token", "--all", "--expiring-within", "400d"),
        "--expiring-within",
    ),
    Bad(
        "refresh_within_zero",
        ("refresh-token", "--all", "--expiring-within", "0d"),
        "--expiring-within",
    ),
    # --- a token pasted as an option's value: refused, and never quoted back ---
    Bad(
        "token_as_account_id",
        ("accounts", "add", "--user", USER, "--account-id", TOKEN, "--token-stdin"),
        "--account-id",
        stdin=TOKEN,
    ),
    Bad("token_as_account_id_equals", (*FETCH, f"--account-id={TOKEN}"), "--account-id"),
    Bad("token_as_kind", (*ADD, "--kind", TOKEN, "--token-stdin"), "--kind", stdin=TOKEN),
    Bad("token_as_expires_at", (*ADD, "--expires-at", TOKEN, "--token-stdin"), "--expires-at"),
    Bad("token_as_db", ("--db", TOKEN, *LIST), "--db"),
    # --- accounts add (the token always on stdin) ---
    Bad("add_no_token_stdin", ADD, "--token-stdin", stdin=TOKEN),
    Bad(
        "add_account_id_words",
        ("accounts", "add", "--user", USER, "--account-id", "me", "--token-stdin"),
        "--account-id",
        stdin=TOKEN,
    ),
    Bad(
        "add_account_id_leading_zero",  # another account than 1784…, one Meta does not know
        ("accounts", "add", "--user", USER, "--account-id", "017841400000000001", "--token-stdin"),
        "not starting with 0",
        stdin=TOKEN,
    ),
    Bad(
        "add_user_not_uuid",
        ("accounts", "add", "--user", "1", "--account-id", "1", "--token-stdin"),
        "--user",
        stdin=TOKEN,
    ),
    Bad("add_empty_stdin", (*ADD, "--token-stdin"), "--token-stdin", stdin="\n"),
    Bad(
        "add_token_with_space",
        (*ADD, "--token-stdin"),
        "--token-stdin",
        stdin="EAAG abc def ghi jkl mno pqr stu vwx",
    ),
    Bad("add_token_too_short", (*ADD, "--token-stdin"), "--token-stdin", stdin="EAAGshort"),
    Bad("add_token_non_ascii", (*ADD, "--token-stdin"), "--token-stdin", stdin=TOKEN + "é"),
    Bad(
        "add_expires_past",
        (*ADD, "--token-stdin", "--expires-at", YESTERDAY),
        "--expires-at",
        stdin=TOKEN,
    ),
    Bad(
        "add_expires_overflow",
        (*ADD, "--token-stdin", "--expires-at", "0001-01-01T00:00:00+14:00"),
        "--expires-at",
        stdin=TOKEN,
    ),
    Bad(
        "add_expires_words",
        (*ADD, "--token-stdin", "--expires-at", "next tuesday"),
        "--expires-at",
        stdin=TOKEN,
    ),
    Bad(
        "add_kind_contradicts",
        (*ADD, "--token-stdin", "--kind", "instagram_login"),
        "--kind",
        stdin=TOKEN,
    ),
    Bad("add_kind_unknown", (*ADD, "--token-stdin", "--kind", "tiktok"), "--kind", stdin=TOKEN),
    Bad("add_token_as_argument", (*ADD, TOKEN), "tokens go on stdin"),
    # --- accounts remove, rekey ---
    # an empty file is an empty SQLite database: remove only reads a missing one (exit 2)
    Bad(
        "remove_nothing_stored",
        ("accounts", "remove", "--user", USER),
        USER,
        files={"igsync.db": b""},
    ),
    Bad("remove_no_database", ("accounts", "remove", "--user", USER), "no SQLite database at"),
    Bad(
        "rekey_without_keys",
        ("accounts", "rekey"),
        "IGSYNC_TOKEN_KEYS",
        files={"igsync.db": b""},  # SQLite takes an empty file for an empty database
    ),
    # --- report ---
    Bad("export_since_month_13", ("export", "--since", "2026-13-01"), "not a day of the calendar"),
    Bad("export_until_words", ("export", "--until", "yesterday"), "--until: expected a date"),
    Bad(
        "export_since_after_until",
        ("export", "--since", "2026-11-10", "--until", "2026-11-01"),
        "--since 2026-11-10 is after --until 2026-11-01",
    ),
    Bad("quiet_and_verbose", ("-q", "metrics", "-v"), "-q/--quiet and -v/--verbose"),
    Bad("report_html_no_dir", ("report", "--html", "no-dir/x.html"), "--html no-dir/x.html"),
    Bad("report_stream_unknown", ("report", "--streams", "bogus"), "--streams: unknown stream"),
    # --- db ---
    Bad("schema_migration_unknown", ("db", "schema", "--migration", "99"), "--migration"),
    Bad("schema_migration_zero", ("db", "schema", "--migration", "0"), "--migration"),
    Bad("schema_dialect_unknown", ("db", "schema", "--dialect", "mysql"), "--dialect"),
    # igsync's own options after the command: said where they go, not "No such option"
    Bad(
        "db_after_command",
        ("sync-all", "--db", "sqlite:///x.db"),
        "--db is an option of igsync itself, not of sync-all: put it before the command,"
        " as in `igsync --db URL sync-all …`",
    ),
    Bad(
        "log_format_after_subcommand",
        ("accounts", "list", "--log-format", "json"),
        "as in `igsync --log-format <text|json> accounts list …`",
    ),
]


@pytest.mark.parametrize(
    ("argument", "shaped"),
    [
        (TOKEN, True),
        ("IGAA" + "x1_-" * 10, True),
        (TOKEN[:31], False),  # shorter than any token igsync accepts
        ("IGexports-2026-11-30/accounts.csv" + "x" * 10, False),  # a path
        (f"sqlite:///{TOKEN}.db", False),
        ("17841400000000001", False),
        (USER, False),
    ],
)
def test_only_a_token_shaped_argument_is_masked(argument: str, shaped: bool) -> None:
    assert token_shaped(argument) is shaped


def test_the_table_is_at_least_forty_rows_with_unique_names() -> None:
    assert len(ROWS) >= 40
    assert len({row.name for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("bad", ROWS, ids=lambda bad: bad.name)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    bad: Bad,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IGSYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'igsync.db'}")
    monkeypatch.setenv("IGSYNC_GRAPH_URL", "http://127.0.0.1:9")  # discard: nothing answers
    monkeypatch.setenv("IGSYNC_INSTAGRAM_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "300")
    for name, value in bad.env.items():
        monkeypatch.setenv(name, value)
    for relative, content in bad.files.items():
        path = tmp_path / relative
        if content is None:
            path.mkdir()
        else:
            path.write_bytes(content)
    monkeypatch.setattr(sys, "stdin", io.StringIO(bad.stdin))

    code, out, err = run_cli(monkeypatch, capsys, *bad.argv)

    lines = err.splitlines()
    assert code == 2, err
    assert out == ""
    assert len(lines) == 1, err
    assert lines[0].startswith("igsync: error: ")
    assert bad.names in lines[0]
    assert "Traceback" not in err
    assert TOKEN not in err  # a token given in the wrong place is never echoed
    assert "pw-not-shown" not in err
