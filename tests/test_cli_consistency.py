"""Every command keeps the README's promises (issue 12, item 8).

`--json`, `-q` and `-v` on every command, before or after it; `db schema --json`; help
examples never rewrapped mid-command; `-v` without a `[default: 0]`; a clear `--all --user`
message; shell completion; the simulator server after a tool install; and every `igsync …`
line of the README's code blocks parsed by the real CLI's own (click) parser, so an example
naming a flag or command that does not exist fails here.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import typer.main
from typer._click import Command, Context
from typer._click.exceptions import BadParameter
from typer.core import TyperGroup as Group

from cli_runner import run_cli
from igsync.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
#: commands whose arguments are not igsync's own: the simulator's are its argparse options
PASS_THROUGH = {("simulator",)}


def root() -> Group:
    group = typer.main.get_command(app)
    assert isinstance(group, Group)
    return group


def leaves(group: Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    ctx = Context(group, info_name="igsync")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, Group):
            yield from leaves(command, (*path, name))
        else:
            yield (*path, name), command


def parse(words: list[str]) -> tuple[str, ...]:
    """Parse `igsync WORDS…` as click would, without running anything; the command's path.

    Raises click's UsageError for an option or command that does not exist, or an argument
    too many. Values are not checked (`--user UUID` in an example is a placeholder).
    """
    group: Command = root()
    path: list[str] = []
    rest = list(words)
    while isinstance(group, Group):
        options: list[str] = []
        while rest and rest[0].startswith("-"):
            word = rest.pop(0)
            options.append(word)
            param = next((p for p in group.params if word in p.opts), None)
            flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
            takes_value = param is not None and not flag
            if takes_value and "=" not in word and rest:
                options.append(rest.pop(0))
        if not rest:
            return tuple(path)
        _context(group, "igsync", options + rest)  # a group stops at its command's name
        name = rest.pop(0)
        sub = group.get_command(Context(group, info_name="igsync"), name)
        assert sub is not None, f"no command {name!r} under {' '.join(['igsync', *path])}"
        path.append(name)
        group = sub
    if tuple(path) not in PASS_THROUGH:
        _context(group, path[-1], rest)
    return tuple(path)


def _context(command: Command, name: str, args: list[str]) -> None:
    """click's own parse of `args`: an unknown option or an extra argument raises; a value
    that is only a placeholder (`--user UUID`) does not, once the options have parsed."""
    # MissingParameter is a BadParameter too: a required option an example leaves out
    with contextlib.suppress(BadParameter):
        command.make_context(name, list(args))


def _shell_blocks(markdown: str) -> Iterator[str]:
    """The text of each fenced code block in sh, bash or cron (or no language)."""
    block: list[str] | None = None
    keep = False
    for line in markdown.splitlines():
        if not line.startswith("```"):
            if block is not None:
                block.append(line)
        elif block is None:
            block, keep = [], line[3:].strip() in {"", "sh", "bash", "cron"}
        else:
            if keep:
                yield "\n".join(block) + "\n"
            block = None


def readme_commands() -> list[list[str]]:
    """Each `igsync …` of the README's shell and cron code blocks, as words, up to the first
    pipe or redirection; `[optional]` brackets dropped, continuation lines joined."""
    commands = []
    for block in _shell_blocks(README.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            if "igsync" not in line:
                continue
            words = shlex.split(line.replace("[", " ").replace("]", " "), comments=True)
            starts = [i for i, w in enumerate(words) if w == "igsync" or w.endswith("/igsync")]
            if not starts:
                continue  # `python -m igsync.simulator`, a path with igsync in it
            command = []
            for word in words[starts[0] + 1 :]:
                if word in {"|", ">", ">>", "<", "2>", "2>>", "&&", ";", "&", "||"}:
                    break
                command.append(word)
            commands.append(command)
    return commands


def test_the_readme_has_examples_to_check() -> None:
    paths = {parse(words) for words in readme_commands()}
    assert {("fetch",), ("sync-all",), ("accounts", "add"), ("db", "schema")} <= paths
    assert ("simulator",) in paths


@pytest.mark.parametrize("words", readme_commands(), ids=" ".join)
def test_every_readme_example_parses_with_the_real_cli(words: list[str]) -> None:
    parse(words)


def test_a_wrong_flag_in_an_example_would_fail() -> None:
    """The check above can fail: an option no command has is refused by the same parse."""
    from typer._click.exceptions import NoSuchOption

    with pytest.raises(NoSuchOption):
        parse(["metrics", "--nope"])
    with pytest.raises(AssertionError, match="no command"):
        parse(["db", "drop"])


@pytest.mark.parametrize(
    "path", [path for path, _ in leaves(root()) if path not in PASS_THROUGH], ids=" ".join
)
def test_every_command_takes_json_quiet_and_verbose_before_or_after(path: tuple[str, ...]) -> None:
    """README: every command takes --json, -q/--quiet and -v/--verbose, before or after."""
    parse([*path, "--json", "-q", "-v", "-vv", "--quiet", "--verbose"])
    parse(["--json", "-q", "-vv", "--log-format", "json", *path])


@pytest.mark.parametrize(
    # the simulator passes its arguments to its own argparse: not click's --help
    "path",
    [path for path, _ in leaves(root()) if path not in PASS_THROUGH],
    ids=" ".join,
)
def test_help_shows_no_count_default_and_examples_stay_whole(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12: `-v` showed `[default: 0]`; examples were rewrapped mid-command at 80
    columns. Each `\\b` paragraph of a docstring must reach --help line for line."""
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(monkeypatch, capsys, *path, "--help")
    assert code == 0
    assert "[default: 0]" not in out
    command = dict(leaves(root()))[path]
    doc = inspect.cleandoc(command.help or "")
    for paragraph in doc.split("\n\n"):
        if paragraph.startswith("\b\n"):
            for line in paragraph.splitlines()[1:]:
                assert line.strip() in {shown.strip() for shown in out.splitlines()}, line
        else:  # examples outside a `\b` paragraph are run together and rewrapped
            examples = re.findall(r"^\s+(\S.*igsync .*)$", paragraph, re.MULTILINE)
            assert len(examples) <= 1, paragraph
            for line in examples:
                assert line.strip() in {shown.strip() for shown in out.splitlines()}, line
    if not any("--metrics" in getattr(p, "opts", ()) for p in command.params):  # demo
        assert "of --metrics" not in " ".join(out.split())


def test_json_before_db_schema_is_one_json_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12: `igsync --json db schema` ignored --json; `db schema --json` was refused."""
    code, out, err = run_cli(monkeypatch, capsys, "--json", "db", "schema")
    assert code == 0, err
    document = json.loads(out)
    assert document["dialect"] == "postgres"
    assert document["migration"] is None
    assert "create table if not exists user_tokens" in document["sql"].lower()
    code, out, _ = run_cli(
        monkeypatch, capsys, "db", "schema", "--dialect", "sqlite", "--migration", "1", "--json"
    )
    assert code == 0
    assert out.count("\n") == 1
    assert (json.loads(out)["dialect"], json.loads(out)["migration"]) == ("sqlite", 1)
    code, out, _ = run_cli(monkeypatch, capsys, "db", "schema", "-q")
    assert code == 0
    assert out.lower().startswith("-- igsync schema")


def test_quiet_and_verbose_work_where_they_were_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue 12: `metrics -q`, `db init -q` and `accounts remove -q` were refused."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IGSYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'igsync.db'}")
    code, out, err = run_cli(monkeypatch, capsys, "metrics", "-q")
    assert code == 0, err
    assert "follower_count" in out
    code, out, err = run_cli(monkeypatch, capsys, "metrics", "-v")
    assert code == 0, err
    assert "follower_count" in out
    code, out, err = run_cli(monkeypatch, capsys, "db", "init", "-q", "--json")
    assert code == 0, err
    assert json.loads(out)["initialized"] is True
    user = str(uuid4())
    code, out, err = run_cli(monkeypatch, capsys, "accounts", "remove", "--user", user, "-q")
    assert (code, out) == (2, "")
    assert err == f"igsync: error: no Instagram account stored for user {user}\n"


def test_all_and_user_together_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "refresh-token", "--all", "--user", str(uuid4()))
    assert (code, out) == (2, "")
    assert err == "igsync: error: pass either --user UUID or --all, not both\n"


def test_a_bad_log_format_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "--log-format", "xml", "metrics")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "'text'" in err
    assert "'json'" in err


def test_shell_completion_is_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(monkeypatch, capsys, "--help")
    assert code == 0
    assert "--install-completion" in out
    # what bash asks when <TAB> is pressed after `igsync sync-all --sh`
    monkeypatch.setenv("_IGSYNC_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "igsync sync-all --sh")
    monkeypatch.setenv("COMP_CWORD", "2")
    code, out, _ = run_cli(monkeypatch, capsys)
    assert code == 0
    assert out.split() == ["--shard"]


def test_the_simulator_command_serves_after_a_tool_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `uv tool install .` only `igsync` is on PATH: `python -m igsync.simulator` runs
    another interpreter, without igsync (issue 12). `igsync simulator` is the same server."""
    code, out, _ = run_cli(monkeypatch, capsys, "simulator", "--help")
    assert code == 0
    assert out.startswith("usage: igsync simulator")
    assert "--latency" in out
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # the `simulator` extra not installed
    code, out, err = run_cli(monkeypatch, capsys, "simulator", "--port", "0")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "simulator extra" in err


def test_the_demo_needs_no_simulator_extra(tmp_path: Path) -> None:
    """uvicorn is the `simulator` extra: igsync without it (a fresh interpreter where importing
    uvicorn fails) still runs the demo, whose simulator runs in-process."""
    without_uvicorn = (
        "import sys; sys.modules['uvicorn'] = None; sys.argv = ['igsync', *sys.argv[1:]]; "
        "from igsync.cli import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", without_uvicorn, "demo", "--accounts", "1", "--days", "1", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path), "HOME": str(tmp_path)},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accounts_ok"] == 1


def test_install_hints_say_what_the_readme_install_section_says(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review 17: the parquet and simulator errors suggested installs the README does not
    (`uv tool install 'igsync[parquet]'`, `--with uvicorn .`); later the report, crypto and
    queue errors said `pip install 'igsync[…]'`, which would fetch whatever PyPI calls
    igsync. Each hint's install command must be one the README's "Install" section gives."""
    from igsync.errors import IgsyncError
    from igsync.export._writers import PARQUET_MISSING
    from igsync.queue import make_app
    from igsync.report._html import require_plotly
    from igsync.token_crypto import TokenKeys

    install = README.read_text().split("## Install", 1)[1].split("\n## ", 1)[0]
    for missing in ("uvicorn", "plotly", "cryptography", "cryptography.fernet", "procrastinate"):
        monkeypatch.setitem(sys.modules, missing, None)
    _, _, simulator_error = run_cli(monkeypatch, capsys, "simulator", "--port", "0")
    hints = [PARQUET_MISSING, simulator_error]
    for needs_extra in (
        require_plotly,
        lambda: TokenKeys("a-key"),
        lambda: make_app("postgresql://localhost/igsync"),
    ):
        with pytest.raises(IgsyncError) as refused:
            needs_extra()
        hints.append(str(refused.value))
    for hint in hints:
        commands = re.findall(r"(?:uv tool|pipx) install '[^']+'", hint)
        assert commands, hint
        for command in commands:
            assert command in install, command


def test_the_core_runs_with_the_collector_tuned_and_the_caller_gets_its_own_back() -> None:
    import gc

    from igsync.cli._common import GC_YOUNG_THRESHOLD, run

    async def threshold() -> tuple[int, ...]:
        return gc.get_threshold()

    before = gc.get_threshold()
    during = run(threshold())
    assert during == (GC_YOUNG_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before


def test_the_collector_the_executable_held_off_through_its_start_runs_from_the_core_on() -> None:
    """`console` disables the collector for the start; `run` turns it back on (with what
    the start made frozen), so a sync never runs without one."""
    import gc

    from igsync.cli._common import run

    async def enabled() -> bool:
        return gc.isenabled()

    gc.disable()
    try:
        assert run(enabled()) is True
        assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()  # this test process keeps collecting what it froze


def test_the_days_help_gives_the_range_the_window_allows() -> None:
    """--days' help spells its bound (the CLI does not import the window for --help)."""
    from typing import get_args

    from igsync.cli._common import DaysOpt
    from igsync.window import MAX_DAYS

    (option,) = [a for a in get_args(DaysOpt) if hasattr(a, "help")]
    assert f"1 to {MAX_DAYS} " in option.help
