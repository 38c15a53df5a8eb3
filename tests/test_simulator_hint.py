"""The `export …` line `igsync simulator` prints is pasted into a shell as it is (review 4:
`IG_LONG_TOKEN=<any non-empty string>` was a syntax error in bash)."""

from __future__ import annotations

import shutil
import subprocess

from igsync.simulator.__main__ import SIM_TOKEN, export_line

GRAPH, INSTAGRAM = "http://127.0.0.1:8765", "http://127.0.0.1:8766"


def test_the_export_line_runs_in_a_shell_and_sets_what_igsync_reads() -> None:
    account = "17841400000000001"
    bash = shutil.which("bash")
    assert bash is not None
    show = (
        'printf "%s|%s|%s|%s|%s|%s" "$IGSYNC_GRAPH_URL" "$IGSYNC_INSTAGRAM_URL" "$IG_ACCOUNT_ID"'
        ' "$IG_LONG_TOKEN" "$IG_APP_ID" "$IG_APP_SECRET"'
    )
    line = export_line(GRAPH, INSTAGRAM, account, "sim-app-id", "sim-app-secret")
    proc = subprocess.run(
        [bash, "-c", f"{line}\n{show}"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"{GRAPH}|{INSTAGRAM}|{account}|{SIM_TOKEN}|sim-app-id|sim-app-secret"
