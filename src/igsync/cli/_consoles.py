"""rich's consoles, apart from `_render` so that machine output never imports rich."""

from __future__ import annotations

from rich.console import Console


class StdoutConsole(Console):
    """rich's console for stdout, handing a closed pipe back to `Output._to_stdout`.

    rich's own answer to a reader that left is `SystemExit(1)` (its documented hook, meant to
    be overridden): a run whose every account succeeded would exit 1.
    """

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError
