"""`revoke report`: the incident report, optionally signed for auditors, and the check of a signed one.

Exit codes: 0 report written / signature valid; 1 the journal's hash chain is broken (the report is
still written, and says so) / signature or journal check invalid; 2 usage or input error (unknown
incident, unreadable key, missing option).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from revoke.cli_context import G, Globals, check_format, open_store, out
from revoke.errors import InputError

if TYPE_CHECKING:
    from revoke.store import Store


def report_cmd(
    ctx: typer.Context,
    incident: Annotated[str | None, typer.Option("--incident", help="Incident id.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md, html or json.")] = "md",
    out_file: Annotated[str | None, typer.Option("--out", help="Write the report to FILE (0600) instead of stdout.")] = None,
    sign: Annotated[str | None, typer.Option("--sign", metavar="KEYFILE",
                                             help="Sign with this Ed25519 private key (PEM); writes <out>.sig.json.")] = None,
    check: Annotated[str | None, typer.Option("--check", metavar="FILE",
                                              help="Check a signed statement (<report>.sig.json) instead of reporting.")] = None,
    pubkey: Annotated[str | None, typer.Option("--pubkey", metavar="PUBFILE",
                                               help="The signer's Ed25519 public key (PEM or ssh-ed25519), for --check.")] = None,
    head: Annotated[list[str] | None, typer.Option(
        "--head", metavar="SEQ:HASH", help="A journal head kept outside the store (a `journal.head` log event); "
        "the journal must still hold it, else it was truncated or rewritten (repeatable).")] = None,
) -> None:
    """The incident report: timeline, blast radius with paths, what was done, verification, journal chain."""
    from revoke.report import FORMATS

    g = G(ctx)
    if check:
        _check(g, check, pubkey, incident)
        return
    if incident is None:
        raise typer.BadParameter("give the incident id (or --check FILE --pubkey PUBFILE)", param_hint="--incident")
    check_format(fmt, FORMATS)
    if sign and not out_file:
        raise typer.BadParameter("--sign writes <out>.sig.json beside the report: give --out FILE", param_hint="--sign")
    from revoke import evidence
    from revoke.journal import Journal
    from revoke.report import build_report, render

    key = evidence.load_private_key(sign) if sign else None  # a bad key fails before anything is written
    if out_file:
        from revoke.files import refuse_symlink

        refuse_symlink(out_file, "report")
        if key is not None:
            refuse_symlink(evidence.sig_path(out_file), "signed statement")
    heads = [_parse_head(h) for h in head or []]
    store = open_store(g)
    journal = Journal(store, incident)
    journal.published_heads = heads
    report = build_report(store, journal)
    data = render(report, fmt).encode("utf-8")
    if out_file:
        evidence.write_private(out_file, data, what="report")
        out(f"report written to {out_file}")
    else:
        sys.stdout.buffer.write(data)
    if key is not None and out_file:
        env = evidence.sign(report, key, report_bytes=data, report_file=out_file, fmt=fmt)
        target = evidence.sig_path(out_file)
        evidence.write_private(target, evidence.canonical_pretty(env), what="signed statement")
        out(f"signed statement written to {target} (key {env['signature']['key']})")
        out(f"claim: {env['statement']['claim']}")
    if not report["journal"]["intact"]:
        sys.stderr.write(f"warning: the journal's hash chain is broken: {report['journal']['message']}\n")
        raise typer.Exit(1)


def _parse_head(text: str) -> tuple[int, str]:
    seq, _, hash_ = text.partition(":")
    if not seq.isdigit() or int(seq) < 1 or len(hash_) != 64 or any(c not in "0123456789abcdef" for c in hash_):
        raise InputError(f"--head: {text[:100]!r} is not SEQ:HASH (a record number and its 64-hex hash, "
                         "as in a `journal.head` log event)")
    return int(seq), hash_


def _check(g: Globals, sig_file: str, pubkey: str | None, incident: str | None) -> None:
    from revoke import evidence

    if not pubkey:
        # fail closed: without the signer's key a signature proves nothing about who made it
        raise typer.BadParameter("--check needs the signer's public key (--pubkey PUBFILE)", param_hint="--pubkey")
    key = evidence.load_public_key(pubkey)
    store = _store_if_present(g)
    res = evidence.check(sig_file, key, store=store)
    if incident is not None and res.incident is not None and incident != res.incident:
        res.bad(f"the statement is about incident {res.incident!r}, not {incident!r}")
    for line in res.lines:
        out(line)
    out("VALID" if res.valid else "INVALID")
    if not res.valid:
        raise typer.Exit(1)


def _store_if_present(g: Globals) -> Store | None:
    from revoke.store import Store, store_exists

    return Store(g.store, create=False) if store_exists(g.store) else None


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
