"""X.509 files: certificates, CAs and private keys found in PEM / DER / PKCS#12 files.

Configuration (`revoke.yaml`)::

    - type: x509
      paths: [./pki, /etc/ssl/private/server.key]   # files or directories, scanned recursively
      holder: host:ci-runner-7                       # holds everything under `paths` ...
      holders: {./pki/devices: host:gateway-1}       # ... unless a more specific entry says otherwise
      trust_paths:                                   # trust stores: what a holder *trusts*
        - {path: ./etc/ssl/bundle.pem, holder: host:web-1}     # a CA bundle file
        - {path: ./etc/ssl/certs, holder: host:web-1}          # a directory of CA certificates
        - {path: ./nginx/client-ca.pem, holder: host:api-1}    # an mTLS server's client-CA file

Relative paths are resolved by the caller against the config file's directory; absolute
ones are used as given. The most specific `holders` entry (longest matching directory or
the exact file) decides a file's holder; `holder` applies to files no entry covers.

Graph:
- `x509:cert:<sha256 of DER>` (certificate) and `x509:ca:<sha256 of DER>` (ca, when
  basicConstraints CA=true), with serial, subject, issuer, SAN, key usage, key type/size,
  signature hash; `created`/`expires` from the validity period; status `expired` once past.
- `x509:private_key:<sha256 of the SubjectPublicKeyInfo DER>` (private_key); `fingerprint`
  is `revoke.model.fingerprint` of the stored material (the PEM block text, or the DER bytes).
- `issued` CA -> certificate, decided by verifying the certificate's signature with each
  candidate's public key. The issuer-name match only narrows the candidates: two CAs may
  share a subject name and only the real signer gets the edge. No self-loop for roots.
- `authenticates_as` key -> certificate / CA with the same public key.
- `stores` holder -> every private key found under that holder's paths; `holds_public`
  holder -> every certificate there. Holding a certificate is not holding its key: the walk
  never follows `holds_public`, so a host whose trust store holds a CA certificate is not a
  compromise of that CA. The CA is exposed only when its private key is reachable (the key's
  `authenticates_as` edge to it).

- `trusts` holder -> every certificate found under a `trust_paths` entry (attrs `path`, `paths`:
  the trust store files holding it). Trusting a CA is not holding it either: the walk never
  follows `trusts`; the plan uses it to take a compromised CA out of every trust store, and
  verify re-reads the stores to prove it is gone.

Ids match `connectors.recognize.pem_ref`, so a PEM found in a Vault secret or a Secrets Manager
value links to the same node.

  A trust edge carries `writable` (attrs): whether this connector can rewrite every trust store
  holding the CA for that holder (a regular bundle file, or a directory, that it may write).

A file-based PKI has no revocation authority: a reachable file certificate, CA or key becomes a
manual task in the plan unless an alias edge (`x509:... -[derives]-> provider id`, attrs
alias=true) links it to a provider that can act on it (a CA registered in AWS IoT, a Vault PKI
issuer). `probe` reports expiry as the only signal it can observe.

The one action is on trust, not on the CA: `untrust` takes a CA (`x509:ca:<sha256>`) out of the
trust stores of one holder (`ctx.options["trust"]["holder"]`, from the plan's untrust step), as
`connectors/x509_trust.py` says (a bundle rewritten atomically keeping every other byte, a
directory's file and hash links removed, links never written through). Its outcome journals what
was removed (public certificates), which `rollback` puts back; verify re-reads the stores
(`confirm`). A trust store that is a link, or that this connector may not write, stays a manual
task (`writable: false` on the edge).

Encrypted keys, corrupt and unreadable files become findings, never a crash, and nothing in
a finding quotes file contents.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import PositiveInt

from connectors import x509_trust
from connectors.x509_trust import writable_store
from revoke.collect_reuse import digest_files
from revoke.connector import (
    ActionContext,
    ActionResult,
    ActionTable,
    BaseConnector,
    Collected,
    CollectFinding,
    ConnectorError,
    ConnectorOptions,
    ProbeResult,
)
from revoke.model import Edge, Node, NodeKind, Relation

log = structlog.get_logger()

DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules"})


class TrustPath(ConnectorOptions):
    """A trust store (CA bundle file, directory of CA certificates, mTLS client-CA file) and its holder."""

    path: str
    holder: str


class X509Options(ConnectorOptions):
    paths: list[str] | str | None = None
    path: str | None = None
    holder: str | None = None
    holders: dict[str, str] = {}
    max_file_bytes: PositiveInt = DEFAULT_MAX_FILE_BYTES
    trust_paths: list[TrustPath] = []


UNTRUST_PERMISSIONS = ["write access to the configured trust_paths: rewrite a bundle file (a temporary file "
                       "in its directory, renamed over it), remove certificate files and hash links in a "
                       "trust directory"]
table = ActionTable()


class X509Connector(BaseConnector):
    options_model = X509Options
    operations = {"collect": ["read access to the configured files and directories"],
                  "confirm": ["read access to the configured trust_paths"]}
    table = table

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        opts = X509Options.model_validate(config)
        paths = opts.paths or ([opts.path] if opts.path else [])
        if isinstance(paths, str):
            paths = [paths]
        if not paths and not opts.trust_paths:
            raise ConnectorError("x509", "configure", "no `paths` or `trust_paths` given")
        self.paths = [Path(p) for p in paths]
        self.trust_paths = [(Path(t.path), t.holder) for t in opts.trust_paths]
        self.holder = opts.holder
        self.holders = {Path(k).resolve(): v for k, v in opts.holders.items()}
        self.max_file_bytes = opts.max_file_bytes

    # -- get ------------------------------------------------------------------------------

    def collect(self) -> Collected:
        findings: list[CollectFinding] = []
        seen: set[Path] = set()  # overlapping configured paths must not scan a file twice
        files, skipped = self._scan(self.paths, seen, findings)
        trusted = []
        writable: set[str] = set()
        for root, holder in self.trust_paths:
            # a trust store may also sit under `paths`: scanned again here, as what its holder trusts
            found, more = self._scan([root], set(), findings)
            skipped += more
            trusted += [(contents, holder) for contents in found]
            if writable_store(root):
                writable.update(c.path for c in found if root.is_dir() or not Path(c.path).is_symlink())
        collected = transform(files, self.holder_of, now=datetime.now(UTC), trusted=trusted, writable=writable)
        collected.findings[:0] = findings
        collected.meta.update({"paths": [str(p) for p in self.paths], "files_skipped": skipped,
                               "trust_paths": [str(p) for p, _ in self.trust_paths]})
        log.info("x509.collected", nodes=len(collected.nodes), edges=len(collected.edges),
                 findings=len(collected.findings))
        return collected

    def source_digest(self) -> str:
        """The fingerprint of every file this connector reads (as `collect` walks them) and of what
        else its output depends on: each root's kind, and whether each trust store is writable."""
        roots = [*self.paths, *(p for p, _ in self.trust_paths)]
        extra = [f"root {p} exists={p.exists()} dir={p.is_dir()} link={p.is_symlink()}" for p in roots]
        extra += [f"trust {p} {holder} writable={writable_store(p)}" for p, holder in self.trust_paths]
        return digest_files([f for root in roots if root.exists() for f in iter_files(root)], extra=extra)

    def _scan(self, roots: list[Path], seen: set[Path], findings: list[CollectFinding]) -> tuple[list[Any], int]:
        from connectors.x509_parse import parse_file

        files = []
        skipped = 0
        for root in roots:
            if not root.exists():
                raise ConnectorError("x509", "scan", f"path not found: {root}")
            found_any = False
            for path in iter_files(root):
                if path.resolve() in seen:
                    found_any = True
                    continue
                seen.add(path.resolve())
                data, finding = read_file(path, self.max_file_bytes)
                if finding is not None:
                    findings.append(finding)
                    found_any = True
                    continue
                contents = parse_file(str(path), data or b"", path.suffix.lower())
                if contents.empty:
                    skipped += 1
                    continue
                found_any = True
                files.append(contents)
            if not found_any:
                # fail loud on empty: a path that used to hold PKI material and now yields nothing
                findings.append(
                    CollectFinding("x509.empty", f"{root}: no certificate or key found", source=str(root))
                )
        return files, skipped

    def holder_of(self, path: str) -> str | None:
        resolved = Path(path).resolve()
        best: tuple[int, str] | None = None
        for prefix, holder in self.holders.items():
            if (resolved == prefix or prefix in resolved.parents) and (
                best is None or len(prefix.parts) > best[0]
            ):
                best = (len(prefix.parts), holder)
        return best[1] if best else self.holder

    # -- trust stores ---------------------------------------------------------------------

    def _stores_of(self, holder: str | None) -> list[Path]:
        return [root for root, h in self.trust_paths if holder is None or h == holder]

    @table.action("untrust", types=("ca",), kinds=(NodeKind.CA,), undo=True, probe="readback",
                  permissions=UNTRUST_PERMISSIONS)
    def _untrust(self, node: Node, ctx: ActionContext) -> ActionResult:
        holder = (ctx.options.get("trust") or {}).get("holder")
        sha = node.id.rsplit(":", 1)[1]
        # only the stores that hold it: another store of the holder (a link revoke may not write)
        # that does not hold the CA is none of this action's business
        roots = [r for r in self._stores_of(holder) if x509_trust.still_holding([r], sha)]
        removed = [rec for root in roots for rec in x509_trust.remove(root, sha)]
        files = sorted({r["path"] for r in removed})
        log.info("x509.untrust", node=node.id, holder=holder, removed=len(removed))
        detail = f"removed from {', '.join(files)}" if files else "not in any trust store of this holder"
        return ActionResult(node.id, "untrust", changed=bool(removed), detail=detail,
                            data={"holder": holder, "removed": removed})

    @table.action("rollback", types=("ca",), kinds=(NodeKind.CA,), probe="none", permissions=UNTRUST_PERMISSIONS)
    def _trust_again(self, node: Node, ctx: ActionContext) -> ActionResult:
        records = list((ctx.options.get("outcome") or {}).get("removed") or [])
        if not records:
            return ActionResult(node.id, "rollback", changed=False, detail="nothing was removed from a trust store")
        changed = x509_trust.restore(records, node.id.rsplit(":", 1)[1])
        return ActionResult(node.id, "rollback", changed=bool(changed),
                            detail=f"put back into {len({r['path'] for r in records})} trust store file(s)")

    def confirm(self, verb: str, node: Node) -> ProbeResult:
        """The trust stores this connector may write, read again: live=False when none holds the CA
        (the ones it may not write are manual tasks; verify re-reads every store anyway)."""
        if verb != "untrust":
            return super().confirm(verb, node)
        roots = [r for r in self._stores_of(None) if writable_store(r)]
        still = x509_trust.still_holding(roots, node.id.rsplit(":", 1)[1])
        if still:
            return ProbeResult(node.id, True, f"trust store read back: still in {', '.join(still)}")
        return ProbeResult(node.id, False, f"trust stores read back: absent from {len(roots)} store(s)")

    # -- probe ----------------------------------------------------------------------------

    def probe(self, node: Node) -> ProbeResult:
        now = datetime.now(UTC)
        if node.kind in (NodeKind.CERTIFICATE, NodeKind.CA):
            if node.expires is not None and node.expires <= now:
                return ProbeResult(node.id, False, f"not_after {node.expires.isoformat()}: expired")
            return ProbeResult(
                node.id, None, "no revocation authority configured for file-based PKI",
                detail="link this certificate to a provider (alias edge) or attest the manual task",
            )
        if node.kind is NodeKind.PRIVATE_KEY:
            return ProbeResult(
                node.id, None, "a private key file cannot be revoked",
                detail="revoke or let expire every certificate it authenticates as",
            )
        return super().probe(node)


def iter_files(root: Path) -> Iterator[Path]:
    """Regular files under root (or root itself), in a stable order; symlinked dirs not followed."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file():
                yield path


def read_file(path: Path, max_bytes: int) -> tuple[bytes | None, CollectFinding | None]:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            message = f"{path}: {size} bytes, over the {max_bytes} limit: skipped"
            return None, CollectFinding("x509.too_large", message, source=str(path))
        return path.read_bytes(), None
    except OSError as exc:
        # strerror only ("Permission denied"): never the file contents
        return None, CollectFinding("x509.unreadable", f"{path}: {exc.strerror or type(exc).__name__}",
                             severity="error", source=str(path))


# -- transform (pure) ---------------------------------------------------------------------


def transform(files: list[Any], holder_of: Any, *, now: datetime,
              trusted: list[tuple[Any, str]] | None = None, writable: set[str] | None = None) -> Collected:
    """Parsed files -> nodes, edges, findings. `holder_of(path) -> holder id | None`; `trusted`
    pairs each parsed trust store file with the holder that trusts what it holds; `writable`:
    the trust store files this connector may rewrite."""
    from connectors import pki
    from connectors import x509_parse as xp

    out = Collected()
    certs: dict[str, Any] = {}  # node id -> certificate
    keys: dict[str, Any] = {}  # node id -> LoadedKey (first seen)
    paths: dict[str, set[str]] = {}
    stores: set[tuple[str, str]] = set()
    trusts: dict[tuple[str, str], set[str]] = {}  # (holder, cert id) -> trust store files
    csrs = skipped_blocks = 0
    for contents, trusting in [(c, None) for c in files] + list(trusted or []):
        out.findings.extend(contents.findings)
        csrs += contents.csrs
        skipped_blocks += contents.skipped_blocks
        holder = trusting or holder_of(contents.path)
        ids = []
        for cert in contents.certs:
            node_id = pki.cert_node_id(cert)
            certs.setdefault(node_id, cert)
            if trusting:
                trusts.setdefault((trusting, node_id), set()).add(contents.path)
                paths.setdefault(node_id, set()).add(contents.path)
                continue
            ids.append(node_id)
        for key in contents.keys:
            node_id = pki.key_node_id(key.public_key)
            keys.setdefault(node_id, key)
            ids.append(node_id)
        for node_id in ids:
            paths.setdefault(node_id, set()).add(contents.path)
            if holder:
                stores.add((holder, node_id))

    by_subject: dict[bytes, list[str]] = {}
    by_spki: dict[str, list[str]] = {}
    for node_id, cert in certs.items():
        out.nodes.append(_cert_node(node_id, cert, sorted(paths[node_id]), now))
        by_subject.setdefault(cert.subject.public_bytes(), []).append(node_id)
        by_spki.setdefault(pki.spki_sha256(cert.public_key()), []).append(node_id)
    for node_id, key in keys.items():
        found_in = sorted(paths[node_id])
        out.nodes.append(Node(
            id=node_id, kind=NodeKind.PRIVATE_KEY, provider="x509", name=os.path.basename(found_in[0]),
            fingerprint=key.fingerprint,
            attrs={**xp.key_params(key.public_key), "format": key.format, "path": found_in[0],
                   "paths": found_in},
        ))

    edges: set[tuple[str, Relation, str]] = set()
    for node_id, cert in certs.items():
        # the name match only narrows the candidates; the signature decides
        for ca_id in by_subject.get(cert.issuer.public_bytes(), []):
            if ca_id != node_id and pki.signed_by(cert, certs[ca_id].public_key()):
                edges.add((ca_id, Relation.ISSUED, node_id))
    for node_id in keys:
        for cert_node in by_spki.get(node_id.rsplit(":", 1)[1], []):
            edges.add((node_id, Relation.AUTHENTICATES_AS, cert_node))
    for holder, node_id in stores:
        # a certificate without its key is public material: recorded, never walked
        edges.add((holder, Relation.STORES if node_id in keys else Relation.HOLDS_PUBLIC, node_id))
    out.edges = [Edge(src, dst, rel) for src, rel, dst in sorted(edges)]
    for (holder, node_id), found in sorted(trusts.items()):
        ordered = sorted(found)
        out.edges.append(Edge(holder, node_id, Relation.TRUSTS, attrs={
            "path": ordered[0], "paths": ordered, "writable": all(p in (writable or set()) for p in ordered)}))
    out.meta = {"certificates": len(certs), "private_keys": len(keys), "files": len(files),
                "csrs": csrs, "pem_blocks_skipped": skipped_blocks, "trusts": len(trusts)}
    return out


def _cert_node(node_id: str, cert: Any, found_in: list[str], now: datetime) -> Node:
    from connectors import x509_parse as xp

    expires = cert.not_valid_after_utc
    return Node(
        id=node_id,
        kind=NodeKind.CA if node_id.startswith("x509:ca:") else NodeKind.CERTIFICATE,
        provider="x509",
        name=xp.common_name(cert),
        created=cert.not_valid_before_utc,
        expires=expires,
        status="expired" if expires <= now else "active",
        fingerprint="sha256:" + node_id.rsplit(":", 1)[1],
        attrs={**xp.cert_attrs(cert), "path": found_in[0], "paths": found_in},
    )
