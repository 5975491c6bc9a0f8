"""Files: holders, DER and PEM, expiry, corrupt and encrypted input, and no secret leaks."""

from __future__ import annotations

import base64
import os
import struct
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from x509_testlib import cid, edge_set, kid, serialised, write

from examples.lab.pki import make_ca, make_leaf, pem, pem_key
from revoke.connector import ConnectorError, connector_class
from revoke.model import NodeKind

DER = serialization.Encoding.DER


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def encrypted_openssh_key() -> str:
    """A bcrypt/aes256-ctr OpenSSH key container (built by hand: bcrypt is not installed)."""
    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = (b"openssh-key-v1\0" + _ssh_string(b"aes256-ctr") + _ssh_string(b"bcrypt")
            + _ssh_string(_ssh_string(os.urandom(16)) + struct.pack(">I", 16)) + struct.pack(">I", 1)
            + _ssh_string(_ssh_string(b"ssh-ed25519") + _ssh_string(public))
            + _ssh_string(os.urandom(160)))
    body = base64.encodebytes(blob).decode().replace("\n", "")
    lines = [body[i:i + 70] for i in range(0, len(body), 70)]
    return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END OPENSSH PRIVATE KEY-----\n"


def test_registered_with_trust_store_actions_only():
    # file PKI has no revocation authority: the only actions are on trust stores (and their undo)
    cls = connector_class("x509")
    assert cls.name == "x509" and cls.actions == {NodeKind.CA: frozenset({"untrust", "rollback"})}


def test_holders_per_path_and_fallback(tmp_path, collect):
    ca, ca_key = make_ca("Holder CA")
    gw, gw_key = make_leaf(ca, ca_key, "gateway")
    write(tmp_path / "runner" / "ca.crt", pem(ca))
    write(tmp_path / "runner" / "ca.key", pem_key(ca_key))
    write(tmp_path / "gateway" / "tls" / "gw.crt", pem(gw))
    write(tmp_path / "gateway" / "tls" / "gw.key", pem_key(gw_key))
    write(tmp_path / "gateway" / "README.txt", "not PKI")

    got = collect({
        "paths": [str(tmp_path)],
        "holder": "host:ci-runner-7",
        "holders": {str(tmp_path / "gateway"): "host:gateway-1",
                    str(tmp_path / "gateway" / "tls" / "gw.key"): "repo:gateway-config"},
    })

    assert edge_set(got) == {
        (cid(ca), "issued", cid(gw)),
        (kid(ca_key), "authenticates_as", cid(ca)),
        (kid(gw_key), "authenticates_as", cid(gw)),
        ("host:ci-runner-7", "holds_public", cid(ca)),
        ("host:ci-runner-7", "stores", kid(ca_key)),
        ("host:gateway-1", "holds_public", cid(gw)),
        ("repo:gateway-config", "stores", kid(gw_key)),
    }
    assert got.findings == []


def test_der_and_pem_of_the_same_cert_is_one_node(tmp_path, collect):
    ca, ca_key = make_ca("Der CA", key="rsa")
    leaf, leaf_key = make_leaf(ca, ca_key, "der.leaf")
    write(tmp_path / "ca.der", ca.public_bytes(DER))
    write(tmp_path / "leaf.cer", leaf.public_bytes(DER))
    write(tmp_path / "leaf.pem", pem(leaf))
    write(tmp_path / "leaf.key", leaf_key.private_bytes(
        DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    got = collect({"paths": [str(tmp_path / "ca.der"), str(tmp_path)], "holder": "host:h"})

    nodes = {n.id: n for n in got.nodes}
    assert set(nodes) == {cid(ca), cid(leaf), kid(leaf_key)}
    assert nodes[cid(leaf)].attrs["paths"] == [str(tmp_path / "leaf.cer"), str(tmp_path / "leaf.pem")]
    assert edge_set(got) == {
        (cid(ca), "issued", cid(leaf)),
        (kid(leaf_key), "authenticates_as", cid(leaf)),
        ("host:h", "holds_public", cid(ca)),
        ("host:h", "holds_public", cid(leaf)),
        ("host:h", "stores", kid(leaf_key)),
    }


def test_expired_certificate_status_and_probe(tmp_path, collect):
    ca, ca_key = make_ca("Old CA")
    past = datetime.now(UTC) - timedelta(days=30)
    old, _ = make_leaf(ca, ca_key, "old", not_before=past - timedelta(days=365), not_after=past)
    fresh, _ = make_leaf(ca, ca_key, "fresh")
    write(tmp_path / "certs.pem", pem(ca) + pem(old) + pem(fresh))
    conn = connector_class("x509")({"paths": [str(tmp_path)]})
    nodes = {n.id: n for n in conn.collect().nodes}

    assert nodes[cid(old)].status == "expired" and not nodes[cid(old)].is_live
    assert nodes[cid(old)].expires == old.not_valid_after_utc
    assert nodes[cid(old)].created == old.not_valid_before_utc
    assert nodes[cid(fresh)].status == "active"
    probe_old, probe_fresh = conn.probe(nodes[cid(old)]), conn.probe(nodes[cid(fresh)])
    assert probe_old.live is False and "expired" in probe_old.signal
    assert probe_fresh.live is None and "no revocation authority" in probe_fresh.signal


def test_corrupt_and_encrypted_files_are_findings(tmp_path, collect):
    ca, ca_key = make_ca("Good CA")
    canary_pass = b"canary-passphrase-7f3a"
    enc = serialization.BestAvailableEncryption(canary_pass)
    good = write(tmp_path / "good.crt", pem(ca))
    lines = pem(ca).splitlines()
    broken_body = "\n".join([lines[0], lines[1][:20] + "!!!garbage!!!", lines[-1]]) + "\n"
    write(tmp_path / "broken.pem", broken_body)
    write(tmp_path / "truncated.der", ca.public_bytes(DER)[:100])
    write(tmp_path / "noise.crt", b"\x00\x01not a certificate at all")
    write(tmp_path / "unterminated.pem", lines[0] + "\n" + lines[1] + "\n")
    write(tmp_path / "enc-pkcs8.pem", ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    write(tmp_path / "enc-legacy.key", ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, enc))
    write(tmp_path / "enc.der", ca_key.private_bytes(DER, serialization.PrivateFormat.PKCS8, enc))
    write(tmp_path / "enc-ssh", encrypted_openssh_key())
    write(tmp_path / "notes.md", "# just notes\n")

    got = collect({"paths": [str(tmp_path)], "holder": "host:h"})

    by_file = {os.path.basename(f.source or ""): f.code for f in got.findings}
    assert by_file == {
        "broken.pem": "x509.corrupt",
        "truncated.der": "x509.corrupt",
        "noise.crt": "x509.corrupt",
        "unterminated.pem": "x509.corrupt",
        "enc-pkcs8.pem": "x509.encrypted_key",
        "enc-legacy.key": "x509.encrypted_key",
        "enc.der": "x509.encrypted_key",
        "enc-ssh": "x509.encrypted_key",
    }
    assert edge_set(got) == {("host:h", "holds_public", cid(ca))}
    assert [n.attrs["path"] for n in got.nodes] == [str(good)]
    text = serialised(got)
    assert "garbage" not in text and lines[1][:20] not in text
    assert canary_pass.decode() not in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_finding(tmp_path, collect):
    ca, _ = make_ca("Locked CA")
    locked = write(tmp_path / "locked.pem", pem(ca))
    locked.chmod(0)
    try:
        got = collect({"paths": [str(tmp_path)]})
    finally:
        locked.chmod(0o600)
    assert [(f.code, f.source) for f in got.findings] == [("x509.unreadable", str(locked))]


def test_missing_path_fails_and_empty_dir_warns(tmp_path, collect):
    with pytest.raises(ConnectorError, match="path not found"):
        collect({"paths": [str(tmp_path / "nope")]})
    (tmp_path / "empty").mkdir()
    got = collect({"paths": [str(tmp_path / "empty")]})
    assert [f.code for f in got.findings] == ["x509.empty"]


def test_canary_private_key_never_leaves_the_file(tmp_path, collect):
    ca, ca_key = make_ca("Canary CA", key="rsa")
    leaf, leaf_key = make_leaf(ca, ca_key, "canary")
    key_pem = pem_key(ca_key)
    der = ca_key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write(tmp_path / "ca.pem", pem(ca) + key_pem)
    write(tmp_path / "leaf.key", leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    write(tmp_path / "leaf.crt", pem(leaf))

    with structlog.testing.capture_logs() as logs:
        got = collect({"paths": [str(tmp_path)], "holder": "host:canary"})

    numbers = ca_key.private_numbers()
    canaries = [
        *[line for line in key_pem.splitlines()[1:-1]],
        format(numbers.d, "x"), str(numbers.d), format(numbers.p, "x"), der.hex(),
        format(leaf_key.private_numbers().private_value, "x"),
        str(leaf_key.private_numbers().private_value),
    ]
    text = serialised(got) + repr(logs)
    assert not [c for c in canaries if c in text]
    assert {n.kind for n in got.nodes} == {NodeKind.CA, NodeKind.CERTIFICATE, NodeKind.PRIVATE_KEY}


def test_read_failure_is_a_finding_without_contents(tmp_path):
    from connectors.x509 import read_file

    data, finding = read_file(tmp_path / "vanished.pem", 1024)
    assert data is None and finding is not None
    assert (finding.code, finding.source) == ("x509.unreadable", str(tmp_path / "vanished.pem"))
    big = write(tmp_path / "big.pem", b"x" * 2048)
    assert read_file(big, 1024)[1].code == "x509.too_large"


def test_pkcs12_bundles_and_csrs(tmp_path, collect):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import pkcs12

    ca, ca_key = make_ca("P12 CA")
    leaf, leaf_key = make_leaf(ca, ca_key, "p12.leaf")
    write(tmp_path / "open.p12", pkcs12.serialize_key_and_certificates(
        b"leaf", leaf_key, leaf, [ca], serialization.NoEncryption()))
    write(tmp_path / "locked.pfx", pkcs12.serialize_key_and_certificates(
        b"leaf", leaf_key, leaf, [ca], serialization.BestAvailableEncryption(b"canary-p12-pass")))
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name.from_rfc4514_string("CN=csr")).sign(leaf_key, hashes.SHA256()))
    write(tmp_path / "req.csr", csr.public_bytes(serialization.Encoding.PEM))

    got = collect({"paths": [str(tmp_path)]})

    assert edge_set(got) == {(cid(ca), "issued", cid(leaf)), (kid(leaf_key), "authenticates_as", cid(leaf))}
    assert [(os.path.basename(f.source), f.code) for f in got.findings] == [("locked.pfx", "x509.encrypted_key")]
    assert got.meta["csrs"] == 1
    assert "canary-p12-pass" not in serialised(got)
