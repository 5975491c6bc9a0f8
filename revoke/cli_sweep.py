"""`revoke sweep`: hygiene findings over the collected graph, as a table, JSON, Markdown or HTML."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from revoke.cli_context import G, check_format, console, open_store, out, write_output

if TYPE_CHECKING:
    from revoke.sweep import Finding, RuleConfig

SWEEP_FORMATS = ("table", "json", "md", "html", "tsv")


def sweep(
    ctx: typer.Context,
    rules: Annotated[str | None, typer.Option("--rules", help="Rules file (YAML): thresholds, severities, rules off.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, md, html or tsv.")] = "table",
    fail_on: Annotated[str, typer.Option("--fail-on", help="Exit 1 when a finding at or above this severity exists "
                                         "(info, low, medium, high, critical, or none).")] = "high",
    out_file: Annotated[str | None, typer.Option("--out", help="Write the output to FILE instead of stdout.")] = None,
) -> None:
    """Hygiene findings over the collected graph; exit 1 when findings at or above --fail-on exist."""
    from revoke.sweep import at_or_above, default_config, parse_severity, severity_counts, sweep_store

    check_format(fmt, SWEEP_FORMATS)
    floor = None if fail_on.lower() == "none" else parse_severity(fail_on, where="--fail-on")
    g = G(ctx)
    if rules:
        from revoke.sweep_config import load_rules

        config = load_rules(rules)
    else:
        config = default_config()
    store = open_store(g)
    findings = sweep_store(store, config)
    from revoke.collection_gaps import warn_gaps

    warn_gaps(store)
    if g.log_format == "json":
        _log_findings(findings)
    data = _render(findings, config, fmt, fail_on=floor.value if floor else None, out_file=out_file)
    if out_file:
        write_output(out_file, data)
        counts = ", ".join(f"{n} {s}" for s, n in severity_counts(findings).items() if n) or "none"
        out(f"sweep: {len(findings)} findings ({counts}) written to {out_file}")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    if floor is not None and at_or_above(findings, floor):
        raise typer.Exit(1)


def _log_findings(findings: list[Finding]) -> None:
    """One structured event per finding, shaped by the OCSF Detection Finding mapping
    (`revoke.ocsf`). Logged at warning (error for high and critical) so the default level shows them."""
    from datetime import UTC, datetime

    import structlog

    from revoke.ocsf import finding_event

    log = structlog.get_logger()
    now = datetime.now(UTC)
    for f in findings:
        event = finding_event(f, time=now)
        emit = log.error if f.severity.rank >= 3 else log.warning
        emit("sweep.finding", **event)


def _render(findings: list[Finding], config: dict[str, RuleConfig], fmt: str, *, fail_on: str | None,
            out_file: str | None = None) -> bytes:
    from revoke import sweep_render

    if fmt == "json":
        import orjson

        return orjson.dumps(sweep_render.to_json(findings, config, fail_on=fail_on)) + b"\n"
    if fmt == "md":
        return sweep_render.markdown(findings, config).encode()
    if fmt == "html":
        return sweep_render.html_report(findings, config).encode()
    if fmt == "tsv":
        return sweep_render.tsv_text(findings).encode()
    import io

    from revoke.tables import IdCells, safe_console

    buf = io.StringIO()
    # colour and shortened ids only for a terminal; a file or a pipe gets plain text, never folded
    terminal = sys.stdout.isatty() and out_file is None
    table_console = safe_console(terminal=terminal, file=buf, width=console().width if terminal else None,
                                 force_terminal=terminal, no_color=not terminal)
    sweep_render.table(table_console, findings, ids=IdCells(short=terminal))
    return buf.getvalue().encode()


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
