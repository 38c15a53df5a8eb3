"""The deployment recipes in deploy/, checked as far as this machine allows: each file parsed
and validated (a schema, a linter, or the keys a scheduler needs), and the igsync commands in
it run against the simulator, as the scheduler would run them.

- cron: the crontab's lines (schedule, absolute paths, IGSYNC_ENV_FILE, flock) and its sync
  command run by /bin/sh with cron's bare PATH from another directory; a run that finds the
  lock taken does nothing.
- GitHub Actions: the workflow validated against SchemaStore's schema (check-jsonschema's
  vendored copy), its triggers and secrets checked, its igsync commands run with the
  secrets' variables against a (fake) Supabase and the simulator.
- Docker: the Dockerfile linted with hadolint, its final stage non-root with igsync as
  entrypoint, its install step run outside Docker (no daemon here), then the entrypoint.
- Kubernetes: the CronJob and the indexed Job parsed; the Job's shard command run once per
  completion index: every account synced exactly once.
- Supabase: the pg_cron housekeeping SQL of the doc run on the real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
import yaml
from pydantic import SecretStr

import igsync.store
from cli_runner import run_cli
from fake_postgrest import SERVICE_KEY, SUPABASE_URL, FakePostgrest
from igsync.models import UserToken
from igsync.simulator import Served, SimAccount, Simulator, serve_in_thread
from igsync.store import Store
from igsync.store.postgres import PostgresStore
from igsync.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
IGSYNC = str(BIN / "igsync")
USER = UUID("00000000-0000-4000-8000-0000000de910")
ACCOUNTS = [f"178414000000001{n:02d}" for n in range(8)]
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\d+(-\d+)?)(/\d+)?)*$")


# --- shared ---


@pytest.fixture
def served() -> Iterator[Served]:
    sim = Simulator([SimAccount(a) for a in ACCOUNTS])
    with serve_in_thread(sim) as urls:
        yield urls


def _tokens() -> list[UserToken]:
    return [
        UserToken(u_id=USER, account_id=a, access_token=SecretStr(f"EAAGdeploy{a}" + "t" * 80))
        for a in ACCOUNTS
    ]


def _seed_sqlite(path: Path) -> None:
    async def seed() -> None:
        async with SQLiteStore(path) as store:
            await store.save_tokens(_tokens())

    asyncio.run(seed())


def _env_file(path: Path, db: Path, served: Served) -> Path:
    path.write_text(
        f"IGSYNC_DATABASE_URL=sqlite:///{db}\n"
        f"IGSYNC_GRAPH_URL={served.graph_url}\n"
        f"IGSYNC_INSTAGRAM_URL={served.instagram_url}\n"
    )
    path.chmod(0o600)
    return path


def _supports_env_file() -> bool:
    """Whether this igsync reads IGSYNC_ENV_FILE (the global --env-file of issue 12 item 3)."""
    done = subprocess.run([IGSYNC, "--help"], capture_output=True, text=True, check=False)
    return "--env-file" in done.stdout


def _config_env(env_file: Path) -> dict[str, str]:
    """What the scheduler's environment holds: the env file's name; where this igsync cannot
    read one yet, its variables as well (so the rest of the recipe is still checked)."""
    env = {"IGSYNC_ENV_FILE": str(env_file)}
    if not _supports_env_file():
        for line in env_file.read_text().splitlines():
            name, _, value = line.partition("=")
            env[name] = value
    return env


def _synced_accounts(document: dict[str, Any]) -> list[str]:
    return [r["account_id"] for r in document["results"] if r["success"]]


# --- cron ---


def _crontab() -> tuple[dict[str, str], list[tuple[list[str], str]]]:
    """(variables, [(the five schedule fields, command)]) of deploy/cron/igsync.crontab."""
    variables, jobs = {}, []
    for line in (DEPLOY / "cron" / "igsync.crontab").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):
            name, _, value = line.partition("=")
            variables[name] = value
            continue
        fields = line.split(None, 5)
        jobs.append((fields[:5], fields[5]))
    return variables, jobs


def test_crontab_lines_have_valid_schedules_absolute_paths_env_file_and_flock() -> None:
    variables, jobs = _crontab()
    assert variables["SHELL"] == "/bin/sh"
    commands = {}
    for schedule, command in jobs:
        assert all(CRON_FIELD.match(f) for f in schedule), schedule
        words = shlex.split(command.split(">>")[0])
        assert words[0].startswith("IGSYNC_ENV_FILE=/")
        # a skipped run exits 75 (flock -E), which the line turns into a mailed line
        assert words[1:5] == ["/usr/bin/flock", "-n", "-E", "75"]
        assert re.fullmatch(r"/\S+\.lock", words[5])
        assert re.fullmatch(r"/\S+/igsync", words[6])  # absolute: not on cron's PATH
        assert "--json" in words
        commands[words[7]] = command
        for target in re.findall(r">>\s*(\S+)", command):
            assert target.startswith("/")
    assert set(commands) == {"sync-all", "refresh-token"}
    # the two jobs never share a lock: a long sync must not stop the token refresh
    locks = {shlex.split(c)[5] for c in commands.values()}
    assert len(locks) == 2


def _cron_command(command: str, tmp_path: Path) -> str:
    """The crontab's command with this machine's paths for igsync, the env file, the lock
    and the logs."""
    return (
        command.replace("/opt/igsync/bin/igsync", IGSYNC)
        .replace("/etc/igsync/igsync.env", str(tmp_path / "igsync.env"))
        .replace("/var/lock/", f"{tmp_path}/")
        .replace("/var/log/igsync/", f"{tmp_path}/")
    )


@pytest.mark.e2e
def test_the_crontab_sync_line_syncs_every_account_from_any_directory(
    tmp_path: Path, served: Served
) -> None:
    db = tmp_path / "igsync.db"
    _seed_sqlite(db)
    env_file = _env_file(tmp_path / "igsync.env", db, served)
    (elsewhere := tmp_path / "home").mkdir()
    _, jobs = _crontab()
    command = _cron_command(next(c for _, c in jobs if " sync-all " in c), tmp_path)
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=elsewhere,  # cron starts in the user's home: no .env there
        env={"PATH": "/usr/bin:/bin", "HOME": str(elsewhere), **_config_env(env_file)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, (tmp_path / "sync.err").read_text()
    (line,) = (tmp_path / "sync.jsonl").read_text().splitlines()
    document = json.loads(line)
    assert document["success"] is True
    assert sorted(_synced_accounts(document)) == ACCOUNTS
    assert not (elsewhere / "igsync.db").exists()
    # cron's log gets the run's one summary line, nothing else
    (summary,) = (tmp_path / "sync.err").read_text().splitlines()
    assert summary.startswith(f"igsync sync-all: {len(ACCOUNTS)}/{len(ACCOUNTS)} accounts ok")


@pytest.mark.e2e
def test_the_crontab_sync_line_does_nothing_while_the_last_run_holds_the_lock(
    tmp_path: Path,
) -> None:
    _, jobs = _crontab()
    command = _cron_command(next(c for _, c in jobs if " sync-all " in c), tmp_path)
    lock = shlex.split(command)[5]
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # flock(1) takes the same flock(2) lock
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "IGSYNC_DATABASE_URL": "sqlite:///never.db"},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    # cron mails output, not exit codes: the skip is one line on the job's own stderr
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == (f"igsync sync-all: skipped, the previous run still holds {lock}\n")
    assert (tmp_path / "sync.jsonl").read_text() == ""  # igsync did not run
    assert (tmp_path / "sync.err").read_text() == ""
    assert not (tmp_path / "never.db").exists()


# --- GitHub Actions ---

WORKFLOW = DEPLOY / "github-actions" / "igsync-sync.yml"


def _workflow() -> dict[Any, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_workflow_is_valid_for_github() -> None:
    done = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(WORKFLOW),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_workflow_runs_daily_and_by_hand_with_secrets_only_in_env() -> None:
    workflow = _workflow()
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    (schedule,) = triggers["schedule"]
    assert all(CRON_FIELD.match(f) for f in schedule["cron"].split())
    assert "workflow_dispatch" in triggers
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    secrets = {k: v for k, v in job["env"].items() if "secrets." in str(v)}
    assert secrets == {
        "SUPABASE_URL": "${{ secrets.SUPABASE_URL }}",
        "SUPABASE_KEY": "${{ secrets.SUPABASE_SERVICE_ROLE_KEY }}",
        "IG_APP_ID": "${{ secrets.IG_APP_ID }}",
        "IG_APP_SECRET": "${{ secrets.IG_APP_SECRET }}",
    }
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert not any("secrets." in run for run in runs)  # never a secret on a command line
    assert runs[0] == "uv tool install --compile-bytecode ."
    sync = next(s for s in job["steps"] if "sync-all" in s.get("run", ""))
    assert sync["if"] == "${{ !cancelled() }}"  # a failed refresh does not skip the sync


def test_the_workflows_commands_sync_into_supabase_with_the_service_key(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    served: Served,
) -> None:
    fake = FakePostgrest()

    async def seed() -> None:
        async with fake.open() as store:
            await store.save_tokens(_tokens())

    asyncio.run(seed())

    def open_fake(url: str, key: str) -> Store:
        assert (url, key) == (SUPABASE_URL, SERVICE_KEY)
        return fake.open(key)

    monkeypatch.setattr(igsync.store, "open_supabase_store", open_fake)
    job = next(iter(_workflow()["jobs"].values()))
    secrets = {"SUPABASE_URL": SUPABASE_URL, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY}
    for name, value in job["env"].items():
        secret = re.fullmatch(r"\$\{\{ secrets\.(\w+) \}\}", value)
        if secret:
            monkeypatch.setenv(name, secrets.get(secret[1], ""))
    monkeypatch.setenv("DAYS", "3")
    monkeypatch.setenv("IGSYNC_GRAPH_URL", served.graph_url)
    monkeypatch.setenv("IGSYNC_INSTAGRAM_URL", served.instagram_url)
    monkeypatch.delenv("IGSYNC_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    outputs = {}
    for step in job["steps"]:
        run = step.get("run", "")
        if not run.startswith("igsync "):
            continue
        words = shlex.split(os.path.expandvars(run.split(">")[0]))
        code, out, err = run_cli(monkeypatch, capsys, *words[1:])
        assert code == 0, err
        # only sync-all leaves a line on stderr off a terminal: its summary
        assert err.splitlines() == ([] if words[1] != "sync-all" else err.splitlines()[:1])
        assert all(line.startswith("igsync sync-all: ") for line in err.splitlines())
        outputs[words[1]] = json.loads(out)
    assert outputs["refresh-token"]["failed"] == []
    assert sorted(_synced_accounts(outputs["sync-all"])) == ACCOUNTS
    rows = fake.db.execute("select count(distinct account_id) from instagram_insights").fetchall()
    assert rows == [(len(ACCOUNTS),)]
    fake.close()


# --- Docker ---

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_the_dockerfile_lints_clean_and_runs_igsync_as_a_non_root_user() -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = _instructions()
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [arg for op, arg in final if op == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert ("ENTRYPOINT", '["igsync"]') in final
    build = steps[: len(steps) - len(final)]
    assert any(op == "ENV" and "UV_COMPILE_BYTECODE=1" in arg for op, arg in build)
    # everything COPY takes from the context exists, and .dockerignore lets it through
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for op, arg in build:
        if op == "COPY" and "--from" not in arg:
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source.rstrip('/')}" in {ln.rstrip("/") for ln in ignore}


def _docker_daemon() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_the_dockerfiles_install_step_gives_a_working_igsync(
    tmp_path: Path, served: Served
) -> None:
    if _docker_daemon():
        done = subprocess.run(
            ["docker", "build", "-f", str(DOCKERFILE), "-t", "igsync-test", str(ROOT)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    # No daemon here: the build stage's commands, run as its RUN would, in a copy of the
    # context; then the image's ENTRYPOINT with a command, as `docker run` would.
    steps = _instructions()
    context = tmp_path / "src"
    context.mkdir()
    for op, arg in steps:
        if op == "COPY" and "--from" not in arg:
            for source in arg.split()[:-1]:
                copy = shutil.copytree if (ROOT / source).is_dir() else shutil.copy
                copy(ROOT / source, context / source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGSYNC_", "VIRTUAL_ENV"))}
    build = steps[: max(i for i, (op, _) in enumerate(steps) if op == "FROM")]
    for op, arg in build:  # the build stage's ENV; its uv is the one of `COPY --from=…uv`
        if op == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(arg)))
    venv = tmp_path / "opt-igsync"
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    env.pop("UV_NO_CACHE")  # the image starts empty; here the machine's uv cache may serve
    (run,) = [arg for op, arg in build if op == "RUN"]
    done = subprocess.run(
        ["/bin/sh", "-c", run], cwd=context, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert list((venv / "lib").glob("python3*/site-packages/igsync/__pycache__/*.pyc"))

    db = tmp_path / "igsync.db"
    _seed_sqlite(db)
    env_file = _env_file(tmp_path / "igsync.env", db, served)
    entrypoint = json.loads(next(arg for op, arg in steps if op == "ENTRYPOINT"))
    done = subprocess.run(
        [str(venv / "bin" / entrypoint[0]), "sync-all", "--json"],
        cwd=tmp_path,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", **_config_env(env_file)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(_synced_accounts(json.loads(done.stdout))) == ACCOUNTS


# --- Kubernetes ---


def _manifest(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "kubernetes" / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def _pod_checks(pod: dict[str, Any]) -> dict[str, Any]:
    """The checks both manifests' pods share; returns the one container."""
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    secret = _manifest("secret.example.yaml")
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert not any("TOKEN" in str(e) for e in container.get("env", []))  # tokens live in the db
    return container


def test_the_cronjob_runs_sync_all_daily_and_never_twice_at_once() -> None:
    cronjob = _manifest("cronjob.yaml")
    assert (cronjob["apiVersion"], cronjob["kind"]) == ("batch/v1", "CronJob")
    spec = cronjob["spec"]
    assert all(CRON_FIELD.match(f) for f in spec["schedule"].split())
    assert spec["concurrencyPolicy"] == "Forbid"
    container = _pod_checks(spec["jobTemplate"]["spec"]["template"]["spec"])
    assert container["args"] == ["sync-all", "--json"]  # the image's ENTRYPOINT is igsync


def _indexed_job() -> tuple[int, str]:
    """(N, the shell command of every pod) of the indexed Job."""
    job = _manifest("indexed-job.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"]
    container = _pod_checks(spec["template"]["spec"])
    assert container["command"] == ["/bin/sh", "-c"]
    (script,) = container["args"]
    assert f"--shard $((JOB_COMPLETION_INDEX+1))/{spec['completions']} " in f"{script} "
    return spec["completions"], script


def test_the_indexed_job_shards_by_completion_index() -> None:
    count, script = _indexed_job()
    assert count == 4
    assert script.startswith("exec igsync sync-all ")


@pytest.mark.e2e
def test_the_indexed_jobs_pods_sync_every_account_exactly_once(
    tmp_path: Path, served: Served
) -> None:
    count, script = _indexed_job()
    db = tmp_path / "igsync.db"
    _seed_sqlite(db)
    env_file = _env_file(tmp_path / "igsync.env", db, served)
    synced: list[str] = []
    for index in range(count):  # one pod each; Kubernetes sets JOB_COMPLETION_INDEX
        done = subprocess.run(
            ["/bin/sh", "-c", script],
            cwd=tmp_path,
            env={
                "PATH": f"{BIN}:/usr/bin:/bin",
                "JOB_COMPLETION_INDEX": str(index),
                **_config_env(env_file),
            },
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        synced += _synced_accounts(json.loads(done.stdout))
    assert sorted(synced) == ACCOUNTS  # all of them, none twice


# --- Supabase ---

SUPABASE_DOC = DEPLOY / "supabase" / "README.md"


def test_the_supabase_doc_says_pg_cron_cannot_run_igsync_and_names_the_runners() -> None:
    doc = SUPABASE_DOC.read_text()
    assert "**it cannot run igsync**" in doc
    assert "**replaced by the CLI on a\nscheduler**" in doc
    for path in re.findall(r"`(deploy/[^`]+|supabase/migrations/)`", doc):
        assert (ROOT / path).exists(), path
    assert sorted((ROOT / "supabase" / "migrations").glob("*.sql"))


@pytest.mark.anyio
async def test_the_docs_pg_cron_housekeeping_sql_runs_on_postgresql(
    fresh_postgres_url: str,
) -> None:
    statement = re.search(r"\$\$(.+?)\$\$", SUPABASE_DOC.read_text(), re.DOTALL)
    assert statement is not None
    async with PostgresStore(fresh_postgres_url) as store:
        await store.init_schema()
    old, new = datetime.now(UTC) - timedelta(days=100), datetime.now(UTC)
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        for started in (old, new):
            conn.execute(
                "insert into instagram_sync_logs (run_id, account_id, started_at, finished_at,"
                " status) values (gen_random_uuid(), '1', %s, %s, 'ok')",
                (started, started),
            )
        conn.execute(statement[1])
        kept = conn.execute("select started_at from instagram_sync_logs").fetchall()
    assert [row[0] for row in kept] == [new]


def test_every_recipe_is_referenced_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text() + (DEPLOY / "README.md").read_text()
    assert "deploy/README.md" in (ROOT / "README.md").read_text()
    for recipe in sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.name != "README.md"):
        assert str(recipe.relative_to(ROOT)) in readme, recipe


@pytest.mark.e2e
def test_the_crontab_sync_line_says_skipped_only_for_a_held_lock(tmp_path: Path) -> None:
    """igsync's own failure (here a missing env file, exit 2) goes to the .err file as before;
    the "skipped" line is for flock's conflict exit (75) alone."""
    _, jobs = _crontab()
    command = _cron_command(next(c for _, c in jobs if " sync-all " in c), tmp_path)
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},  # no igsync.env: igsync exits 2 at once
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.stdout, done.stderr) == ("", "")  # nothing for cron to mail but the .err file
    assert "IGSYNC_ENV_FILE" in (tmp_path / "sync.err").read_text()
