"""Observed use from a Vault/OpenBao file audit device: which token read which KV secret, when.

Graph contract (see `revoke.observed`):
    vault:token:<accessor> -[observed_read]-> vault:secret:<mount>/<path>
        one edge per token and secret; `attrs.events`: `{at, action: read, source:
        vault-audit:<device>, outcome: ok|denied, version}` (the KV version the response carried)
    vault:token:<accessor> (status `deleted`, `attrs.tombstone`) for a token the log names that
        no lookup returns any more (revoked or expired): its later attempts are evidence

Only response lines are read (each request has one; the response says whether it worked).
The accessor comes from `request.client_token_accessor`, plain when the device is declared
with `hmac_accessor = "false"`, else an HMAC matched against `sys/audit-hash/<device>` of the
live accessors. A revoked token's request carries no accessor at all, only the HMAC of the
token: it is matched to the accessor an earlier line of the same log paired it with (its
creation response, or any request it made while live), so the HMAC never leaves this module.
Nothing of a line is kept but accessor, path, operation, time, outcome and KV version (values in
the log are HMACed anyway). The collector's own reads are revoke's, not use: they are skipped.

The log is read as a file tail at each collection (the snapshot is replaced whole): its last
`audit_tail_mb` (default 512), from the first whole line; a line that is not JSON (a partly
written last line) is skipped. A revoked token's attempts are named only if the line pairing its
HMAC with its accessor is inside the tail.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.vault.ids import token_node_id
from revoke.connector import Collected
from revoke.model import Node, NodeKind, Relation, parse_time
from revoke.observed import DENIED, OK, Observation, to_edges

HMAC = "hmac-sha256:"


@dataclass
class AuditUse:
    observations: list[Observation] = field(default_factory=list)
    unknown_actors: set[str] = field(default_factory=set)  # accessors no lookup returned
    unresolved: int = 0  # response lines on a collected path whose token could not be named
    hmaced: set[str] = field(default_factory=set)  # accessor HMACs seen (hmac_accessor on)


def _records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if '"response"' not in line:
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(rec, dict):
            yield rec


def _learn(rec: dict[str, Any], token_to_acc: dict[str, str]) -> None:
    """Pair token HMACs with accessors wherever a line shows both."""
    req = rec.get("request") or {}
    if req.get("client_token") and req.get("client_token_accessor"):
        token_to_acc[req["client_token"]] = req["client_token_accessor"]
    made = (rec.get("response") or {}).get("auth") or {}
    if made.get("client_token") and made.get("accessor"):
        token_to_acc[made["client_token"]] = made["accessor"]


def parse_audit(lines: Iterable[str], data_paths: dict[str, str], *, source: str) -> AuditUse:
    """`data_paths`: KV API path (`secret/data/ci/db`) -> secret node id. Pure: no Vault call.
    Actors are still raw (an accessor, or its HMAC): `name_actors` turns them into token nodes."""
    out = AuditUse()
    token_to_acc: dict[str, str] = {}
    pending: list[tuple[str, str, Any, str, int | None]] = []  # (token hmac, node, time, outcome, version)
    for rec in _records(lines):
        if rec.get("type") != "response":
            continue
        _learn(rec, token_to_acc)
        req = rec.get("request") or {}
        node = data_paths.get(str(req.get("path") or ""))
        if node is None or req.get("operation") != "read":
            continue
        outcome = DENIED if rec.get("error") else OK
        meta = ((rec.get("response") or {}).get("data") or {}).get("metadata") or {}
        version = meta.get("version") if isinstance(meta, dict) and isinstance(meta.get("version"), int) else None
        acc = req.get("client_token_accessor") or ""
        if not acc:
            pending.append((str(req.get("client_token") or ""), node, rec.get("time"), outcome, version))
            continue
        _add(out, acc, node, rec.get("time"), outcome, version, source)
    for token_hmac, node, at, outcome, version in pending:
        acc = token_to_acc.get(token_hmac, "")
        if acc:
            _add(out, acc, node, at, outcome, version, source)
        else:
            out.unresolved += 1
    out.hmaced = {o.by for o in out.observations if o.by.startswith(HMAC)}
    return out


def name_actors(use: AuditUse, hmac_to_accessor: dict[str, str], skip: set[str]) -> AuditUse:
    """Accessors (HMACs matched through `sys/audit-hash`) to token node ids; `skip`: accessors
    whose reads are not use (the collector's own)."""
    out = AuditUse(unresolved=use.unresolved, hmaced=use.hmaced)
    kept = []
    for obs in use.observations:
        acc = obs.by
        if acc.startswith(HMAC):
            if acc not in hmac_to_accessor:
                out.unresolved += 1
                continue
            acc = hmac_to_accessor[acc]
        if acc in skip:
            continue
        kept.append(Observation(token_node_id(acc), obs.rel, obs.target, obs.at, obs.action, obs.source,
                                obs.outcome, obs.version))
    out.observations = kept
    return out


def _add(out: AuditUse, acc: str, node: str, at: Any, outcome: str, version: int | None, source: str) -> None:
    try:
        when = parse_time(at, field_name="time")
    except Exception:  # a line without a readable time proves nothing
        return
    if when is not None:
        out.observations.append(Observation(acc, Relation.OBSERVED_READ, node, when, "read", source, outcome, version))


def tombstones(use: AuditUse, live_accessors: Iterable[str]) -> list[Node]:
    """Tokens the log names that are gone now: dead nodes, so the walk stops at them."""
    gone = sorted({o.by for o in use.observations} - {token_node_id(a) for a in live_accessors})
    return [Node(nid, NodeKind.TOKEN, "vault", status="deleted", attrs={"tombstone": True, "seen_in": "audit log"})
            for nid in gone]


def read_lines(path: str, tail_bytes: int = 0) -> Iterator[str]:
    """The log's lines; with `tail_bytes`, only its last `tail_bytes` (from the first whole line)."""
    with Path(path).open("rb") as fh:
        size = fh.seek(0, 2)
        if tail_bytes and size > tail_bytes:
            fh.seek(size - tail_bytes - 1)
            if fh.read(1) != b"\n":
                fh.readline()  # a cut line is no record
        else:
            fh.seek(0)
        for raw in fh:
            yield raw.decode("utf-8", errors="replace")


def log_size(path: str) -> int:
    return Path(path).stat().st_size


def observe(api: Any, opts: Any, lookups: dict[str, dict[str, Any]], data_paths: dict[str, str], collector: str,
            out: Collected) -> None:
    """Add observed-use edges (and tombstones for gone tokens) from `opts.audit_log` to `out`."""
    from connectors.vault import collect as get
    from connectors.vault.snapshot import _find_audit_device, _finding

    if not opts.audit_log:
        out.findings.append(_finding("observations_no_audit_log", "observations: true needs audit_log (a file "
                                     "audit device declared in the server config); no observed use collected"))
        return
    device = opts.audit_device or _find_audit_device(api, opts.audit_log) or "file"
    tail = opts.audit_tail_mb * 1024 * 1024
    try:
        if log_size(opts.audit_log) > tail:
            out.findings.append(_finding("audit_log_tail", f"audit log {opts.audit_log} is larger than audit_tail_mb "
                                         f"({opts.audit_tail_mb}); observed use read from its last part only", "info"))
        raw = parse_audit(read_lines(opts.audit_log, tail), data_paths, source=f"vault-audit:{device}")
    except OSError as exc:
        out.findings.append(_finding("audit_log_unreadable", f"audit log {opts.audit_log}: {exc.strerror}; "
                                     "no observed use collected", "error"))
        return
    hashes = get.get_audit_hashes(api, device, lookups) if raw.hmaced else {}
    use = name_actors(raw, hashes, {collector} if collector else set())
    if use.unresolved:
        out.findings.append(_finding("audit_unresolved", f"{use.unresolved} audit lines on collected KV paths name "
                                     "no token revoke can identify (a revoked token's HMACed accessor; declare the "
                                     "device with hmac_accessor = \"false\")", "info"))
    out.nodes += tombstones(use, lookups)
    out.edges += to_edges(use.observations)
    out.meta["observations"] = {"source": f"vault-audit:{device}", "events": len(use.observations)}
