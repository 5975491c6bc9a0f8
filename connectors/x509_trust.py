"""File trust stores for the x509 connector: take a CA out of them, put it back, read them again.

A trust store is a `trust_paths` entry: a bundle file (PEM certificates one after another: a CA
bundle, an mTLS server's client-CA file) or a directory of certificate files (OpenSSL's
`c_rehash` layout: one certificate per file plus `<subject hash>.N` symbolic links to them).

- **Bundle file**: rewritten without the CA's PEM block(s) (the block and the line ending after
  it); every other byte stays as it was, comments included. The new file is written next to the
  old one and renamed over it (a reader sees the old bundle or the new one, never half of one),
  with the old file's mode and, where permitted, its owner: a bundle is world-readable, unlike
  revoke's own outputs. A bundle that is a symbolic link is refused: revoke never writes
  through a link (the link may point at a file shared by the whole system).
- **Directory**: a regular file holding only the CA is removed; a file holding other certificates
  too is rewritten like a bundle; every symbolic link in the directory pointing at a removed file
  (or at any file holding the CA, even outside the directory) is removed. Links are removed,
  never followed for a write.

Every removal is returned as a record (the path, the offset, the certificate in PEM: public, so
it may be journaled), which is what `restore` needs to put the CA back for a rollback. A CA is
matched by the SHA-256 of its DER, the same fingerprint as its node id; a certificate block that
does not parse is kept as it is.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from revoke.connector import ConnectorError

PROVIDER = "x509"
# one PEM certificate block and the line ending after it (what is cut out of a bundle)
CERT_BLOCK_RE = re.compile(
    rb"-----BEGIN (?:X509 )?CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END (?:X509 )?CERTIFICATE-----(?:\r?\n)?")
BODY_RE = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----([A-Za-z0-9+/=\s]+?)-----END")


def _der_sha256(block: bytes) -> str | None:
    body = BODY_RE.search(block)
    if body is None:
        return None
    try:
        der = base64.b64decode(b"".join(body.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(der).hexdigest()


def blocks_of(data: bytes, sha: str) -> list[tuple[int, int]]:
    """(start, end) of every certificate block in `data` whose DER has this SHA-256."""
    return [(m.start(), m.end()) for m in CERT_BLOCK_RE.finditer(data) if _der_sha256(m.group(0)) == sha]


def holds(data: bytes, sha: str) -> bool:
    """Whether a file's bytes hold the certificate: a PEM block of it, or the DER itself."""
    return bool(blocks_of(data, sha)) or (data[:1] == b"\x30" and hashlib.sha256(data).hexdigest() == sha)


def writable_store(root: Path) -> bool:
    """Whether this connector can rewrite the trust store: a regular bundle file (not a link) in a
    directory it may write, or a directory it may write (its entries are removed, not written)."""
    if root.is_symlink():
        return False
    if root.is_dir():
        return os.access(root, os.W_OK | os.X_OK)
    return root.is_file() and os.access(root, os.W_OK) and os.access(root.parent, os.W_OK | os.X_OK)


# -- writing --------------------------------------------------------------------------------------


def _replace(path: Path, data: bytes, like: os.stat_result | None) -> None:
    """Atomic rewrite next to `path`, keeping the old file's mode and (if permitted) its owner."""
    if path.is_symlink():
        raise ConnectorError(PROVIDER, "untrust", "the trust store is a symbolic link; revoke never writes "
                             "through one (remove the CA by hand, then attest)", node=str(path), code="symlink")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if like is not None:
                os.fchmod(fd, like.st_mode & 0o7777)
                with contextlib.suppress(PermissionError):  # only root may give a file away
                    os.fchown(fd, like.st_uid, like.st_gid)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = ""
        _fsync_dir(path.parent)
    except OSError as exc:
        raise ConnectorError(PROVIDER, "untrust", f"cannot rewrite the trust store: {exc.strerror or exc}",
                             node=str(path), code="os_error") from None
    finally:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _cut(path: Path, sha: str) -> list[dict[str, Any]]:
    """Remove the CA's blocks from one file; records in ascending original offsets."""
    st = path.stat()
    data = path.read_bytes()
    spans = blocks_of(data, sha)
    if not spans:
        return []
    kept, last = [], 0
    for start, end in spans:
        kept.append(data[last:start])
        last = end
    kept.append(data[last:])
    _replace(path, b"".join(kept), st)
    return [{"op": "cut", "path": str(path), "offset": start, "pem": data[start:end].decode("ascii")}
            for start, end in spans]


def _pem_of_der(der: bytes) -> str:
    b64 = base64.b64encode(der).decode("ascii")
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def remove(root: Path, sha: str) -> list[dict[str, Any]]:
    """Take the certificate out of one trust store (bundle file or directory); the records undo it."""
    if root.is_symlink() or not root.exists():
        why = "is a symbolic link" if root.is_symlink() else "does not exist"
        raise ConnectorError(PROVIDER, "untrust", f"the trust store {why}", node=str(root), code="not_writable")
    if not root.is_dir():
        return _cut(root, sha)
    out: list[dict[str, Any]] = []
    removed: set[str] = set()
    links: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]):
            path = Path(dirpath) / name
            if path.is_symlink():
                links.append(path)
                continue
            if not path.is_file():
                continue
            data = path.read_bytes()
            if not holds(data, sha):
                continue
            spans = blocks_of(data, sha)
            others = CERT_BLOCK_RE.sub(b"", data).strip() if spans else b""
            if spans and (others or len(CERT_BLOCK_RE.findall(data)) > len(spans)):
                out += _cut(path, sha)  # a bundle inside the directory: keep the rest
                continue
            st = path.stat()
            der = not spans
            out.append({"op": "unlink", "path": str(path), "mode": st.st_mode & 0o7777, "format": "der" if der else "pem",
                        "pem": _pem_of_der(data) if der else data.decode("ascii")})
            path.unlink()
            removed.add(str(path))
    for link in links:
        target = os.readlink(link)
        resolved = os.path.normpath(os.path.join(link.parent, target))
        pointed = resolved in removed
        if not pointed and os.path.isfile(resolved):
            with contextlib.suppress(OSError):
                pointed = holds(Path(resolved).read_bytes(), sha)
        if pointed:
            link.unlink()
            out.append({"op": "unlink_link", "path": str(link), "target": target})
    if out:
        _fsync_dir(root)
    return out


def restore(records: list[dict[str, Any]], sha: str) -> int:
    """Put removed certificates back (a rollback); returns how many places changed. A place that
    holds the certificate again is left as it is."""
    changed = 0
    for rec in records:
        path = Path(rec["path"])
        if rec["op"] == "unlink_link":
            if not path.is_symlink() and not path.exists():
                os.symlink(rec["target"], path)
                changed += 1
        elif rec["op"] == "unlink":
            if path.exists() or path.is_symlink():
                continue
            pem = rec["pem"].encode("ascii")
            data = base64.b64decode(b"".join(BODY_RE.search(pem).group(1).split())) if rec.get("format") == "der" else pem  # type: ignore[union-attr]
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, rec.get("mode", 0o644))
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            changed += 1
    cuts: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        if rec["op"] == "cut":
            cuts.setdefault(rec["path"], []).append(rec)
    for name, recs in cuts.items():
        path = Path(name)
        st = path.stat()
        data = path.read_bytes()
        if holds(data, sha):
            continue
        for rec in sorted(recs, key=lambda r: r["offset"]):
            pem, at = rec["pem"].encode("ascii"), int(rec["offset"])
            # back where it was when that is still a block boundary; else at the end
            if not (at <= len(data) and (at == 0 or data[at - 1:at] == b"\n")):
                at = len(data)
                if data and not data.endswith(b"\n"):
                    pem = b"\n" + pem
            data = data[:at] + pem + data[at:]
        _replace(path, data, st)
        changed += 1
    return changed


def still_holding(roots: list[Path], sha: str) -> list[str]:
    """The files under these trust stores that hold the certificate (links followed for reading)."""
    out = []
    for root in roots:
        if not root.exists():
            continue
        files = [root] if not root.is_dir() else sorted(
            Path(d) / f for d, _, fs in os.walk(root, followlinks=False) for f in fs)
        for path in files:
            with contextlib.suppress(OSError):
                if path.is_file() and holds(path.read_bytes(), sha):
                    out.append(str(path))
    return out
