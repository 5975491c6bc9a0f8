"""When a re-collection may keep a snapshot as it is: `verify` re-collects incrementally.

A file-based connector (one that defines `source_digest()`: the inventory, x509 files and trust
stores) has its sources fingerprinted when it collects: a SHA-256 over every file it reads (path,
where the path resolves to, whether it is a link, size, mode, owner, content), taken *before* it
reads them, so a file changed during the read never matches later. The snapshot's meta keeps it
(`meta["source_fingerprint"]`) with:
- `options`: a digest of the connector's configured options (another path, another holder map);
- `valid_until`: the earliest expiry still ahead when it was collected (a node past it is dead
  now, and a re-read would say so);
- `references`: the nodes its input names that other connectors collect (an inventory edge to an
  AWS key), each resolved then as collected elsewhere (`known`) or as a provider no configured
  connector reads (`unchecked`). Anything else (a tombstone made, too many names) is `None`: that
  snapshot is always re-read, since its content depended on what other snapshots held.

A snapshot is reused only when all of that still holds: same digest, same options, not past
`valid_until`, last collection did not fail, and, once the other connectors are re-collected,
every `known` reference is still collected by another snapshot and every `unchecked` provider is
still not configured. Provider connectors (no `source_digest`) are always re-collected: their
state changes without a trace revoke could check cheaply. When in doubt, re-collect.

The compiled graph is reused as is when no snapshot changed: collect records which snapshots
(name, time taken) it compiled (`meta` key `compiled_from`), and a verify that re-collected
nothing and finds the same list loads the stored graph instead of compiling again.
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revoke.config import Config, ConnectorConfig
from revoke.connector import Connector, connector_class
from revoke.model import Node, provider_of
from revoke.store import SnapshotInfo, Store

SOURCE = "source_fingerprint"  # the snapshot meta key of the record above (the inventory uses `source`)
MAX_REFERENCES = 100_000  # beyond this, the snapshot is always re-read (its meta stays small)
COMPILED_FROM = "compiled_from"


def digest_files(files: Iterable[Path], *, extra: Iterable[str] = ()) -> str:
    """One digest over each file's identity and content (a missing or unreadable file is part of
    the digest, as such). Content is always hashed: a rewrite within one mtime tick, same size,
    is still seen; hashing is cheap next to parsing."""
    h = hashlib.sha256()
    for line in extra:
        h.update(f"{line}\n".encode())
    for path in files:
        try:
            st = path.stat()
            h.update(f"file {path} -> {path.resolve()} link={path.is_symlink()} size={st.st_size} "
                     f"mode={st.st_mode:o} owner={st.st_uid}:{st.st_gid}\n".encode())
            if not stat.S_ISREG(st.st_mode):
                continue  # a device or a pipe (`/dev/zero`) is never read: the connector refuses it
            with path.open("rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
        except OSError as exc:
            h.update(f"file {path} unreadable {type(exc).__name__} {exc.errno}\n".encode())
    return h.hexdigest()


def options_digest(cfg: ConnectorConfig) -> str:
    text = json.dumps({"type": cfg.type, "options": cfg.options}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def source_record(connector: Connector, cfg: ConnectorConfig) -> dict[str, Any] | None:
    """The fingerprint of a file-based connector's sources, taken before it reads them; None for a
    provider connector."""
    digest = getattr(connector, "source_digest", None)
    if digest is None:
        return None
    return {"digest": digest(), "options": options_digest(cfg)}


def valid_until(nodes: list[Node]) -> str | None:
    """The earliest expiry after now among the nodes: from then on a re-read differs (dead)."""
    now = datetime.now(UTC)
    ahead = [n.expires if n.expires.tzinfo else n.expires.replace(tzinfo=UTC)
             for n in nodes if n.expires is not None]
    ahead = [t for t in ahead if t > now]
    return min(ahead).isoformat() if ahead else None


def unchanged(config: Config, store: Store, names: Iterable[str]) -> dict[str, SnapshotInfo]:
    """The snapshots among `names` whose sources are provably as they were when collected (the
    references still to be checked once the others are re-collected: `references_hold`)."""
    snaps = {s.name: s for s in store.snapshots()}
    wanted = set(names)
    out: dict[str, SnapshotInfo] = {}
    now = datetime.now(UTC)
    for cfg in config.connectors:
        snap = snaps.get(cfg.name)
        if cfg.name not in wanted or snap is None or snap.type != cfg.type or snap.taken_at == "never":
            continue
        record = snap.meta.get(SOURCE)
        if not isinstance(record, dict) or snap.last_error or record.get("references") is None:
            continue
        until = record.get("valid_until")
        if until is not None and datetime.fromisoformat(until) <= now:
            continue
        if record.get("options") != options_digest(cfg):
            continue
        try:
            cls = connector_class(cfg.type)
            if not hasattr(cls, "source_digest"):
                continue
            connector = cls(cfg.options)
            try:
                current = source_record(connector, cfg)
            finally:
                connector.close()
        except Exception:  # cannot fingerprint: re-collect, which reports the problem properly
            continue
        if current is not None and current["digest"] == record.get("digest"):
            out[cfg.name] = snap
    return out


def references_hold(store: Store, snap: SnapshotInfo, fresh_ids: dict[str, set[str]], providers: set[str]) -> bool:
    """Whether the references a kept snapshot's input made still resolve as they did: every node it
    named that another connector collected is still collected by one (just now, or in a snapshot
    kept), and no connector now reads a provider it named unchecked."""
    refs = snap.meta[SOURCE]["references"]
    if any(provider_of(nid) in providers for nid in refs.get("unchecked", [])):
        return False
    missing = [nid for nid in refs.get("known", []) if not any(nid in ids for ids in fresh_ids.values())]
    if not missing:
        return True
    excluded = [*fresh_ids, snap.name]
    marks = ",".join("?" * len(excluded))
    found: set[str] = set()
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        q = ",".join("?" * len(chunk))
        found.update(nid for (nid,) in store.db.execute(
            f"SELECT DISTINCT id FROM nodes WHERE id IN ({q}) AND snapshot NOT IN ({marks})", [*chunk, *excluded]))
    return len(found) == len(missing)


def _compiled_key(store: Store) -> str:
    return json.dumps([[s.name, s.taken_at, s.nodes, s.edges] for s in store.snapshots()])


def mark_compiled(store: Store) -> None:
    """Record which snapshots the stored graph was compiled from (after it is saved: a crash in
    between leaves an older mark, which only costs a compile)."""
    key = _compiled_key(store)
    with store.transaction() as db:
        db.execute("DELETE FROM meta WHERE key=?", (COMPILED_FROM,))
        db.execute("INSERT INTO meta VALUES (?, ?)", (COMPILED_FROM, key))


def compiled_current(store: Store) -> bool:
    """Whether the stored graph was compiled from exactly the snapshots the store holds now, each
    reusable (a snapshot no configured connector re-reads may hold nodes that expired since)."""
    row = store.db.execute("SELECT value FROM meta WHERE key=?", (COMPILED_FROM,)).fetchone()
    if row is None or row[0] != _compiled_key(store):
        return False
    now = datetime.now(UTC)
    for snap in store.snapshots():
        if snap.taken_at == "never":  # a connector that never collected: nothing of it compiled
            continue
        record = snap.meta.get(SOURCE)
        if not isinstance(record, dict):
            return False
        until = record.get("valid_until")
        if until is not None and datetime.fromisoformat(until) <= now:
            return False
    return True


def resolved_references(known: set[str], unchecked: set[str], settled: bool) -> dict[str, list[str]] | None:
    if not settled or len(known) + len(unchecked) > MAX_REFERENCES:
        return None
    return {"known": sorted(known), "unchecked": sorted(unchecked)}
