"""`revoke permissions`: the least privilege revoke itself needs to run a playbook."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from revoke.cli_context import G, check_format, out
from revoke.errors import InputError


def permissions_cmd(
    ctx: typer.Context,
    playbook: Annotated[str, typer.Option("--playbook", help="Playbook file (or a shipped playbook's name).")],
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    rollback: Annotated[bool, typer.Option("--rollback", help="Also grant what `revoke rollback` needs.")] = False,
    vault_mount: Annotated[list[str] | None, typer.Option(
        "--vault-mount", help="Mount paths for the Vault policy, e.g. kv=secret pki=pki approle=approle.")] = None,
) -> None:
    """The IAM policy, Vault policy and GCP role revoke needs to run PLAYBOOK, and no more."""
    from pathlib import Path

    from revoke.permissions import permissions_report, render_text
    from revoke.playbook import load_playbook

    check_format(fmt, ("text", "json"))
    mounts: dict[str, str] = {}
    for item in vault_mount or []:
        key, sep, value = item.partition("=")
        if not sep or key not in ("kv", "pki", "approle") or not value.strip("/"):
            raise InputError(f"--vault-mount: expected kv=PATH, pki=PATH or approle=PATH, got {item!r}")
        mounts[key] = value.strip("/")
    pb = load_playbook(playbook)
    types: list[str] | None = None
    config_path = G(ctx).config
    if Path(config_path).exists():
        # limit the output to the connectors this deployment configures
        from revoke.config import load_config

        types = sorted({c.type for c in load_config(config_path).connectors})
    report = permissions_report(pb, types, rollback=rollback, vault_mounts=mounts)
    if fmt == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        out(render_text(report))


def register(app: typer.Typer) -> None:
    app.command("permissions")(permissions_cmd)
