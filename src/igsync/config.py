"""Settings: the one place environment variables (and settings files) are read (DESIGN.md §3).

Where a value comes from, highest precedence first (README "Configuration"):

1. a command-line flag (`--db`);
2. the environment;
3. the file named by `--env-file PATH`, else by `IGSYNC_ENV_FILE`;
4. `.env` in the working directory;
5. the user config file, `igsync.env` in the platform config dir (`~/.config/igsync/` on Linux);
6. the defaults.

The files share one format (dotenv, the variables' own names), so a working `.env` can be moved
to the user config file, or named by `--env-file`, unchanged: cron runs in `$HOME`, not in the
directory whose `.env` worked by hand.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr, ValidationError, ValidationInfo, field_validator
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


#: the example each URL setting's error gives
_URL_EXAMPLES = {
    "igsync_instagram_url": "https://graph.instagram.com",
    "supabase_url": "https://abcdefghijklmnop.supabase.co",
}


class Settings(BaseSettings):
    """Field names are the variable names (case-insensitive); see README for each."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    igsync_database_url: str | None = None
    supabase_url: str | None = None
    supabase_key: SecretStr | None = None
    # Look-alikes of SUPABASE_KEY that other tools read: only to name them when SUPABASE_KEY is
    # missing (a half-set Supabase configuration is an error, never a silent SQLite run).
    supabase_service_role_key: SecretStr | None = None
    supabase_service_key: SecretStr | None = None
    supabase_anon_key: SecretStr | None = None
    supabase_secret_key: SecretStr | None = None
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
    #: Fernet keys for tokens at rest, comma-separated (token_crypto.py); checked on load
    igsync_token_keys: SecretStr | None = None
    #: the PostgreSQL of the job queue (igsync.queue); None: the store's, if PostgreSQL
    igsync_queue_url: SecretStr | None = None

    @field_validator("igsync_graph_url", "igsync_instagram_url", "supabase_url")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        example = _URL_EXAMPLES.get(info.field_name or "", "https://graph.facebook.com")
        expected = f"expected an http(s) URL such as {example}, got {value!r}"
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

    def supabase_problem(self) -> str | None:
        """What is missing from a half-set Supabase configuration (None: unset or complete).

        SUPABASE_URL without SUPABASE_KEY names any look-alike key variable that is set
        (SUPABASE_SERVICE_ROLE_KEY…): igsync reads SUPABASE_KEY only.
        """
        if self.supabase_url and not self.supabase_key:
            lookalikes = [
                name.upper() for name in _KEY_LOOKALIKES if getattr(self, name) is not None
            ]
            hint = (
                f" ({', '.join(lookalikes)} is set, but igsync reads the key from SUPABASE_KEY)"
                if lookalikes
                else ""
            )
            return (
                f"SUPABASE_URL is set but SUPABASE_KEY is not{hint}; set SUPABASE_KEY to the"
                " project's service-role key, or unset SUPABASE_URL"
            )
        if self.supabase_key and not self.supabase_url:
            return (
                "SUPABASE_KEY is set but SUPABASE_URL is not; set SUPABASE_URL to the project URL"
                " (https://<project>.supabase.co), or unset SUPABASE_KEY"
            )
        return None


_KEY_LOOKALIKES = (
    "supabase_service_role_key",
    "supabase_service_key",
    "supabase_secret_key",
    "supabase_anon_key",
)


def database_url(settings: Settings, override: str | None = None) -> str:
    """`--db`, else IGSYNC_DATABASE_URL, else Supabase when configured, else the SQLite file.

    Raises ConfigError for an unsupported URL, and for a half-set Supabase configuration
    (naming the missing variable) where it would decide the store: `supabase` named, or no
    URL at all (a silent fall-back to an empty SQLite file hides the mistake).
    """
    if override is not None:
        url = _check_database_url(override, "--db")
    elif settings.igsync_database_url:
        url = _check_database_url(settings.igsync_database_url, "IGSYNC_DATABASE_URL")
    else:
        url = None
    if url in (None, "supabase") and (problem := settings.supabase_problem()):
        raise ConfigError(problem)
    if url is not None:
        return url
    if settings.has_supabase:
        return "supabase"
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('igsync')) / 'igsync.db'}"


def demo_database_path() -> Path:
    """Where `igsync demo` keeps its simulated data when no --db is given (replaced by each
    demo run), for `igsync report --demo`: `demo.db` in the user data dir (platformdirs),
    beside the default database, never the default database itself."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("igsync")) / "demo.db"


def _check_database_url(url: str, source: str) -> str:
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return url
    if url.startswith(("postgresql://", "postgres://")):
        return check_postgres_url(url, source)
    if url == "supabase":
        return url
    if url.startswith("sqlite:"):
        # sqlite://x.db would read as a host "x.db" in SQLAlchemy's spelling too
        raise ConfigError(
            f"{source}: a SQLite URL takes three slashes then the path: sqlite:///igsync.db"
            " (relative to the working directory) or sqlite:////abs/path/igsync.db"
        )
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ConfigError(
        f"{source}: unsupported database URL {scheme!r}; "
        "use sqlite:///path.db, postgresql://user@host/db or supabase"
    )


#: a percent sign not starting a %XX escape
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def check_postgres_url(url: str, source: str) -> str:
    """`url`, with its password registered as a secret; ConfigError (never quoting it) when
    the user and password hold a character a URL must percent-encode there (`@ / # %`; a `?`
    ends the part checked, as it ends it for libpq).

    libpq splits an unencoded `@` or `/` elsewhere than meant, and its error would quote the
    rest of the password as a host name ("failed to resolve host 'tPw99@127.0.0.1'"); an
    unencoded `%` fails as a bad escape, quoting it as well.
    """
    # up to the query: an unencoded `@` or `/` in the password still comes before it
    head = url.split("://", 1)[1].split("?", 1)[0]
    if "@" not in head:
        return url
    userinfo = head.rsplit("@", 1)[0]
    password = userinfo.partition(":")[2]
    for secret in (password, unquote(password)):
        register_secret(secret)
    if any(c in userinfo for c in "@/#") or _BARE_PERCENT.search(userinfo):
        raise ConfigError(
            f"{source}: the user or password holds a character a URL must percent-encode"
            " there (not shown): write @ as %40, / as %2F, ? as %3F, # as %23 and % as %25,"
            " e.g. with python3 -c 'import urllib.parse,getpass;"
            ' print(urllib.parse.quote(getpass.getpass(), safe=""))\''
        )
    return url


def _exists(path: Path) -> bool:
    """`path.exists()`, with a directory this user may not search as a one-line ConfigError."""
    try:
        return path.exists()
    except PermissionError as exc:
        raise ConfigError(
            f"{path}: cannot read it ({exc.strerror}); fix the permissions of it and its"
            " directories, or remove it"
        ) from None


def _check_env_file(env_file: Path | str | None) -> None:
    if env_file is None:
        return
    path = Path(env_file)
    if _exists(path) and path.is_dir():
        raise ConfigError(f"{path} is a directory, not a settings file; remove or rename it")
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return  # no .env is the common case: the environment alone
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read it ({exc.strerror}); fix its permissions or remove it"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    _check_env_lines(path, text)


def _check_env_lines(path: Path, text: str) -> None:
    """Raise ConfigError (exit 2) naming `path` and the line of the first statement dotenv
    cannot parse. python-dotenv would only warn (without the file's name) and skip it, so a
    variable set there would silently fall back to its default; that is a setting to fix,
    as any other bad setting. The line itself is not shown: it may hold a token."""
    import io

    from dotenv.parser import parse_stream

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(
                f"{path}, line {binding.original.line}: not a VARIABLE=value line (dotenv"
                " format: quote a value with spaces, # starts a comment); fix or remove it"
            )


def load_settings(
    env_file: Path | str | None = ".env", *, sources: ConfigSources | None = None
) -> Settings:
    """Read env and one settings file (`env_file`), or env and every file of `sources` in
    their order of precedence (the CLI's way, `resolve_sources`).

    A bad value becomes one ConfigError naming the variable. Raises ConfigError as well for a
    settings file that is a directory, unreadable, or not UTF-8: pydantic-settings would raise
    a traceback for the last two and ignore the first; and for an IGSYNC_TOKEN_KEYS that is not
    a list of Fernet keys. Loading puts those keys to use for every store in the process
    (token_crypto.use_keys).
    """
    files: tuple[Path | str, ...] | Path | str | None
    if sources is None:
        _check_env_file(env_file)
        files = env_file
    else:
        for found in sources.files:
            _check_env_file(found.path)
        files = tuple(f.path for f in reversed(sources.files) if f.exists)  # later files win
    try:
        settings = Settings(_env_file=files)
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper() if first["loc"] else "configuration"
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{variable}{_set_in(variable, files)}: {reason}") from None
    for secret in (
        settings.ig_long_token,
        settings.ig_app_secret,
        settings.ig_instagram_app_secret,
        settings.supabase_key,
        *(getattr(settings, name) for name in _KEY_LOOKALIKES),
    ):
        if secret is not None:
            register_secret(secret.get_secret_value())
    from igsync.token_crypto import parse_keys, use_keys

    keys = settings.igsync_token_keys
    # every load sets them, so a process never keeps keys its settings no longer name
    use_keys(parse_keys(None if keys is None else keys.get_secret_value()))
    return settings


def _set_in(variable: str, files: tuple[Path | str, ...] | Path | str | None) -> str:
    """` (in FILE)` when the value of `variable` came from a settings file: the environment
    wins over files, and the later of `files` over the earlier (pydantic-settings' order)."""
    from dotenv import dotenv_values

    if variable in {name.upper() for name in os.environ}:
        return ""
    chosen = (files,) if isinstance(files, str | Path) else files or ()
    for path in reversed(chosen):
        found = {name.upper() for name in dotenv_values(path)} if Path(path).is_file() else set()
        if variable in found:
            return f" (in {path})"
    return ""


#: the variable that names a settings file, as `--env-file` does
ENV_FILE_VARIABLE = "IGSYNC_ENV_FILE"
#: the user config file's name in the platform config dir (dotenv format, as `.env`)
USER_CONFIG_NAME = "igsync.env"


def user_config_file() -> Path:
    """`igsync.env` in the platform's user config dir (platformdirs: `$XDG_CONFIG_HOME/igsync`,
    else `~/.config/igsync` on Linux; `~/Library/Application Support/igsync` on macOS)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("igsync")) / USER_CONFIG_NAME


@dataclass(frozen=True)
class SettingsFile:
    """One settings file igsync reads: why (`origin`), where (an absolute path), and whether
    it exists (only an explicit one must)."""

    origin: str
    path: Path
    exists: bool


@dataclass(frozen=True)
class ConfigSources:
    """The settings files of this run, highest precedence first (the environment beats them
    all, a flag beats the environment)."""

    files: tuple[SettingsFile, ...]
    environ: Mapping[str, str]

    def origin_of(self, variable: str) -> str:
        """Where `variable` (any case) gets its value: `environment`, `<origin> <path>` of the
        first file that sets it (non-empty), or `default`."""
        name = variable.upper()
        if any(k.upper() == name and v for k, v in self.environ.items()):
            return "environment"
        for found in self.files:
            if found.exists and name in _file_variables(found.path):
                return f"{found.origin} {found.path}"
        return "default"


def _file_variables(path: Path) -> set[str]:
    from dotenv import dotenv_values

    try:
        values = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    return {k.upper() for k, v in values.items() if v}


def resolve_sources(
    env_file: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user_file: Path | None = None,
) -> ConfigSources:
    """The settings files for `--env-file` (`env_file`), else IGSYNC_ENV_FILE, then `./.env`,
    then the user config file (`user_config_file()` unless `user_file` is given).

    Raises ConfigError when the file named by `--env-file` or IGSYNC_ENV_FILE does not exist:
    a cron line naming a file it cannot find must not run on defaults.
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    files: list[SettingsFile] = []
    origin, named = "--env-file", env_file
    if named is None:
        origin = ENV_FILE_VARIABLE
        named = next((v for k, v in environ.items() if k.upper() == ENV_FILE_VARIABLE and v), None)
    if named is not None:
        path = (cwd / Path(named).expanduser()).resolve()
        if not _exists(path):
            raise ConfigError(
                f"{origin} {named}: no such file; give the path of an existing settings file"
                " (dotenv format: one VARIABLE=value a line)"
            )
        files.append(SettingsFile(origin, path, True))
    for origin, path in ((".env", cwd / ".env"), ("user config", user_file or user_config_file())):
        path = path.resolve()
        if all(path != f.path for f in files):
            files.append(SettingsFile(origin, path, _exists(path)))
    return ConfigSources(tuple(files), environ)
