"""Graph commands: `revoke collect`, `blast-radius`, `explain`, `export`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from revoke.cli_context import G, check_format, console, is_terminal, open_store, out, write_output
from revoke.errors import RevokeError
from revoke.textsafe import safe

EXPORT_SUFFIXES = {".graphml": "graphml", ".xml": "graphml", ".dot": "dot", ".gv": "dot", ".json": "json"}


def collect(
    ctx: typer.Context,
    only: Annotated[list[str] | None, typer.Option("--only", help="Collect only these connector names.")] = None,
    allow_empty: Annotated[bool, typer.Option(help="Accept an empty snapshot replacing a non-empty one.")] = False,
    observations: Annotated[bool, typer.Option("--observations", help="Also read observed use (audit logs, "
                                               "last-used data) in every connector that can.")] = False,
    workers: Annotated[bool, typer.Option("--workers", help="Enqueue one job per connector, AWS account or GCP "
                                          "project for `revoke worker` processes (postgresql:// store) and wait "
                                          "for them.")] = False,
) -> None:
    """Run the configured connectors and write the graph."""
    import contextlib

    from revoke.collect import collect as run_collect
    from revoke.config import load_config
    from revoke.store import is_postgres, parse_url, store_exists

    g = G(ctx)
    config = load_config(g.config)
    existed = store_exists(g.store)
    folder_existed = is_postgres(g.store) or parse_url(g.store).parent.exists()
    store = open_store(g, create=True)
    try:
        report = run_collect(config, store, only=only, allow_empty=allow_empty, observations=observations,
                             workers=workers, progress=_progress if workers else None)
    except RevokeError:
        if not existed:  # bad input must leave nothing behind, not even an empty store
            store.close()
            for suffix in ("", "-wal", "-shm"):
                parse_url(g.store).with_name(parse_url(g.store).name + suffix).unlink(missing_ok=True)
            if not folder_existed:
                with contextlib.suppress(OSError):  # the folder too, if this run made it
                    parse_url(g.store).parent.rmdir()
        raise
    from revoke.tables import cell

    c = console()
    for name, (n, e) in report.collected.items():
        c.print(f"[green]collected[/] {cell(name)}: {n} nodes, {e} edges")
    for name, err in report.failed.items():
        kept = "previous snapshot kept" if name in report.kept else "no earlier snapshot"
        c.print(f"[red]failed[/] {cell(name)}: {cell(err)} ({kept})")
    for f in report.findings:
        c.print(cell(f"finding [{f['severity']}] {f['connector']}: {f['code']}: {f['message']}"))
    c.print(f"graph: {report.nodes} nodes, {report.edges} edges")
    if not report.ok:
        raise typer.Exit(1)


def _progress(counts: dict[str, int]) -> None:
    console().print("jobs: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))


def blast_radius_cmd(
    ctx: typer.Context,
    nodes: Annotated[list[str], typer.Argument(help="Compromised node ids.")],
    window: Annotated[str | None, typer.Option("--window", help="Exposure window START/END (ISO-8601).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or tsv.")] = "table",
    observed: Annotated[bool, typer.Option("--observed", help="Add observed use (audit logs, last-used data); "
                                           "observed-used credentials first.")] = False,
) -> None:
    """Every credential and holder reachable from the compromised nodes, with paths."""
    from revoke.blast import Window, blast_radius, resolve_sources

    check_format(fmt, ("table", "json", "tsv"))
    win = Window.parse(window) if window else None
    store = open_store(G(ctx))
    graph = store.load_compiled()
    radius = blast_radius(graph, resolve_sources(graph, nodes), window=win)
    from revoke.collection_gaps import warn_gaps

    warn_gaps(store)
    data = radius.to_json()
    if observed:
        from revoke.observed import ObservedEdges, annotate

        annotate(data, ObservedEdges.load(store), win.start if win else None)
    if fmt == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(data) + b"\n")
        return
    from revoke.tables import IdCells, blast_table, blast_tsv

    if fmt == "tsv":
        sys.stdout.write(blast_tsv(data))
        return
    ids = IdCells(short=is_terminal())
    if ids.short:  # a shortened id reads better with its name: `x509:ca:bce5…935a (Acme IoT Device CA)`
        shown = [e["id"] for e in (*data["credentials"][:500], *data["holders"][:500])]
        ids.names = {nid: n.name for nid, n in store.load_nodes(shown).items() if n.name}
    blast_table(console(), data, ids=ids)


def explain(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="Compromised node id.")],
    target: Annotated[str, typer.Argument(help="Node whose exposure to explain.")],
    window: Annotated[str | None, typer.Option("--window")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Why TARGET is reachable from NODE: one shortest path, with the relation on each hop."""
    from revoke.blast import Window, blast_radius, resolve_sources

    check_format(fmt, ("text", "json"))
    store = open_store(G(ctx))
    graph = store.load_compiled()
    sources = resolve_sources(graph, [node])
    resolve_sources(graph, [target])
    radius = blast_radius(graph, sources, window=Window.parse(window) if window else None)
    hops = radius.hops(target)
    from revoke.observed import ObservedEdges, in_graph, observed_hops

    seen = observed_hops(ObservedEdges.load(store), radius.path_ids(target) or [], target) \
        if hops and in_graph(graph) else []
    if fmt == "json":
        import orjson

        answer = {"node": node, "target": target, "reachable": hops is not None,
                  "hops": [{"from": a, "rel": r, "to": b} for a, r, b in hops or []]}
        if seen:  # the observed hop, when there is one
            answer["observed"] = seen
        out(orjson.dumps(answer).decode())
    elif hops is None:
        out(f"{safe(target)} is not reachable from {safe(node)}")
    elif not hops:
        out(f"{safe(target)} is the compromised node itself")
    else:
        out(safe(hops[0][0]))
        for _, rel, b in hops:
            out(f"  --{rel}--> {safe(b)}")
        for o in seen:  # the hop the attacker's credential was seen taking
            out(f"observed: {safe(o['from'])} --{o['rel']}--> {safe(o['to'])} "
                f"({o['count']} times, {safe(o['first'])} .. {safe(o['last'])})")
    if hops is None:
        raise typer.Exit(1)


def export(
    ctx: typer.Context,
    fmt: Annotated[str | None, typer.Option("--format", help="graphml, dot or json (node-link); default from --out's "
                                            "suffix, else json.")] = None,
    out_file: Annotated[str | None, typer.Option("--out", help="Write to FILE instead of stdout.")] = None,
) -> None:
    """The whole graph for Gephi, Graphviz, networkx or Neo4j (no secret values, no fingerprints)."""
    from revoke.export import FORMATS, from_store, render

    if fmt is None:
        fmt = EXPORT_SUFFIXES.get(Path(out_file).suffix.lower(), "json") if out_file else "json"
    check_format(fmt, FORMATS)
    graph = from_store(open_store(G(ctx)))
    data = render(graph, fmt)
    if out_file:
        write_output(out_file, data)
        out(f"export: {len(graph.nodes)} nodes, {len(graph.edges)} edges written to {out_file} ({fmt})")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)
    app.command("blast-radius")(blast_radius_cmd)
    app.command("explain")(explain)
    app.command("export")(export)
