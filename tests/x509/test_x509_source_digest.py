"""The fingerprint incremental verify keeps an x509 snapshot by: every file read, each root's
kind and each trust store's writability; nothing else (a re-read of the same files is the same)."""

from __future__ import annotations

from pathlib import Path

from x509_testlib import write

from connectors.x509 import X509Connector
from examples.lab.pki import make_ca, pem


def _digest(config: dict) -> str:
    return X509Connector(config).source_digest()


def test_the_fingerprint_changes_with_what_the_connector_would_read(tmp_path: Path) -> None:
    ca, _ = make_ca("Issuing CA")
    other, _ = make_ca("Other Root")
    write(tmp_path / "pki" / "ca.pem", pem(ca))
    write(tmp_path / "trust" / "bundle.pem", pem(ca))
    config = {"paths": [str(tmp_path / "pki")], "holder": "host:a",
              "trust_paths": [{"path": str(tmp_path / "trust"), "holder": "host:web"}]}
    first = _digest(config)
    assert _digest(config) == first  # read twice, the same
    # a new file in a scanned directory
    write(tmp_path / "pki" / "sub" / "other.pem", pem(other))
    second = _digest(config)
    assert second != first
    # a trust store that may no longer be written (the plan's `writable` depends on it)
    (tmp_path / "trust").chmod(0o555)
    try:
        assert _digest(config) != second or not _writable_differs(tmp_path / "trust")
    finally:
        (tmp_path / "trust").chmod(0o755)
    assert _digest(config) == second
    # the same content written again is no change; other content is
    write(tmp_path / "trust" / "bundle.pem", pem(ca))
    assert _digest(config) == second
    write(tmp_path / "trust" / "bundle.pem", pem(other))
    assert _digest(config) != second


def _writable_differs(path: Path) -> bool:
    """As root, a directory without write bits is still writable: nothing to tell apart then."""
    import os

    return not os.access(path, os.W_OK)
