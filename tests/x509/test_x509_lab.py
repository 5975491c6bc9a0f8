"""The lab PKI: fast to generate, and the connector sees what the demo needs."""

from __future__ import annotations

import time

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from x509_testlib import cid, edge_set, kid

from connectors.pki import signed_by
from examples.lab.pki import write_lab_pki


def test_write_lab_pki_is_fast_and_writes_only_the_runner_files(tmp_path, collect):  # and its trust bundle
    start = time.perf_counter()
    lab = write_lab_pki(tmp_path, devices=200)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"200 devices took {elapsed:.3f}s"

    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["ca-bundle.pem", "internal-ca.crt",
                                                                          "internal-ca.key"]
    assert len(lab["devices"]) == 200
    ca = x509.load_pem_x509_certificate(lab["ca_cert_pem"].encode())
    first = x509.load_pem_x509_certificate(lab["devices"][0][0].encode())
    assert isinstance(first.public_key(), ec.EllipticCurvePublicKey)
    assert first.public_key().curve.name == "secp256r1"
    assert signed_by(first, ca.public_key())
    assert len({cert for cert, _ in lab["devices"]}) == 200

    got = collect({"paths": [lab["runner_dir"]], "holder": "host:ci-runner-7"})
    from cryptography.hazmat.primitives import serialization

    ca_key = serialization.load_pem_private_key(lab["ca_key_pem"].encode(), None)
    assert edge_set(got) == {
        (kid(ca_key), "authenticates_as", cid(ca)),
        ("host:ci-runner-7", "holds_public", cid(ca)),
        ("host:ci-runner-7", "stores", kid(ca_key)),
    }


def test_devices_written_on_request_are_all_issued_by_the_ca(tmp_path, collect):
    lab = write_lab_pki(tmp_path, devices=20, write_devices=True)
    got = collect({"paths": [str(tmp_path)]})
    ca = x509.load_pem_x509_certificate(lab["ca_cert_pem"].encode())
    issued = {dst for src, rel, dst in edge_set(got) if rel == "issued" and src == cid(ca)}
    assert issued == {cid(x509.load_pem_x509_certificate(c.encode())) for c, _ in lab["devices"]}
