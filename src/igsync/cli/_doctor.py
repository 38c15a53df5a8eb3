"""`igsync doctor`: the checks of igsync.doctor as a table, or one JSON document."""

from __future__ import annotations

from typing import Annotated

import typer

from igsync.cli._common import (
    JsonOpt,
    QuietOpt,
    VerboseOpt,
    config_sources,
    globals_of,
    make_output,
    preload_tls,
    run,
)

_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


def doctor(
    ctx: typer.Context,
    no_graph: Annotated[
        bool,
        typer.Option(
            "--no-graph",
            "--offline",
            help="Skip the Graph API check (the one check that leaves this machine).",
        ),
    ] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Check that igsync, as configured here, can sync: each check ok, warn or fail, with a fix.

    Checks: configuration (and which file each setting came from), database, schema version,
    integrity (the tables' unique keys and columns), accounts this role sees, tokens by
    status and days left, app credentials, Graph API (one GET without a token). Exit 1 when
    any check fails, 0 otherwise (warnings included).
    Run it the way cron runs igsync (from $HOME, with the same --env-file):

        igsync --env-file /etc/igsync.env doctor

        igsync doctor --json | jq -r '.checks[].fix // empty'
    """
    if not no_graph:
        preload_tls()  # on a thread, while settings, the store and the rest load
    from datetime import UTC, datetime

    from igsync.cli._render import shown
    from igsync.doctor import diagnose, summary

    out = make_output(ctx, json_, quiet, verbose)
    sources = config_sources()
    with out.status("checking…"):
        report = run(
            diagnose(
                sources,
                db_override=globals_of(ctx).db,
                now=datetime.now(UTC),
                graph=not no_graph,
            )
        )
    if out.json_mode:
        out.emit_json(report)
    else:
        from rich.table import Table

        table = Table(title="igsync doctor", title_justify="left")
        for column in ("check", "status", "detail", "fix"):
            table.add_column(column, overflow="fold")
        for c in report.checks:
            status = f"[{_STYLE[c.status]}]{c.status}[/]"
            table.add_row(c.name, status, shown(c.detail), shown(c.fix or ""))
        out.print(table)
        out.print(summary(report.checks))
    if not report.ok:
        raise typer.Exit(1)
