"""`igsync doctor`: is this igsync, as configured here, ready to sync? (issue 12)

`diagnose` runs a fixed list of checks, in order, and returns each as a `Check`: `ok`, `warn`
(works, but look), `fail` (a sync would fail or sync nothing) or `skip` (not run: an earlier
check failed, or the caller opted out). It never prints and never raises for what it finds;
the CLI renders the list and exits 1 when any check failed.

It is also where sync-all learns how to say why a run found no account at all
(`empty_run_problem`): the same likely causes `doctor` names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import httpx
from pydantic import BaseModel

from igsync.config import ConfigSources, Settings, database_url, load_settings
from igsync.errors import ConfigError, IgsyncError, StoreConfigError
from igsync.integrity import integrity_problems_help
from igsync.models import TokenRow, UserToken
from igsync.redact import redact
from igsync.store import SQLITE_PREFIX, Store, sqlite_path
from igsync.store.schema import LATEST, MIGRATIONS

CheckStatus = Literal["ok", "warn", "fail", "skip"]
StoreKind = Literal["sqlite", "postgres", "supabase"]

#: the longest doctor waits for the Graph API's answer, in seconds
GRAPH_PROBE_TIMEOUT_S = 10.0
#: the variables that configure igsync (for "is anything configured at all?")
_OWN_PREFIXES = ("IGSYNC_", "IG_", "SUPABASE_")


class Check(BaseModel):
    """One line of `igsync doctor`: what was checked, the verdict, what was found and, unless
    all is well, the one thing to do about it."""

    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None


class DoctorReport(BaseModel):
    """`igsync doctor --json`: `ok` is false when any check failed (a `warn` keeps it true)."""

    ok: bool
    checks: list[Check]


def store_kind(url: str) -> StoreKind:
    """Which store a checked database URL opens."""
    if url == "supabase":
        return "supabase"
    return "sqlite" if url.startswith(SQLITE_PREFIX) else "postgres"


def shown_database(url: str, settings: Settings) -> str:
    """The database as a person can recognise it, with no password: `SQLite file /p.db`,
    `postgresql://cron:***@db/igsync`, `Supabase https://x.supabase.co`."""
    kind = store_kind(url)
    if kind == "supabase":
        return f"Supabase {settings.supabase_url or '(SUPABASE_URL unset)'}"
    if kind == "sqlite":
        return f"SQLite file {sqlite_path(url)}"
    return redact(url)  # masks user:password@ whatever the password is


def database_origin(settings: Settings, sources: ConfigSources, override: str | None) -> str:
    """Which setting chose the database, and where it was read: `--db`, `IGSYNC_DATABASE_URL
    (environment)`, `SUPABASE_URL and SUPABASE_KEY (.env /srv/.env)`, or the default."""
    if override is not None:
        return "--db"
    if settings.igsync_database_url:
        return f"IGSYNC_DATABASE_URL ({sources.origin_of('IGSYNC_DATABASE_URL')})"
    if settings.has_supabase:
        return f"SUPABASE_URL and SUPABASE_KEY ({sources.origin_of('SUPABASE_URL')})"
    return "the default: no IGSYNC_DATABASE_URL or SUPABASE_URL anywhere"


_WRONG_PLACE = (
    "the wrong database (the settings file was not found: cron runs in $HOME, not where .env"
    " is; use `igsync --env-file PATH`, IGSYNC_ENV_FILE or the user config file)"
)
_CAUSES: dict[StoreKind, tuple[str, ...]] = {
    "postgres": (
        "row-level security hiding the rows from this role (it needs BYPASSRLS or to own the"
        " tables: README, 'A cron role on PostgreSQL')",
        _WRONG_PLACE,
        "no accounts yet (`igsync accounts add`)",
    ),
    "supabase": (
        "a key subject to row-level security (SUPABASE_KEY must be the service-role key, not"
        " the anon key)",
        _WRONG_PLACE.replace("database", "project"),
        "no accounts yet (`igsync accounts add`)",
    ),
    "sqlite": (
        _WRONG_PLACE.replace("database", "database file"),
        "no accounts yet (`igsync accounts add`)",
    ),
}


def empty_run_problem(
    database: str, origin: str, kind: StoreKind, *, env_account: bool = False
) -> str:
    """The one line for a sync-all that sees no account at all: which database (no password),
    chosen by what, and the likely causes for this kind of store. `env_account`: the
    IG_ACCOUNT_ID fallback is set, which sync-all does not use (it says so)."""
    fallback = (
        " (IG_ACCOUNT_ID/IG_LONG_TOKEN are set, but sync-all syncs user_tokens rows only;"
        " `igsync fetch` uses them)"
        if env_account
        else ""
    )
    # SQLite has no roles to hide rows from: the file either holds rows or not
    seen = "has" if kind == "sqlite" else "shows this role"
    return (
        f"no accounts to sync: {database} (from {origin}) {seen} no instagram row in"
        f" user_tokens{fallback}; likely causes: {'; '.join(_CAUSES[kind])}. Pass --allow-empty"
        " when no account is expected"
    )


def _open(url: str, settings: Settings) -> Store:
    """The store the CLI's commands open for `url`, not yet entered."""
    from igsync.store import open_store, open_supabase_store

    if url != "supabase":
        return open_store(url, access="read")  # doctor changes nothing
    if not (settings.supabase_url and settings.supabase_key):
        raise ConfigError(settings.supabase_problem() or "SUPABASE_URL and SUPABASE_KEY: unset")
    return open_supabase_store(settings.supabase_url, settings.supabase_key.get_secret_value())


@dataclass
class _Found:
    """What the store checks learnt, for the checks after them."""

    tokens: list[TokenRow]


async def diagnose(
    sources: ConfigSources,
    *,
    db_override: str | None,
    now: datetime,
    graph: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> DoctorReport:
    """Every check, in order: configuration, database, schema, accounts, tokens, app
    credentials, Graph API (one GET per host in use, no token; `graph=False` skips it).

    `now` is an aware UTC datetime (token days left); `transport` replaces the network for
    the Graph probe (tests). Never raises for what it finds: a failure is a `fail` check.
    """
    try:
        settings = load_settings(sources=sources)
        url = database_url(settings, db_override)
    except ConfigError as error:
        failed = Check(name="configuration", status="fail", detail=str(error), fix=_FIX_CONFIG)
        return _only_configuration(failed, "the configuration must load first")
    checks = [_configuration(settings, sources, db_override)]
    if checks[0].status == "fail":
        return _only_configuration(checks[0], "the configuration must be fixed first")
    found = await _store_checks(checks, settings, url, sources, db_override)
    checks.append(_tokens(found, now))
    checks.append(_app_credentials(settings, sources, found))
    if graph:
        checks.append(await _graph(settings, found, transport))
    else:
        checks.append(Check(name="graph api", status="skip", detail="skipped (--no-graph)"))
    return DoctorReport(ok=all(c.status != "fail" for c in checks), checks=checks)


_FIX_CONFIG = "fix the setting named, where `igsync doctor` says it is read from"
#: the checks that need a configuration that loads and holds together
_AFTER_CONFIGURATION = (
    "database",
    "schema",
    "accounts",
    "tokens",
    "app credentials",
    "graph api",
)


def _only_configuration(failed: Check, why: str) -> DoctorReport:
    """The report of a failed configuration check: every check after it skipped, `why`."""
    skipped = [Check(name=n, status="skip", detail=why) for n in _AFTER_CONFIGURATION]
    return DoctorReport(ok=False, checks=[failed, *skipped])


def _configuration(settings: Settings, sources: ConfigSources, override: str | None) -> Check:
    files = "; ".join(
        f"{f.origin} {f.path}{'' if f.exists else ' (absent)'}" for f in sources.files
    )
    url = database_url(settings, override)
    origin = database_origin(settings, sources, override)
    database = f"database {shown_database(url, settings)} from {origin}"
    configured = override is not None or any(f.exists for f in sources.files)
    configured = configured or any(
        k.upper().startswith(_OWN_PREFIXES) and v for k, v in sources.environ.items()
    )
    if url == "supabase" and not (settings.supabase_url and settings.supabase_key):
        unset = " and ".join(
            n
            for n, v in (
                ("SUPABASE_URL", settings.supabase_url),
                ("SUPABASE_KEY", settings.supabase_key),
            )
            if not v
        )
        return Check(
            name="configuration",
            status="fail",
            detail=f"files: {files}; the database is Supabase (from {origin}), but {unset}"
            f" {'is' if ' and ' not in unset else 'are'} unset: the supabase store needs both",
            fix="set SUPABASE_URL (https://<project>.supabase.co) and SUPABASE_KEY (the"
            " project's service-role key), or point IGSYNC_DATABASE_URL at another database",
        )
    if not configured:
        return Check(
            name="configuration",
            status="warn",
            detail=f"no setting found anywhere (files: {files}); {database}",
            fix="put the settings in one of those files, or name one with `igsync --env-file"
            " PATH` / IGSYNC_ENV_FILE (cron does not read the .env of your working directory)",
        )
    return Check(name="configuration", status="ok", detail=f"files: {files}; {database}")


async def _store_checks(
    checks: list[Check],
    settings: Settings,
    url: str,
    sources: ConfigSources,
    override: str | None,
) -> _Found | None:
    """database, schema and accounts; the tokens read (None: the store could not be read)."""
    kind, shown = store_kind(url), shown_database(url, settings)
    if kind == "sqlite" and not sqlite_path(url).exists():
        # Opening would create it: doctor changes nothing.
        checks.append(
            Check(
                name="database",
                status="warn",
                detail=f"{shown} does not exist yet (igsync creates it on first use)",
                fix="if your accounts are in another database, point IGSYNC_DATABASE_URL (or"
                " --env-file) at it; otherwise `igsync accounts add` creates this one",
            )
        )
        checks.append(Check(name="schema", status="skip", detail="no database yet"))
        checks.append(
            Check(
                name="accounts",
                status="fail",
                detail="no accounts: there is no database yet",
                fix="add one with `igsync accounts add`, or point igsync at the right database",
            )
        )
        return None
    reachable = Check(name="database", status="ok", detail=f"{shown} is reachable")
    stage = "database"
    try:
        async with _open(url, settings) as store:
            checks.append(reachable)
            stage = "schema"
            checks.append(_schema(await store.schema_version(), kind))
            try:
                problems = await store.check_integrity(quick=True)
            except IgsyncError as error:  # the check could not run: say so, read on
                problems = [f"the integrity check could not run: {error}"]
            checks.append(_integrity(problems))
            stage = "accounts"
            visible = await store.count_tokens()
            tokens = await store.list_tokens() if visible else []
            filtered = None
            if not visible and kind == "postgres":
                from igsync.store.postgres import PostgresStore  # psycopg: only when needed

                if isinstance(store, PostgresStore):
                    filtered = await store.row_security_role()
    except IgsyncError as error:
        if stage == "database" and isinstance(error, ConfigError | StoreConfigError):
            fix = (
                "point --db or IGSYNC_DATABASE_URL at an igsync database file this user may write"
                if kind == "sqlite"
                else "check the URL, the password and that the server is up"
            )
            checks.append(Check(name="database", status="fail", detail=str(error), fix=fix))
            checks.append(Check(name="schema", status="skip", detail="no database to read"))
        elif stage in ("database", "schema"):
            # It answered: opening checks (SQLite, PostgreSQL: migrates) the schema version.
            checks.append(reachable)
            checks.append(
                Check(name="schema", status="fail", detail=str(error), fix=_schema_fix(kind))
            )
        else:
            checks.append(
                Check(name="accounts", status="fail", detail=str(error), fix=_grant_fix(kind))
            )
            return None
        checks.append(Check(name="accounts", status="skip", detail="the schema must be readable"))
        return None
    if not visible and filtered is not None:
        checks.append(
            Check(
                name="accounts",
                status="fail",
                detail=f"this role sees no instagram row of user_tokens in {shown}, and"
                f" row-level security filters that table for it (role {filtered}: not the"
                " owner, no BYPASSRLS, no policy of igsync's lets it read)",
                fix=f"as a superuser: `alter role {filtered} bypassrls;` (README, 'A cron role"
                " on PostgreSQL'), or run as the tables' owner",
            )
        )
        return _Found(tokens=[])
    if not visible:
        origin = database_origin(settings, sources, override)
        checks.append(
            Check(
                name="accounts",
                status="fail",
                detail=f"{shown} has no instagram row in user_tokens"
                if kind == "sqlite"
                else f"this role sees no instagram row of user_tokens in {shown}",
                fix="likely: " + "; or ".join(_CAUSES[kind]),
            )
        )
        if origin.startswith("the default"):
            checks[-1].fix = f"{checks[-1].fix} (the database is {origin})"
        return _Found(tokens=[])
    checks.append(
        Check(name="accounts", status="ok", detail=f"{visible} instagram accounts visible")
    )
    return _Found(tokens=tokens)


def _integrity(problems: list[str]) -> Check:
    """SQLite's `quick_check` (the full one can take minutes on a big file: `igsync db check`),
    PostgreSQL's unique indexes, Supabase's columns (igsync.integrity)."""
    if not problems:
        return Check(name="integrity", status="ok", detail="no problem found (quick check)")
    return Check(
        name="integrity",
        status="fail",
        detail="; ".join(problems),
        fix=integrity_problems_help(problems) + "; `igsync db check` runs the full check",
    )


def _schema(version: int | None, kind: StoreKind) -> Check:
    if version is not None and version > LATEST:
        return Check(
            name="schema",
            status="warn",
            detail=f"version {version}, newer than this igsync knows ({LATEST})",
            fix="upgrade igsync",
        )
    if version == LATEST:
        return Check(name="schema", status="ok", detail=f"version {version} (latest {LATEST})")
    # Opening migrates SQLite and PostgreSQL and refuses a Supabase schema behind: only a
    # version record that cannot be read lands here.
    return Check(
        name="schema",
        status="warn",
        detail=f"the version record cannot be read (latest {LATEST})",
        fix=_schema_fix(kind),
    )


def _schema_fix(kind: StoreKind) -> str:
    if kind == "supabase":
        files = ", ".join(f"supabase/migrations/{m.supabase_file}" for m in MIGRATIONS)
        return (
            f"apply the migrations the message names ({files}; `igsync db schema --migration"
            " N` prints one) with `supabase db push` or in the SQL editor"
        )
    return "run `igsync db init` as the tables' owner"


def _grant_fix(kind: StoreKind) -> str:
    if kind == "supabase":
        return "use the service-role key as SUPABASE_KEY"
    return "grant this role select, insert, update on the igsync tables (README)"


def _tokens(found: _Found | None, now: datetime) -> Check:
    from igsync.tokens import account_info

    if found is None or not found.tokens:
        return Check(name="tokens", status="skip", detail="no account to check")
    infos = [account_info(t, now) for t in found.tokens]
    by_status = Counter(i.status for i in infos)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
    days = [i.days_left for i in infos if i.days_left is not None and i.status != "expired"]
    soonest = f"; the soonest expires in {min(days)} days" if days else ""
    unknown = sum(1 for i in infos if i.expires_at is None and i.status != "invalid")
    known = f"; {unknown} with no known expiry" if unknown else ""
    detail = f"{len(infos)} tokens: {counts}{soonest}{known}"
    dead = by_status["expired"] + by_status["needs_reauth"] + by_status["invalid"]
    if dead:
        return Check(
            name="tokens",
            status="fail",
            detail=detail,
            fix="`igsync accounts list` names them: an expired or needs_reauth token needs its"
            " owner to log in again (then `igsync accounts add`); an invalid row says what to"
            " fix",
        )
    if by_status["expiring"]:
        return Check(
            name="tokens",
            status="warn",
            detail=detail,
            fix="sync-all refreshes them on its next run; or `igsync refresh-token --all` now",
        )
    return Check(name="tokens", status="ok", detail=detail)


def _app_credentials(settings: Settings, sources: ConfigSources, found: _Found | None) -> Check:
    present = [
        f"{name} ({sources.origin_of(name)})"
        for name, value in (
            ("IG_APP_ID", settings.ig_app_id),
            ("IG_APP_SECRET", settings.ig_app_secret),
            ("IG_INSTAGRAM_APP_SECRET", settings.ig_instagram_app_secret),
        )
        if value is not None
    ]
    detail = "set: " + ", ".join(present) if present else "none set"
    if bool(settings.ig_app_id) != bool(settings.ig_app_secret):
        missing = "IG_APP_SECRET" if settings.ig_app_id else "IG_APP_ID"
        return Check(
            name="app credentials",
            status="fail",
            detail=f"{detail}; {missing} is missing, so neither is used",
            fix=f"set {missing} (the Meta app's, in the App Dashboard under App settings > Basic)",
        )
    kinds = _kinds(found)
    if "facebook_login" in kinds and not settings.ig_app_id:
        return Check(
            name="app credentials",
            status="warn",
            detail=f"{detail}; facebook_login tokens cannot be refreshed or checked without them",
            fix="set IG_APP_ID and IG_APP_SECRET, or each token dies 60 days after its login",
        )
    if "instagram_login" in kinds and not settings.ig_instagram_app_secret:
        detail += (
            "; Instagram-Login calls carry no appsecret_proof (needed only when the app"
            " requires it: set IG_INSTAGRAM_APP_SECRET then)"
        )
    return Check(name="app credentials", status="ok", detail=detail)


def _kinds(found: _Found | None) -> set[str]:
    return {t.token_kind for t in (found.tokens if found else []) if isinstance(t, UserToken)}


async def _graph(
    settings: Settings, found: _Found | None, transport: httpx.AsyncBaseTransport | None
) -> Check:
    """One GET of `/{version}/me` without a token per host in use: an answer in the Graph
    API's error shape (Meta refuses a call without a token with an `error` object) proves the
    host reachable, and no secret leaves the machine."""
    hosts = [settings.igsync_graph_url]
    if "instagram_login" in _kinds(found):
        hosts.append(settings.igsync_instagram_url)
    timeout = min(settings.igsync_http_timeout, GRAPH_PROBE_TIMEOUT_S)
    answered: list[str] = []
    async with httpx.AsyncClient(
        timeout=timeout, transport=transport, headers={"user-agent": "igsync"}
    ) as client:
        for host in hosts:
            problem = await _probe(client, f"{host}/{settings.igsync_graph_version}/me")
            if problem is not None:
                return Check(
                    name="graph api",
                    status="fail",
                    detail=f"{host}: {problem}",
                    fix="check the network, proxy (HTTPS_PROXY) and IGSYNC_GRAPH_URL /"
                    " IGSYNC_INSTAGRAM_URL; `--no-graph` skips this check",
                )
            answered.append(host)
    return Check(
        name="graph api",
        status="ok",
        detail=f"{' and '.join(answered)} answered ({settings.igsync_graph_version})",
    )


async def _probe(client: httpx.AsyncClient, url: str) -> str | None:
    """None when `url` answered as the Graph API does; else what went wrong."""
    try:
        response = await client.get(url)
    except httpx.TimeoutException:
        return "no answer in time"
    except httpx.HTTPError as error:
        return f"cannot reach it ({type(error).__name__})"
    try:
        body = response.json()
    except ValueError:
        body = None
    # JSON, and an `error` object unless it succeeded: a captive portal's 200 page is no Graph
    if isinstance(body, dict) and (response.is_success or isinstance(body.get("error"), dict)):
        return None
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    return (
        f"answered HTTP {response.status_code} ({kind}), not as the Graph API does"
        " (a proxy or a wrong URL?)"
    )


def summary(checks: Sequence[Check]) -> str:
    """`5 ok, 1 warn, 1 fail, 1 skip`: how many checks had each status (none: left out)."""
    counts = Counter(c.status for c in checks)
    return ", ".join(f"{counts[s]} {s}" for s in ("ok", "warn", "fail", "skip") if counts[s])
