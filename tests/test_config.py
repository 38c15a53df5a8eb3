from pathlib import Path

import pytest

from igsync.config import database_url, load_settings
from igsync.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "IGSYNC_DATABASE_URL",
        "SUPABASE_URL",
        "SUPABASE_KEY",
        "IG_ACCOUNT_ID",
        "IG_LONG_TOKEN",
        "IG_APP_ID",
        "IG_APP_SECRET",
        "IGSYNC_GRAPH_URL",
        "IGSYNC_GRAPH_VERSION",
        "IGSYNC_METRICS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_need_no_environment() -> None:
    settings = load_settings()
    assert settings.igsync_graph_url == "https://graph.facebook.com"
    assert settings.igsync_graph_version == "v27.0"
    assert settings.metrics is None  # each stream's default set
    assert settings.streams is None
    assert database_url(settings).startswith("sqlite:////")


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("IG_ACCOUNT_ID=17841400000000001\nIGSYNC_METRICS=reach,views\n")
    settings = load_settings()
    assert settings.ig_account_id == "17841400000000001"
    assert settings.metrics == ("reach", "views")


def test_supabase_is_the_default_store_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")
    monkeypatch.setenv("SUPABASE_KEY", "service-role-key-123456")
    assert database_url(load_settings()) == "supabase"


def test_db_option_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IGSYNC_DATABASE_URL", "sqlite:///env.db")
    settings = load_settings()
    assert database_url(settings) == "sqlite:///env.db"
    assert database_url(settings, "sqlite:///cli.db") == "sqlite:///cli.db"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IGSYNC_GRAPH_URL", "graph.facebook.com"),
        ("IGSYNC_GRAPH_URL", "http://127.0.0.1:notaport"),
        ("IGSYNC_GRAPH_URL", "http://127.0.0.1:99999"),
        ("IGSYNC_INSTAGRAM_URL", "ftp://graph.instagram.com"),
        ("SUPABASE_URL", "https://"),
        ("IGSYNC_GRAPH_VERSION", "24.0"),
        ("IGSYNC_METRICS", "reach,impressions"),
        ("IG_ACCOUNT_ID", "me"),
        ("IG_ACCOUNT_ID", "17841²"),
        ("IGSYNC_HTTP_TIMEOUT", "-1"),
        ("IGSYNC_HTTP_TIMEOUT", "soon"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"^{name}: "):
        load_settings()


def test_a_bad_value_from_a_settings_file_names_the_file_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("IGSYNC_HTTP_TIMEOUT=soon\n")
    with pytest.raises(ConfigError, match=r"^IGSYNC_HTTP_TIMEOUT \(in \.env\): "):
        load_settings()
    monkeypatch.setenv("IGSYNC_HTTP_TIMEOUT", "-1")  # the environment wins over the file
    with pytest.raises(ConfigError, match=r"^IGSYNC_HTTP_TIMEOUT: "):
        load_settings()


def test_an_unsupported_database_url_names_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IGSYNC_DATABASE_URL", "mysql://u:pw@h/db")
    with pytest.raises(ConfigError, match=r"^IGSYNC_DATABASE_URL: unsupported") as caught:
        database_url(load_settings())
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "example"),
    [
        ("IGSYNC_GRAPH_URL", "https://graph.facebook.com"),
        ("IGSYNC_INSTAGRAM_URL", "https://graph.instagram.com"),
        ("SUPABASE_URL", ".supabase.co"),
    ],
)
def test_a_url_that_is_no_url_is_refused_with_an_example_of_its_own_kind(
    monkeypatch: pytest.MonkeyPatch, name: str, example: str
) -> None:
    monkeypatch.setenv(name, "not a url")
    if name == "SUPABASE_URL":
        monkeypatch.setenv("SUPABASE_KEY", "a-key")
    with pytest.raises(ConfigError, match=f"^{name}: expected an http") as caught:
        load_settings()
    assert example in str(caught.value)


def test_a_non_ascii_ig_long_token_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "EAAG" + "x" * 40 + "é"
    monkeypatch.setenv("IG_LONG_TOKEN", token)
    with pytest.raises(ConfigError, match="IG_LONG_TOKEN: has characters no Meta token has") as e:
        load_settings()
    assert token not in str(e.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "601"])
def test_a_timeout_that_is_not_a_bounded_number_of_seconds_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("IGSYNC_HTTP_TIMEOUT", value)
    with pytest.raises(ConfigError, match=r"^IGSYNC_HTTP_TIMEOUT: expected seconds"):
        load_settings()


def test_an_env_file_that_cannot_be_read_is_one_clear_error(tmp_path: Path) -> None:
    latin = tmp_path / "latin.env"
    latin.write_bytes("IG_ACCOUNT_ID=1\nNOTE=caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte \d+\); save it as UTF-8"):
        load_settings(latin)
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path)
    assert load_settings(tmp_path / "missing.env").igsync_metrics is None  # none is fine
