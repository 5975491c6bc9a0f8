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
    escrow, region = None, None
    config_path = G(ctx).config
    if Path(config_path).exists():
        # limit the output to the connectors this deployment configures, and fill in its escrow
        from revoke.config import load_config

        config = load_config(config_path)
        types = sorted({c.type for c in config.connectors})
        escrow = config.escrow
        if escrow is not None and escrow.type == "aws":
            block = next((c for c in config.connectors if c.name == escrow.connector), None)
            region = str(block.options.get("region") or "") or None if block is not None else None
    report = permissions_report(pb, types, rollback=rollback, vault_mounts=mounts, escrow=escrow, aws_region=region)
    if fmt == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        out(render_text(report))


def register(app: typer.Typer) -> None:
    app.command("permissions")(permissions_cmd)
