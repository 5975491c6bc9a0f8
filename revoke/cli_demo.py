"""`revoke demo`: the local lab (examples/lab/) end to end."""

from __future__ import annotations

from typing import Annotated

import typer


def demo(
    keep: Annotated[str | None, typer.Option("--keep", help="Keep the lab (config, store, report) in this directory.")] = None,
    devices: Annotated[int, typer.Option(help="IoT device certificates issued by the runner's CA.")] = 200,
) -> None:
    """The local lab, end to end from a re-tagged CI action: collect, blast radius, plan, execute, verify, report."""
    from examples.lab.demo import run_demo

    raise typer.Exit(run_demo(keep=keep, devices=devices))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
