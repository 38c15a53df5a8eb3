"""Run the `igsync` entry point in-process, as a user would from a shell."""

from __future__ import annotations

import logging
import sys

import pytest
from stamina.instrumentation import set_on_retry_hooks

from igsync.cli import main
from igsync.cli._logs import LOGGERS


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """`igsync ARGS…` through `main()`: (exit code, stdout, stderr).

    The CLI routes igsync's loggers to its own handler, as a process of its own would; they
    are put back afterwards, so that later tests' `caplog` still hears them.
    """
    saved = [
        (logger, logger.handlers[:], logger.propagate, logger.level)
        for logger in map(logging.getLogger, LOGGERS)
    ]
    monkeypatch.setattr(sys, "argv", ["igsync", *args])
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        for logger, handlers, propagate, level in saved:
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.setLevel(level)
        set_on_retry_hooks(None)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err
