"""Certificate rules with positive and negative cases: attributes as the x509 / Vault PKI
connectors write them, and end to end through the real x509 connector on generated files."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from examples.lab import pki
from revoke.connector import connector_class
from revoke.graph import resolve
from revoke.sweep import SweepContext, default_config, run_sweep
from tests.sweep.sweep_testlib import ago, ahead, edge, findings_of, flagged, node

ROOT_DN = "CN=Root,O=Lab"


def cert(sha: str, kind: str = "certificate", *, subject: str = "CN=leaf", issuer: str = ROOT_DN, **kw: object) -> object:
    attrs = {"subject": subject, "issuer": issuer, "key_type": "ec", "key_size": 256, "signature_hash": "sha256",
             **kw.pop("attrs", {})}
    kw.setdefault("expires", ahead(300))
    return node(f"x509:{'ca' if kind == 'ca' else 'cert'}:{sha * 32}", kind, attrs=attrs, **kw)


def cid(sha: str, kind: str = "certificate") -> str:
    return f"x509:{'ca' if kind == 'ca' else 'cert'}:{sha * 32}"


def test_cert_expiring() -> None:
    nodes = [cert("a1", expires=ahead(10)), cert("a2", expires=ahead(90)), cert("a3", "ca", expires=ahead(29),
             subject=ROOT_DN), cert("a4", expires=ago(1))]
    assert flagged("cert-expiring", nodes) == {cid("a1"), cid("a3", "ca")}
    assert flagged("cert-expiring", nodes, days=5) == set()
    reasons = {f.node: f.reason for f in findings_of("cert-expiring", [*nodes, cert("a5", expires=ahead(0.5))])}
    assert reasons[cid("a1")].startswith("certificate expires in 10 days (")
    assert reasons[cid("a5")].startswith("certificate expires in 12 hours (")


def test_cert_expired() -> None:
    nodes = [cert("b1", expires=ago(3), status="expired"), cert("b2"), cert("b3", expires=ago(3), status="revoked")]
    assert flagged("cert-expired", nodes) == {cid("b1")}


def test_cert_bypasses_authorization() -> None:
    masters = {"bypasses_authorization": True, "groups": ["system:masters"], "user": "breakglass"}
    nodes = [
        node("kubernetes:client_cert:c1/aa", "certificate", attrs=masters, owner="breakglass"),
        node("kubernetes:client_cert:c1/bb", "certificate", attrs={**masters, "bypasses_authorization": False}),
        node("kubernetes:client_cert:c1/cc", "certificate", attrs=masters, status="revoked"),  # its CA is gone
    ]
    found = findings_of("cert-bypasses-authorization", nodes)
    assert [(f.node, f.severity.value) for f in found] == [("kubernetes:client_cert:c1/aa", "critical")]
    assert "rotate the CA" in found[0].reason


def test_cert_ca_expired() -> None:
    nodes = [
        cert("c0", "ca", subject=ROOT_DN, expires=ago(2), status="expired"),
        cert("c9", "ca", subject="CN=Other", issuer="CN=Other"),
        cert("c1"), cert("c2"), cert("c3"),
    ]
    edges = [
        edge(cid("c0", "ca"), "issued", cid("c1")),
        edge(cid("c9", "ca"), "issued", cid("c2")),
        # cross-signed: one issuer still live, so the chain still validates
        edge(cid("c0", "ca"), "issued", cid("c3")), edge(cid("c9", "ca"), "issued", cid("c3")),
    ]
    assert flagged("cert-ca-expired", nodes, edges) == {cid("c1")}


def test_cert_ca_unknown() -> None:
    nodes = [
        cert("d0", "ca", subject=ROOT_DN),  # self-signed root
        cert("d1"),  # issued by d0 (edge below)
        cert("d2", issuer="CN=Gone CA"),  # no issuer in the graph
        cert("d3", issuer="CN=R3,O=Let's Encrypt"),
        # Vault PKI certificate whose issuer no longer exists
        node("vault:pki_cert:pki/11-22", "certificate", attrs={"subject": "CN=svc", "issuer_id": ""}, expires=ahead(9)),
        # an AWS IoT CA: no issuer data on the provider node, but its x509 alias is a self-signed root
        node("aws:iot_ca:abc", "ca", expires=ahead(99)),
        # an AWS IoT certificate with no data to judge by: not flagged
        node("aws:iot_certificate:zzz", "certificate", expires=ahead(99)),
    ]
    edges = [edge(cid("d0", "ca"), "issued", cid("d1")), edge(cid("d0", "ca"), "derives", "aws:iot_ca:abc", alias=True)]
    assert flagged("cert-ca-unknown", nodes, edges) == {cid("d2"), cid("d3"), "vault:pki_cert:pki/11-22"}
    assert flagged("cert-ca-unknown", nodes, edges, trusted_issuers=["O=Let's Encrypt"]) == {
        cid("d2"), "vault:pki_cert:pki/11-22"}


def test_weak_key() -> None:
    nodes = [
        cert("e1", attrs={"key_type": "rsa", "key_size": 1024}),
        cert("e2", attrs={"key_type": "rsa", "key_size": 2048}),
        cert("e3", attrs={"key_type": "ec", "key_size": 192}),
        cert("e4", attrs={"key_type": "dsa", "key_size": 3072}),
        node("x509:private_key:" + "e5" * 32, "private_key", attrs={"key_type": "rsa", "key_size": 1024}),
        node("x509:private_key:" + "e6" * 32, "private_key", attrs={"key_type": "ed25519", "key_size": 256}),
    ]
    assert flagged("weak-key", nodes) == {cid("e1"), cid("e3"), cid("e4"), "x509:private_key:" + "e5" * 32}
    assert flagged("weak-key", nodes, min_rsa_bits=1024, weak_types=[], min_ec_bits=0) == set()


def test_weak_signature() -> None:
    nodes = [
        cert("f1", attrs={"signature_hash": "sha1"}),
        cert("f2", attrs={"signature_hash": "sha256"}),
        cert("f3", "ca", subject=ROOT_DN, attrs={"signature_hash": "sha1"}),  # self-signed root: exempt
        cert("f4", attrs={"signature_hash": "md5"}, status="revoked"),
    ]
    assert flagged("weak-signature", nodes) == {cid("f1")}
    assert flagged("weak-signature", nodes, ignore_self_signed=False) == {cid("f1"), cid("f3", "ca")}


# ---------------------------------------------------------------------------------------------------
# End to end through the x509 connector: the attribute names the rules read are the ones it writes


def _sha1_leaf(ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """cryptography refuses to sign with SHA-1 now: sign with SHA-256, swap the two
    sha256WithRSAEncryption OIDs for sha1WithRSAEncryption (same length) and re-sign the TBS."""
    leaf, _ = pki.make_leaf(ca_cert, ca_key, "legacy.lab", key="rsa")
    der = leaf.public_bytes(serialization.Encoding.DER)
    sha256_oid = bytes.fromhex("06092A864886F70D01010B")
    sha1_oid = bytes.fromhex("06092A864886F70D010105")
    patched = x509.load_der_x509_certificate(der.replace(sha256_oid, sha1_oid))
    sig = ca_key.sign(patched.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1())
    return x509.load_der_x509_certificate(der.replace(sha256_oid, sha1_oid)[: -len(sig)] + sig)


def test_x509_connector_attributes_drive_the_rules(tmp_path: Path) -> None:
    root, root_key = pki.make_ca("Lab Root", key="rsa")
    orphan_ca, orphan_ca_key = pki.make_ca("Gone CA")
    old_ca, old_ca_key = pki.make_ca("Old CA", not_before=ago(400), not_after=ago(1))
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    files = {
        "root.pem": pki.pem(root),
        "weak.pem": pki.pem(pki.make_leaf(root, root_key, "weak.lab", private_key=weak_key)[0]),
        "weak.key": pki.pem_key(weak_key),
        "legacy.pem": pki.pem(_sha1_leaf(root, root_key)),
        "soon.pem": pki.pem(pki.make_leaf(root, root_key, "soon.lab", days=5)[0]),
        "stray.pem": pki.pem(pki.make_leaf(orphan_ca, orphan_ca_key, "stray.lab")[0]),
        "old-ca.pem": pki.pem(old_ca),
        "under-old.pem": pki.pem(pki.make_leaf(old_ca, old_ca_key, "under-old.lab", not_before=ago(10), days=400)[0]),
        "good.pem": pki.pem(pki.make_leaf(root, root_key, "good.lab")[0]),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    collected = connector_class("x509")({"paths": [str(tmp_path)], "holder": "host:pki-box"}).collect()
    resolved = resolve(collected.nodes, collected.edges)
    findings = run_sweep(SweepContext(resolved.nodes, resolved.edges), default_config())
    names = {nid: n.name for nid, n in resolved.nodes.items()}
    got = {(f.rule, names.get(f.node) or f.node) for f in findings if f.rule != "blast-radius-top"}
    assert ("weak-key", "weak.lab") in got
    assert ("weak-key", "weak.key") in got  # the private key node, named after its file
    assert ("weak-signature", "legacy.lab") in got
    assert ("cert-expiring", "soon.lab") in got
    assert ("cert-ca-unknown", "stray.lab") in got
    assert ("cert-expired", "Old CA") in got
    assert ("cert-ca-expired", "under-old.lab") in got
    assert not {rule for rule, name in got if name in ("good.lab", "Lab Root")}


@pytest.mark.parametrize("hash_name", ["sha1"])
def test_sha1_patch_really_produces_sha1(hash_name: str) -> None:
    root, root_key = pki.make_ca("R", key="rsa")
    assert _sha1_leaf(root, root_key).signature_hash_algorithm.name == hash_name
