"""Where settings come from (issue 12): flags > environment > --env-file / IGSYNC_ENV_FILE >
./.env > the user config file > defaults; a named file that is missing and a half-set Supabase
configuration are errors, never a silent run on defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import run_cli
from igsync.config import database_url, load_settings, resolve_sources, user_config_file
from igsync.errors import ConfigError

VARIABLES = (
    "IGSYNC_DATABASE_URL",
    "SUPABASE_URL",
    "SUPABASE_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_ANON_KEY",
    "IGSYNC_METRICS",
    "IGSYNC_HTTP_TIMEOUT",
    "IG_APP_ID",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")


def write(path: Path, **values: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_the_user_config_file_is_igsync_env_in_the_platform_config_dir(tmp_path: Path) -> None:
    assert user_config_file() == tmp_path / "config" / "igsync" / "igsync.env"


def test_each_layer_beats_the_ones_below_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Each file sets the variables of its own layer and of every layer below it.
    write(user_config_file(), IGSYNC_METRICS="reach", IGSYNC_HTTP_TIMEOUT="11", IG_APP_ID="1")
    write(Path(".env"), IGSYNC_METRICS="views", IGSYNC_HTTP_TIMEOUT="12")
    named = write(tmp_path / "cron.env", IGSYNC_METRICS="profile_views")
    monkeypatch.setenv("IGSYNC_DATABASE_URL", "sqlite:///from-env.db")

    sources = resolve_sources(str(named))
    settings = load_settings(sources=sources)
    assert settings.igsync_database_url == "sqlite:///from-env.db"  # environment
    assert settings.metrics == ("profile_views",)  # --env-file
    assert settings.igsync_http_timeout == 12  # ./.env
    assert settings.ig_app_id == "1"  # user config
    assert settings.igsync_graph_version == "v27.0"  # default
    assert sources.origin_of("IGSYNC_DATABASE_URL") == "environment"
    assert sources.origin_of("igsync_metrics") == f"--env-file {named}"
    assert sources.origin_of("IGSYNC_HTTP_TIMEOUT") == f".env {Path('.env').resolve()}"
    assert sources.origin_of("IG_APP_ID") == f"user config {user_config_file()}"
    assert sources.origin_of("IGSYNC_GRAPH_VERSION") == "default"
    # and a flag beats them all
    assert database_url(settings, "sqlite:///flag.db") == "sqlite:///flag.db"


def test_igsync_env_file_names_the_file_when_no_flag_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    named = write(tmp_path / "a.env", IGSYNC_METRICS="views")
    flagged = write(tmp_path / "b.env", IGSYNC_METRICS="reach")
    monkeypatch.setenv("IGSYNC_ENV_FILE", str(named))
    assert load_settings(sources=resolve_sources()).metrics == ("views",)
    assert resolve_sources().origin_of("IGSYNC_METRICS") == f"IGSYNC_ENV_FILE {named}"
    assert load_settings(sources=resolve_sources(str(flagged))).metrics == ("reach",)


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_a_named_settings_file_that_is_missing_is_exit_2_for_every_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    if how == "flag":
        args = ("--env-file", "/nowhere/igsync.env", "metrics")
        named = "--env-file /nowhere/igsync.env"
    else:
        monkeypatch.setenv("IGSYNC_ENV_FILE", "/nowhere/igsync.env")
        args, named = ("metrics",), "IGSYNC_ENV_FILE /nowhere/igsync.env"
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert (code, out) == (2, "")
    assert err == (
        f"igsync: error: {named}: no such file; give the path of an existing settings file"
        " (dotenv format: one VARIABLE=value a line)\n"
    )


def test_env_file_lets_a_run_from_another_directory_find_its_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The cron case: the working directory's .env is not there, the named file is."""
    db = tmp_path / "accounts.db"
    assert run_cli(monkeypatch, capsys, "--db", f"sqlite:///{db}", "db", "init")[0] == 0
    settings_file = write(tmp_path / "etc" / "igsync.env", IGSYNC_DATABASE_URL=f"sqlite:///{db}")
    # `accounts list` only reads: the default database, which does not exist, would be exit 2
    code, out, err = run_cli(
        monkeypatch, capsys, "--env-file", str(settings_file), "accounts", "list", "--json"
    )
    assert (code, out, err) == (0, "[]\n", "")


def test_the_user_config_file_is_read_from_any_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "user.db"
    assert run_cli(monkeypatch, capsys, "--db", f"sqlite:///{db}", "db", "init")[0] == 0
    write(user_config_file(), IGSYNC_DATABASE_URL=f"sqlite:///{db}")
    # `accounts list` only reads: the default database, which does not exist, would be exit 2
    code, out, _ = run_cli(monkeypatch, capsys, "accounts", "list", "--json")
    assert (code, out) == (0, "[]\n")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"SUPABASE_URL": "https://abc.supabase.co"},
            "SUPABASE_URL is set but SUPABASE_KEY is not; set SUPABASE_KEY",
        ),
        (
            {"SUPABASE_KEY": "service-role-key-123456"},
            "SUPABASE_KEY is set but SUPABASE_URL is not; set SUPABASE_URL",
        ),
        (
            {
                "SUPABASE_URL": "https://abc.supabase.co",
                "SUPABASE_SERVICE_ROLE_KEY": "service-role-key-123456",
            },
            "SUPABASE_URL is set but SUPABASE_KEY is not (SUPABASE_SERVICE_ROLE_KEY is set, but"
            " igsync reads the key from SUPABASE_KEY)",
        ),
    ],
)
def test_a_half_set_supabase_configuration_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    values: dict[str, str],
    message: str,
) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        database_url(load_settings())
    code, out, err = run_cli(monkeypatch, capsys, "sync-all")
    assert (code, out) == (2, "")
    assert err.startswith(f"igsync: error: {message}")
    assert err.count("\n") == 1
    assert "service-role-key-123456" not in err
    assert not list(tmp_path.rglob("*.db"))  # no SQLite file was created instead
    # Named with IGSYNC_DATABASE_URL=supabase: the same error.
    monkeypatch.setenv("IGSYNC_DATABASE_URL", "supabase")
    with pytest.raises(ConfigError, match=r"^SUPABASE_"):
        database_url(load_settings())


def test_half_set_supabase_variables_do_not_matter_when_another_database_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")
    monkeypatch.setenv("IGSYNC_DATABASE_URL", "sqlite:///x.db")
    assert database_url(load_settings()) == "sqlite:///x.db"
    assert database_url(load_settings(), "postgresql://u@h/db") == "postgresql://u@h/db"
