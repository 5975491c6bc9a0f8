"""Hygiene and export commands: `revoke sweep`, `revoke export`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from revoke.errors import InputError

if TYPE_CHECKING:
    from revoke.sweep import Finding, RuleConfig

SWEEP_FORMATS = ("table", "json", "md", "html")
EXPORT_SUFFIXES = {".graphml": "graphml", ".xml": "graphml", ".dot": "dot", ".gv": "dot", ".json": "json"}


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    # an InputError, not typer.BadParameter: the entry point maps it to exit 2 with one line
    if value not in allowed:
        raise InputError(f"{option}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _write(path: str, data: bytes) -> None:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        raise InputError(f"cannot write output: {exc.strerror}", source=path) from None


def sweep(
    ctx: typer.Context,
    rules: Annotated[str | None, typer.Option("--rules", help="Rules file (YAML): thresholds, severities, rules off.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, md or html.")] = "table",
    fail_on: Annotated[str, typer.Option("--fail-on", help="Exit 1 when a finding at or above this severity exists "
                                         "(info, low, medium, high, critical, or none).")] = "high",
    out_file: Annotated[str | None, typer.Option("--out", help="Write the output to FILE instead of stdout.")] = None,
) -> None:
    """Hygiene findings over the collected graph; exit 1 when findings at or above --fail-on exist."""
    from revoke.cli import G, open_store, out
    from revoke.sweep import at_or_above, default_config, parse_severity, severity_counts, sweep_store

    _choice("--format", fmt, SWEEP_FORMATS)
    floor = None if fail_on.lower() == "none" else parse_severity(fail_on, where="--fail-on")
    g = G(ctx)
    if rules:
        from revoke.sweep_config import load_rules

        config = load_rules(rules)
    else:
        config = default_config()
    findings = sweep_store(open_store(g), config)
    if g.log_format == "json":
        _log_findings(findings)
    data = _render(findings, config, fmt, fail_on=floor.value if floor else None)
    if out_file:
        _write(out_file, data)
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


def _render(findings: list[Finding], config: dict[str, RuleConfig], fmt: str, *, fail_on: str | None) -> bytes:
    from revoke import sweep_render

    if fmt == "json":
        import orjson

        return orjson.dumps(sweep_render.to_json(findings, config, fail_on=fail_on)) + b"\n"
    if fmt == "md":
        return sweep_render.markdown(findings, config).encode()
    if fmt == "html":
        return sweep_render.html_report(findings, config).encode()
    import io

    from rich.console import Console

    from revoke.cli import console

    width = console().width
    buf = io.StringIO()
    # colour only for a terminal; a file or a pipe gets plain text
    # emoji off: ids such as `vault:secret:...` would otherwise render `:secret:` as an emoji
    out = Console(file=buf, width=width, force_terminal=sys.stdout.isatty(), no_color=not sys.stdout.isatty(),
                  emoji=False, highlight=False)
    sweep_render.table(out, findings)
    return buf.getvalue().encode()


def export(
    ctx: typer.Context,
    fmt: Annotated[str | None, typer.Option("--format", help="graphml, dot or json (node-link); default from --out's "
                                            "suffix, else json.")] = None,
    out_file: Annotated[str | None, typer.Option("--out", help="Write to FILE instead of stdout.")] = None,
) -> None:
    """The whole graph for Gephi, Graphviz, networkx or Neo4j (no secret values, no fingerprints)."""
    from revoke.cli import G, open_store, out
    from revoke.export import FORMATS, from_store, render

    if fmt is None:
        fmt = EXPORT_SUFFIXES.get(Path(out_file).suffix.lower(), "json") if out_file else "json"
    _choice("--format", fmt, FORMATS)
    graph = from_store(open_store(G(ctx)))
    data = render(graph, fmt)
    if out_file:
        _write(out_file, data)
        out(f"export: {len(graph.nodes)} nodes, {len(graph.edges)} edges written to {out_file} ({fmt})")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    present = {c.name for c in app.registered_commands}
    if "sweep" not in present:
        app.command("sweep")(sweep)
    if "export" not in present:
        app.command("export")(export)
