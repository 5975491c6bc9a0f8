"""Issuance edges are decided by signatures, pairing by public keys: exact edge sets."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from x509_testlib import cid, edge_set, kid, write

from connectors.pki import signed_by
from connectors.recognize import pem_objects, pem_ref
from examples.lab.pki import make_ca, make_leaf, pem, pem_key


def test_two_same_named_ec_cas_only_true_signer_issues(tmp_path, collect):
    ca_a, _ = make_ca("Shared Name CA", key="ec")
    ca_b, key_b = make_ca("Shared Name CA", key="ec")
    assert ca_a.subject == ca_b.subject
    leaf, _ = make_leaf(ca_b, key_b, "svc.internal", san=["svc.internal"])
    write(tmp_path / "a.crt", pem(ca_a))
    write(tmp_path / "b.crt", pem(ca_b))
    write(tmp_path / "leaf.pem", pem(leaf))

    got = collect({"paths": [str(tmp_path)]})

    assert edge_set(got) == {(cid(ca_b), "issued", cid(leaf))}
    assert {n.id for n in got.nodes} == {cid(ca_a), cid(ca_b), cid(leaf)}
    assert cid(ca_a).startswith("x509:ca:") and cid(leaf).startswith("x509:cert:")


def test_two_same_named_rsa_cas_pkcs1v15_and_pss(tmp_path, collect):
    ca_a, key_a = make_ca("Corp Root", key="rsa")
    ca_b, key_b = make_ca("Corp Root", key="rsa")
    leaf_a, _ = make_leaf(ca_a, key_a, "a.corp")
    leaf_b, leaf_b_key = make_leaf(ca_b, key_b, "b.corp")
    # the same subject and key, re-signed by B with RSA-PSS
    from cryptography import x509

    pss = (
        x509.CertificateBuilder()
        .subject_name(leaf_b.subject).issuer_name(ca_b.subject).public_key(leaf_b_key.public_key())
        .serial_number(7).not_valid_before(leaf_b.not_valid_before_utc)
        .not_valid_after(leaf_b.not_valid_after_utc)
        .sign(key_b, hashes.SHA256(),
              rsa_padding=padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32))
    )
    write(tmp_path / "cas.pem", pem(ca_a) + pem(ca_b))
    write(tmp_path / "leaves.pem", pem(leaf_a) + pem(leaf_b) + pem(pss))

    got = collect({"paths": [str(tmp_path)]})

    assert edge_set(got) == {
        (cid(ca_a), "issued", cid(leaf_a)),
        (cid(ca_b), "issued", cid(leaf_b)),
        (cid(ca_b), "issued", cid(pss)),
    }
    node = {n.id: n for n in got.nodes}[cid(pss)]
    assert node.attrs["key_type"] == "ec" and node.attrs["signature_hash"] == "sha256"
    assert node.attrs["serial"] == "07"
    assert {n.id: n for n in got.nodes}[cid(ca_a)].attrs["key_size"] == 2048


def test_intermediate_chain_in_one_file_no_self_loop(tmp_path, collect):
    root, root_key = make_ca("Lab Root")
    inter, inter_key = make_ca("Lab Issuing CA", issuer=(root, root_key), path_length=0)
    leaf, leaf_key = make_leaf(inter, inter_key, "api.lab", san=["api.lab", "api2.lab"])
    write(tmp_path / "fullchain.pem", pem(leaf) + pem(inter) + pem(root))
    write(tmp_path / "api.key", pem_key(leaf_key))

    got = collect({"paths": [str(tmp_path)]})

    assert edge_set(got) == {
        (cid(root), "issued", cid(inter)),
        (cid(inter), "issued", cid(leaf)),
        (kid(leaf_key), "authenticates_as", cid(leaf)),
    }
    nodes = {n.id: n for n in got.nodes}
    assert nodes[cid(inter)].kind == "ca" and nodes[cid(inter)].attrs["path_length"] == 0
    assert nodes[cid(leaf)].attrs["san"] == ["DNS:api.lab", "DNS:api2.lab"]
    assert nodes[cid(leaf)].attrs["issuer"] == "O=Revoke Lab,CN=Lab Issuing CA"
    assert nodes[cid(root)].attrs["key_usage"] == ["digital_signature", "key_cert_sign", "crl_sign"]


def test_ed25519_ca_and_wrong_key_type_candidates(tmp_path, collect):
    from cryptography import x509

    ed_ca, ed_key = make_ca("Mixed CA", key="ed25519")
    ec_ca, ec_key = make_ca("Mixed CA", key="ec")
    leaf_key = ed25519.Ed25519PrivateKey.generate()
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name.from_rfc4514_string("CN=ed-leaf"))
        .issuer_name(ed_ca.subject).public_key(leaf_key.public_key()).serial_number(1)
        .not_valid_before(ed_ca.not_valid_before_utc).not_valid_after(ed_ca.not_valid_after_utc)
        .sign(ed_key, None)
    )
    write(tmp_path / "all.pem", pem(ed_ca) + pem(ec_ca) + pem(leaf))
    got = collect({"paths": [str(tmp_path)]})
    assert edge_set(got) == {(cid(ed_ca), "issued", cid(leaf))}
    assert not signed_by(leaf, ec_key.public_key())
    assert {n.id: n for n in got.nodes}[cid(leaf)].attrs["signature_hash"] is None


def test_key_pairing_across_formats(tmp_path, collect):
    ca, ca_key = make_ca("Pair CA", key="rsa")
    ec_leaf, ec_key = make_leaf(ca, ca_key, "ec.pair", key="ec")
    rsa_leaf, rsa_key = make_leaf(ca, ca_key, "rsa.pair", key="rsa")
    ssh_key = ed25519.Ed25519PrivateKey.generate()
    trad = serialization.PrivateFormat.TraditionalOpenSSL
    none = serialization.NoEncryption()
    write(tmp_path / "ca.crt", pem(ca))
    write(tmp_path / "ca.key", ca_key.private_bytes(serialization.Encoding.PEM, trad, none))  # PKCS#1
    write(tmp_path / "ec.crt", pem(ec_leaf))
    write(tmp_path / "ec.key", ec_key.private_bytes(serialization.Encoding.PEM, trad, none))  # SEC1
    write(tmp_path / "rsa.crt", pem(rsa_leaf))
    write(tmp_path / "rsa.der", rsa_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, none))
    write(tmp_path / "id_ed25519", ssh_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, none))

    got = collect({"paths": [str(tmp_path)], "holder": "host:pki-box"})

    certs = {cid(ca), cid(ec_leaf), cid(rsa_leaf)}
    keys = {kid(ca_key), kid(ec_key), kid(rsa_key), kid(ssh_key)}
    assert edge_set(got) == {
        (cid(ca), "issued", cid(ec_leaf)),
        (cid(ca), "issued", cid(rsa_leaf)),
        (kid(ca_key), "authenticates_as", cid(ca)),
        (kid(ec_key), "authenticates_as", cid(ec_leaf)),
        (kid(rsa_key), "authenticates_as", cid(rsa_leaf)),
    } | {("host:pki-box", "holds_public", n) for n in certs} | {("host:pki-box", "stores", n) for n in keys}
    nodes = {n.id: n for n in got.nodes}
    assert {nodes[k].attrs["format"] for k in keys} == {"pkcs1", "sec1", "der", "openssh"}
    assert nodes[kid(ca_key)].attrs["key_type"] == "rsa" and nodes[kid(ca_key)].attrs["key_size"] == 2048
    assert nodes[kid(ssh_key)].attrs["key_type"] == "ed25519"
    assert nodes[kid(ec_key)].attrs["path"] == str(tmp_path / "ec.key")


def test_ids_and_fingerprints_match_pem_ref(tmp_path, collect):
    ca, ca_key = make_ca("Ref CA")
    leaf, leaf_key = make_leaf(ca, ca_key, "ref.leaf")
    text = pem(ca) + pem(leaf) + pem_key(leaf_key)
    write(tmp_path / "bundle.pem", text)
    got = collect({"paths": [str(tmp_path)]})
    nodes = {n.id: n for n in got.nodes}
    refs = [pem_ref(label, block) for label, block in pem_objects(text)]
    assert [r.ref for r in refs if r] == [cid(ca), cid(leaf), kid(leaf_key)]
    for r in refs:
        # pem_ref reports a CA's kind as certificate; the id (x509:ca:...) is what links nodes
        assert r is not None and nodes[r.ref].fingerprint == r.fingerprint
