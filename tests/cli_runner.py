"""Run the `igsync` entry point in-process, as a user would from a shell."""

from __future__ import annotations

import sys

import pytest

from igsync.cli import main


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """`igsync ARGS…` through `main()`: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["igsync", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err
