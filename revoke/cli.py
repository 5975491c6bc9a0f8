"""The `revoke` command. Exit codes: 0 success, 1 findings / failed verification, 2 usage or input error.

Heavy imports (numpy, scipy, provider SDKs) happen inside commands, so `revoke --help` stays fast.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from revoke.errors import RevokeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Credential and trust revocation orchestrator: blast radius, playbooks, journaled execution, verification.",
)


@dataclass
class Globals:
    store: str
    config: str
    log_format: str
    verbose: bool


def G(ctx: typer.Context) -> Globals:
    return ctx.obj  # type: ignore[no-any-return]


@app.callback()
def _globals(
    ctx: typer.Context,
    store: Annotated[str, typer.Option("--store", help="Store URL.", envvar="REVOKE_STORE")] = "sqlite:///./.revoke/revoke.db",
    config: Annotated[str, typer.Option("--config", help="Connector configuration.")] = "./revoke.yaml",
    log_format: Annotated[str, typer.Option("--log-format", help="console or json (to stderr).")] = "console",
    log_level: Annotated[str | None, typer.Option(
        "--log-level", help="debug, info, warning, error (default: info for json, so every action and finding is "
        "an event; warning for console).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Tracebacks for errors.")] = False,
) -> None:
    from revoke import logs

    if log_format not in ("console", "json"):
        raise typer.BadParameter("must be console or json", param_hint="--log-format")
    if log_level is None:
        log_level = "debug" if verbose else ("info" if log_format == "json" else "warning")
    if log_level not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter("must be debug, info, warning or error", param_hint="--log-level")
    logs.configure(log_format, log_level)
    ctx.obj = Globals(store, config, log_format, verbose)


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def console() -> Any:
    import os

    from rich.console import Console

    # tables piped to a file or a ticket should not wrap ids at 80 columns
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "200"))
    return Console(width=width, emoji=False, highlight=False)


def check_format(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"must be one of {', '.join(allowed)}", param_hint="--format")
    return value


def open_store(g: Globals, *, create: bool = False) -> Any:
    from revoke.store import Store

    return Store(g.store, create=create)


# ---------------------------------------------------------------------------------------------------
@app.command()
def collect(
    ctx: typer.Context,
    only: Annotated[list[str] | None, typer.Option("--only", help="Collect only these connector names.")] = None,
    allow_empty: Annotated[bool, typer.Option(help="Accept an empty snapshot replacing a non-empty one.")] = False,
) -> None:
    """Run the configured connectors and write the graph."""
    import contextlib

    from revoke.collect import collect as run_collect
    from revoke.config import load_config
    from revoke.store import parse_url

    g = G(ctx)
    config = load_config(g.config)
    existed = parse_url(g.store).exists()
    folder_existed = parse_url(g.store).parent.exists()
    store = open_store(g, create=True)
    try:
        report = run_collect(config, store, only=only, allow_empty=allow_empty)
    except RevokeError:
        if not existed:  # bad input must leave nothing behind, not even an empty store
            store.close()
            for suffix in ("", "-wal", "-shm"):
                parse_url(g.store).with_name(parse_url(g.store).name + suffix).unlink(missing_ok=True)
            if not folder_existed:
                with contextlib.suppress(OSError):  # the folder too, if this run made it
                    parse_url(g.store).parent.rmdir()
        raise
    from rich.markup import escape

    c = console()
    for name, (n, e) in report.collected.items():
        c.print(f"[green]collected[/] {escape(name)}: {n} nodes, {e} edges")
    for name, err in report.failed.items():
        c.print(f"[red]failed[/] {escape(name)}: {escape(err)} (previous snapshot kept)")
    for f in report.findings:
        c.print(escape(f"finding [{f['severity']}] {f['connector']}: {f['code']}: {f['message']}"))
    c.print(f"graph: {report.nodes} nodes, {report.edges} edges")
    if not report.ok:
        raise typer.Exit(1)


@app.command("blast-radius")
def blast_radius_cmd(
    ctx: typer.Context,
    nodes: Annotated[list[str], typer.Argument(help="Compromised node ids.")],
    window: Annotated[str | None, typer.Option("--window", help="Exposure window START/END (ISO-8601).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Every credential and holder reachable from the compromised nodes, with paths."""
    from revoke.blast import Window, blast_radius, resolve_sources

    check_format(fmt, ("table", "json"))
    win = Window.parse(window) if window else None
    store = open_store(G(ctx))
    graph = store.load_compiled()
    radius = blast_radius(graph, resolve_sources(graph, nodes), window=win)
    data = radius.to_json()
    if fmt == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(data) + b"\n")
        return
    from revoke.render import blast_table

    blast_table(console(), data)


@app.command()
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
    if fmt == "json":
        import orjson

        out(orjson.dumps({"node": node, "target": target, "reachable": hops is not None,
                          "hops": [{"from": a, "rel": r, "to": b} for a, r, b in hops or []]}).decode())
    elif hops is None:
        out(f"{target} is not reachable from {node}")
    elif not hops:
        out(f"{target} is the compromised node itself")
    else:
        out(hops[0][0])
        for _, rel, b in hops:
            out(f"  --{rel}--> {b}")
    if hops is None:
        raise typer.Exit(1)


@app.command()
def demo(
    keep: Annotated[str | None, typer.Option("--keep", help="Keep the lab (config, store, report) in this directory.")] = None,
    devices: Annotated[int, typer.Option(help="IoT device certificates issued by the runner's CA.")] = 200,
) -> None:
    """The local lab, end to end: collect, blast radius, plan, execute, verify, report."""
    from examples.lab.demo import run_demo

    raise typer.Exit(run_demo(keep=keep, devices=devices))


def _register_more() -> None:
    from revoke import cli_admin, cli_incident, cli_more, cli_report

    cli_incident.register(app)
    cli_more.register(app)
    cli_report.register(app)
    cli_admin.register(app)


def _bundled_click(name: str) -> tuple[type[BaseException], ...]:
    """The `name` exception class of every other copy of click loaded (typer may bundle its own)."""
    import click

    ours = getattr(click.exceptions, name)
    found = {getattr(mod, name, None) for mod in _click_modules()} - {None, ours}
    return tuple(found)  # type: ignore[arg-type]


def _click_modules() -> list[Any]:
    mods = []
    for name, mod in list(sys.modules.items()):
        if name.endswith("click.exceptions") and mod is not None:
            mods.append(mod)
    return mods


GLOBAL_VALUE_OPTIONS = ("--store", "--config", "--log-format", "--log-level")
GLOBAL_FLAGS = ("--verbose", "-v")


def hoist_globals(argv: list[str]) -> list[str]:
    """Global options are accepted anywhere (`revoke collect --config x.yaml --store URL`, as the
    contract writes them, or `revoke --store URL collect`): move them before the command."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_VALUE_OPTIONS:
            if "=" in arg or i + 1 >= len(argv):
                front.append(arg)
                i += 1
            else:
                front += [arg, argv[i + 1]]
                i += 2
            continue
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:
    import click

    _register_more()
    verbose = "--verbose" in sys.argv or "-v" in sys.argv
    try:
        rc = app(args=hoist_globals(sys.argv[1:]), prog_name="revoke", standalone_mode=False)
    except (click.exceptions.ClickException, *_bundled_click("ClickException")) as exc:
        # typer may ship its own copy of click: catch both families of usage errors
        exc.show()
        rc = getattr(exc, "exit_code", 2)
    except (click.exceptions.Abort, *_bundled_click("Abort")):
        sys.stderr.write("aborted\n")
        rc = 2
    except RevokeError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        sys.stderr.write(f"error: {exc.diagnostic()}\n")
        rc = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; re-run the same command to resume\n")
        rc = 130
    except Exception as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        from revoke.logs import redact

        sys.stderr.write(f"internal error: {type(exc).__name__}: {redact(str(exc))} (re-run with --verbose for a traceback)\n")
        rc = 1
    sys.exit(rc if isinstance(rc, int) else 0)
