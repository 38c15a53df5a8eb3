"""The `export …` line `igsync simulator` prints is pasted into a shell as it is (review 4:
`IG_LONG_TOKEN=<any non-empty string>` was a syntax error in bash)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from igsync.simulator.__main__ import SIM_TOKEN, export_line

GRAPH, INSTAGRAM = "http://127.0.0.1:8765", "http://127.0.0.1:8766"


@pytest.mark.parametrize("account", ["17841400000000001", None])
def test_the_export_line_runs_in_a_shell_and_sets_what_igsync_reads(account: str | None) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    show = 'printf "%s|%s|%s|%s" "$IGSYNC_GRAPH_URL" "$IGSYNC_INSTAGRAM_URL" "$IG_ACCOUNT_ID" '
    proc = subprocess.run(
        [bash, "-c", f'{export_line(GRAPH, INSTAGRAM, account)}\n{show}"$IG_LONG_TOKEN"'],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"{GRAPH}|{INSTAGRAM}|{account or ''}|{SIM_TOKEN}"
