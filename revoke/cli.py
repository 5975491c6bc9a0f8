"""The `revoke` command. Exit codes: 0 success, 1 findings / failed verification, 2 usage or input error.

This module holds the app, its global options and the entry point's mapping of errors to exit
codes; each command family lives in its own module (`cli_graph`, `cli_demo`, `cli_incident`,
`cli_sweep`, `cli_report`, `cli_permissions`), registered here once. Heavy imports (numpy,
scipy, provider SDKs) happen inside commands, so `revoke --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import click
import typer

from revoke import cli_demo, cli_graph, cli_incident, cli_permissions, cli_report, cli_sweep, cli_worker
from revoke.cli_context import Globals
from revoke.errors import RevokeError
from revoke.textsafe import safe

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Credential and trust revocation orchestrator: blast radius, playbooks, journaled execution, verification.",
)


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
    journal_key: Annotated[str | None, typer.Option(
        "--journal-key", metavar="FILE", help="Ed25519 private key (PEM) that signs the journal's head at every "
        "verify, attestation and finalize (default: `journal: {signing_key: FILE}` in revoke.yaml).")] = None,
) -> None:
    from revoke import journal_key as journal_keys
    from revoke import logs

    if log_format not in ("console", "json"):
        raise typer.BadParameter("must be console or json", param_hint="--log-format")
    if log_level is None:
        log_level = "debug" if verbose else ("info" if log_format == "json" else "warning")
    if log_level not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter("must be debug, info, warning or error", param_hint="--log-level")
    logs.configure(log_format, log_level)
    journal_keys.configure(journal_key, config)
    ctx.obj = Globals(store, config, log_format, verbose)


# the order of `revoke --help`
for _family in (cli_graph, cli_demo, cli_incident, cli_sweep, cli_report, cli_permissions, cli_worker):
    _family.register(app)


def _usage_errors() -> tuple[type[click.ClickException], ...]:
    return (click.exceptions.ClickException, *_bundled_click("ClickException"))


def _aborts() -> tuple[type[click.exceptions.Abort], ...]:
    return (click.exceptions.Abort, *_bundled_click("Abort"))


def _bundled_click(name: str) -> tuple[Any, ...]:
    """The `name` exception class of every other copy of click loaded (typer may bundle its own),
    looked up when an error is caught: a copy may be first imported while a command runs."""
    ours = getattr(click.exceptions, name)
    found = {getattr(mod, name, None) for mod in _click_modules()} - {None, ours}
    return tuple(found)


def _click_modules() -> list[Any]:
    mods = []
    for name, mod in list(sys.modules.items()):
        if name.endswith("click.exceptions") and mod is not None:
            mods.append(mod)
    return mods


GLOBAL_VALUE_OPTIONS = ("--store", "--config", "--log-format", "--log-level", "--journal-key")
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


def usage_line(exc: click.ClickException) -> str:
    """A usage error on one line, shown safely: click's message quotes the arguments as typed (an
    unknown option, a bad value), and a typed argument may hold escapes, a newline or a bidi
    override. Where to read the usage is said, not printed."""
    path = getattr(getattr(exc, "ctx", None), "command_path", None)
    where = f" (see `{safe(path)} --help`)" if path else ""
    return f"error: {safe(exc.format_message())}{where}"


def main() -> None:
    import warnings

    # urllib3 warns about SOCKS support on import where a proxy variable names socks://: noise, not
    # an outcome of the command (loopback never goes through a proxy)
    warnings.filterwarnings("ignore", message=".*SOCKS.*")
    verbose = "--verbose" in sys.argv or "-v" in sys.argv
    try:
        rc = app(args=hoist_globals(sys.argv[1:]), prog_name="revoke", standalone_mode=False)
    except _usage_errors() as exc:
        # typer may ship its own copy of click: catch both families of usage errors
        sys.stderr.write(usage_line(exc) + "\n")
        rc = getattr(exc, "exit_code", 2)
    except _aborts():
        sys.stderr.write("aborted\n")
        rc = 2
    except RevokeError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        # one line, whatever the diagnosis quotes (an id, a "did you mean" suggestion, a file's field)
        sys.stderr.write(f"error: {safe(exc.diagnostic())}\n")
        rc = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; re-run the same command to resume\n")
        rc = 130
    except Exception as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        from revoke.logs import redact

        sys.stderr.write(f"internal error: {type(exc).__name__}: {safe(redact(str(exc)))} "
                         "(re-run with --verbose for a traceback)\n")
        rc = 1
    sys.exit(rc if isinstance(rc, int) else 0)
