"""Settings: the one place environment variables (and `.env`) are read (DESIGN.md §3)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from igsync.catalogue import parse_metric_list, parse_stream_list
from igsync.errors import ConfigError, InputError
from igsync.redact import register_secret

# Pinned; metric changes arrive with new versions (GRAPH_API.md §6). v27.0 is the newest Meta
# serves: introduced 2026-11-04 ("Introducing Graph API v27.0 and Marketing API v27.0",
# https://developers.facebook.com/blog/post/2026/11/04/introducing-graph-api-v27-and-marketing-api-v27/,
# and the versions table of https://developers.facebook.com/documentation/development/graph-api/changelog).
# Its highlights name no Instagram insights change; v21.0-v26.0 stay served (same table).
DEFAULT_GRAPH_VERSION = "v27.0"
#: the longest wait for one Graph answer a setting may ask, in seconds
MAX_HTTP_TIMEOUT = 600.0


class Settings(BaseSettings):
    """Field names are the variable names (case-insensitive); see README for each."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    igsync_database_url: str | None = None
    supabase_url: str | None = None
    supabase_key: SecretStr | None = None
    ig_account_id: str | None = None
    ig_long_token: SecretStr | None = None
    ig_app_id: str | None = None
    ig_app_secret: SecretStr | None = None
    ig_instagram_app_secret: SecretStr | None = None
    igsync_graph_url: str = "https://graph.facebook.com"
    igsync_instagram_url: str = "https://graph.instagram.com"
    igsync_graph_version: str = DEFAULT_GRAPH_VERSION
    igsync_metrics: str | None = None
    igsync_streams: str | None = None
    igsync_http_timeout: float = 30.0
    #: the PostgreSQL of the job queue (igsync.queue); None: the store's, if PostgreSQL
    igsync_queue_url: SecretStr | None = None

    @field_validator("igsync_graph_url", "igsync_instagram_url", "supabase_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        expected = f"expected an http(s) URL such as https://graph.facebook.com, got {value!r}"
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- raises on a port that is not a number in 0-65535
        except ValueError as error:
            raise ValueError(f"{expected} ({error})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
            raise ValueError(expected)
        return value.rstrip("/")

    @field_validator("igsync_graph_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.fullmatch(r"v\d+\.\d+", value):
            raise ValueError(f"expected a version such as {DEFAULT_GRAPH_VERSION}, got {value!r}")
        return value

    @field_validator("igsync_metrics")
    @classmethod
    def _metrics(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_metric_list(value)
            except InputError as error:  # pydantic reports a ValueError as this variable's error
                raise ValueError(str(error)) from None
        return value

    @field_validator("igsync_streams")
    @classmethod
    def _streams(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_stream_list(value)
            except InputError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("igsync_http_timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        # nan passes every comparison as false and inf waits for ever: both refused
        if not (math.isfinite(value) and 0 < value <= MAX_HTTP_TIMEOUT):
            raise ValueError(f"expected seconds, more than 0 and at most {MAX_HTTP_TIMEOUT:g}")
        return value

    @field_validator("ig_long_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        token = None if value is None else value.get_secret_value()
        if token is not None and not (token.isascii() and token.isprintable()):
            # no echo of the value: it is a secret, even when malformed
            raise ValueError("has characters no Meta token has (non-ASCII or control characters)")
        return value

    @field_validator("ig_account_id")
    @classmethod
    def _account_id(cls, value: str | None) -> str | None:
        if value is not None and not (value.isascii() and value.isdigit()):
            raise ValueError("expected the numeric Instagram business account id")
        return value

    @property
    def metrics(self) -> tuple[str, ...] | None:
        """IGSYNC_METRICS, checked; None: each stream's default set."""
        return None if self.igsync_metrics is None else parse_metric_list(self.igsync_metrics)

    @property
    def streams(self) -> tuple[str, ...] | None:
        """IGSYNC_STREAMS, checked; None: the streams of the metrics named, else the default."""
        return None if self.igsync_streams is None else parse_stream_list(self.igsync_streams)

    @property
    def has_supabase(self) -> bool:
        return bool(self.supabase_url and self.supabase_key)


def database_url(settings: Settings, override: str | None = None) -> str:
    """`--db`, else IGSYNC_DATABASE_URL, else Supabase when configured, else the SQLite file."""
    if override is not None:
        return _check_database_url(override, "--db")
    if settings.igsync_database_url:
        return _check_database_url(settings.igsync_database_url, "IGSYNC_DATABASE_URL")
    if settings.has_supabase:
        return "supabase"
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('igsync')) / 'igsync.db'}"


def _check_database_url(url: str, source: str) -> str:
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return url
    if url.startswith(("postgresql://", "postgres://")) or url == "supabase":
        return url
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ConfigError(
        f"{source}: unsupported database URL {scheme!r}; "
        "use sqlite:///path.db, postgresql://user@host/db or supabase"
    )


def _check_env_file(env_file: Path | str | None) -> None:
    if env_file is None:
        return
    path = Path(env_file)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a settings file; remove or rename it")
    try:
        path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return  # no .env is the common case: the environment alone
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read it ({exc.strerror}); fix its permissions or remove it"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def load_settings(env_file: Path | str | None = ".env") -> Settings:
    """Read env (and `.env`); a bad value becomes one ConfigError naming the variable.

    Raises ConfigError as well for a `.env` that is a directory, unreadable, or not UTF-8:
    pydantic-settings would raise a traceback for the last two and ignore the first.
    """
    _check_env_file(env_file)
    try:
        settings = Settings(_env_file=env_file)
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper() if first["loc"] else "configuration"
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{variable}: {reason}") from None
    for secret in (
        settings.ig_long_token,
        settings.ig_app_secret,
        settings.ig_instagram_app_secret,
        settings.supabase_key,
    ):
        if secret is not None:
            register_secret(secret.get_secret_value())
    return settings
