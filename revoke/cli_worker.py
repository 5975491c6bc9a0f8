"""`revoke worker`: claim and run jobs from a Postgres store (revoke/worker.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from revoke.cli_context import G, console


def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run one job (if any) and exit.")] = False,
    idle_exit: Annotated[float | None, typer.Option(
        "--idle-exit", metavar="SECONDS",
        help="Exit after this long with nothing to claim (default: run until stopped).")] = None,
    lease: Annotated[float, typer.Option(
        "--lease", metavar="SECONDS", help="How long a claim lasts without a heartbeat; a dead worker's job is "
        "retried by another after this.")] = 30.0,
) -> None:
    """Claim jobs from a postgresql:// store and run them: collections (`revoke collect --workers`) and plan
    steps (`revoke run --execute --workers`). A worker needs what revoke.yaml references (environment variables,
    profiles) and, for plan steps, the same playbook file."""
    from revoke.errors import InputError
    from revoke.worker import default_handlers, run

    if lease < 1:
        raise InputError("--lease: at least 1 second")
    stats = run(G(ctx).store, default_handlers(G(ctx).store), lease=lease, once=once, idle_exit=idle_exit)
    console().print(f"worker: {stats.done} job(s) done, {stats.failed} failed, {stats.lost} dropped (taken over)")


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
