"""Vault PKI: issuers, the certificates they issued, revocation, CRL probes and reissue.

`pki/cert/<serial>` does not say which issuer signed a certificate, so `issued` edges are
decided by verifying each certificate's signature against every issuer of the mount.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.vault.client import PROVIDER, VaultApi, status_of
from revoke.connector import ConnectorError, ProbeResult, Replacement, Secret
from revoke.model import Edge, Node, NodeKind, Relation

P = PROVIDER


def issuer_node_id(mount: str, issuer: str) -> str:
    return f"vault:pki_issuer:{mount}/{issuer}"


def cert_node_id(mount: str, serial: str) -> str:
    return f"vault:pki_cert:{mount}/{norm_serial(serial)}"


def norm_serial(serial: str) -> str:
    return serial.strip().lower().replace("-", ":")


def split_id(node_id: str) -> tuple[str, str]:
    """`vault:pki_cert:pki/ab:cd` -> (`pki`, `ab:cd`); the mount may contain slashes."""
    rest = node_id.split(":", 2)[2]
    mount, _, tail = rest.rpartition("/")
    return mount, tail


def pki_mounts(mounts: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(m for m, v in mounts.items() if v.get("type") == "pki")


@dataclass
class PkiPayload:
    mount: str
    issuers: dict[str, dict[str, Any]]  # issuer id -> `issuer/<id>` data
    certs: dict[str, dict[str, Any]]  # serial -> `cert/<serial>` data


def get_pki(api: VaultApi, mount: str) -> PkiPayload:
    issuers = {}
    for iid in api.list_keys(f"{mount}/issuers"):
        issuers[iid] = (api.get(f"{mount}/issuer/{iid}", node=issuer_node_id(mount, iid)) or {}).get("data") or {}
    certs = {}
    for serial in api.list_keys(f"{mount}/certs"):
        certs[serial] = (api.get(f"{mount}/cert/{serial}", node=cert_node_id(mount, serial)) or {}).get("data") or {}
    return PkiPayload(mount, issuers, certs)


def _load(pem: str) -> Any:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem.encode())


def _der_sha(cert: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _signed_by(cert: Any, issuer: Any) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _cn(cert: Any) -> str:
    from cryptography.x509.oid import NameOID

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def transform_pki(payload: PkiPayload) -> tuple[list[Node], list[Edge]]:
    nodes: list[Node] = []
    edges: list[Edge] = []
    m = payload.mount
    issuer_certs: dict[str, Any] = {}
    issuer_shas: set[str] = set()
    for iid, data in sorted(payload.issuers.items()):
        cert = _load(data["certificate"])
        sha = _der_sha(cert)
        issuer_certs[iid] = cert
        issuer_shas.add(sha)
        nid = issuer_node_id(m, iid)
        revoked = bool(data.get("revoked"))
        nodes.append(Node(nid, NodeKind.CA, P, name=data.get("issuer_name") or _cn(cert),
                          created=cert.not_valid_before_utc, expires=cert.not_valid_after_utc,
                          status="revoked" if revoked else "active",
                          attrs={"mount": m, "issuer_id": iid, "subject": cert.subject.rfc4514_string(),
                                 "key_id": data.get("key_id") or "", "sha256": sha,
                                 "self_signed": cert.issuer == cert.subject}))
        edges.append(Edge(f"x509:ca:{sha}", nid, Relation.DERIVES, attrs={"alias": True}))
    for iid, cert in issuer_certs.items():  # a root issuer that signed an intermediate one
        for pid, parent in issuer_certs.items():
            if pid != iid and _signed_by(cert, parent):
                edges.append(Edge(issuer_node_id(m, pid), issuer_node_id(m, iid), Relation.ISSUED))
    for serial, data in sorted(payload.certs.items()):
        if not data.get("certificate"):
            continue
        cert = _load(data["certificate"])
        sha = _der_sha(cert)
        if sha in issuer_shas:
            continue  # `LIST pki/certs` includes the issuers' own serials
        nid = cert_node_id(m, serial)
        from connectors.recognize import cert_type

        revoked = int(data.get("revocation_time") or 0) > 0
        signers = [iid for iid, ic in issuer_certs.items() if _signed_by(cert, ic)]
        nodes.append(Node(nid, NodeKind.CERTIFICATE, P, name=_cn(cert),
                          created=cert.not_valid_before_utc, expires=cert.not_valid_after_utc,
                          status="revoked" if revoked else "active",
                          attrs={"mount": m, "serial": norm_serial(serial), "subject": cert.subject.rfc4514_string(),
                                 "issuer_id": signers[0] if signers else "", "sha256": sha}))
        edges.append(Edge(f"x509:{cert_type(cert)}:{sha}", nid, Relation.DERIVES, attrs={"alias": True}))
        for iid in signers:
            edges.append(Edge(issuer_node_id(m, iid), nid, Relation.ISSUED))
    return nodes, edges


# ---------------------------------------------------------------------------------------------
# Actions and probes


def revoke_cert(api: VaultApi, node: Node) -> tuple[bool, str]:
    mount, serial = split_id(node.id)
    data = (api.get(f"{mount}/cert/{serial}", node=node.id) or {}).get("data") or {}
    if int(data.get("revocation_time") or 0) > 0:
        return False, "already revoked"
    api.post(f"{mount}/revoke", {"serial_number": serial}, node=node.id)
    return True, "serial revoked; CRL rebuilt"


def revoke_issuer(api: VaultApi, node: Node) -> tuple[bool, str]:
    mount, iid = split_id(node.id)
    data = (api.get(f"{mount}/issuer/{iid}", node=node.id) or {}).get("data") or {}
    if data.get("revoked"):
        return False, "issuer already revoked"
    api.post(f"{mount}/issuer/{iid}/revoke", {}, node=node.id)
    return True, "issuer revoked"


def probe_cert(api: VaultApi, node: Node) -> ProbeResult:
    """Live unless the serial is on the issuer's CRL (signature checked) or the cert expired."""
    from cryptography import x509

    mount, serial = split_id(node.id)
    try:
        data = (api.get(f"{mount}/cert/{serial}", node=node.id) or {}).get("data") or {}
    except ConnectorError as exc:
        if status_of(exc) == 404:
            return ProbeResult(node.id, False, "cert read: 404 not found")
        raise
    cert = _load(data["certificate"])
    if cert.not_valid_after_utc <= datetime.now(UTC):
        return ProbeResult(node.id, False, "certificate expired")
    issuers = {iid: _load(((api.get(f"{mount}/issuer/{iid}") or {}).get("data") or {})["certificate"])
               for iid in api.list_keys(f"{mount}/issuers")}
    signer = next((iid for iid, ic in issuers.items() if _signed_by(cert, ic)), None)
    if signer is None:
        return ProbeResult(node.id, None, "no issuer of the mount verifies this certificate")
    crl = x509.load_der_x509_crl(api.get_bytes(f"{mount}/issuer/{signer}/crl/der", node=node.id))
    if not crl.is_signature_valid(issuers[signer].public_key()):
        return ProbeResult(node.id, None, "CRL signature does not verify against the issuer")
    if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        return ProbeResult(node.id, False, "crl: serial present (signature verified)")
    return ProbeResult(node.id, True, "crl: serial absent (signature verified)")


def probe_issuer(api: VaultApi, node: Node) -> ProbeResult:
    mount, iid = split_id(node.id)
    try:
        data = (api.get(f"{mount}/issuer/{iid}", node=node.id) or {}).get("data") or {}
    except ConnectorError as exc:
        if status_of(exc) in (404, 500):  # a deleted issuer reads as an error, not as data
            return ProbeResult(node.id, False, f"issuer read: HTTP {status_of(exc)}")
        raise
    if data.get("revoked"):
        return ProbeResult(node.id, False, "issuer read: revoked=true")
    return ProbeResult(node.id, True, "issuer read: revoked=false")


def reissue_cert(api: VaultApi, node: Node, issuer_ref: str | None) -> Replacement:
    """A new key and certificate with the same subject and SANs, signed verbatim by the issuer
    (the replacement issuer when the old one is being replaced)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    mount, serial = split_id(node.id)
    old = _load(((api.get(f"{mount}/cert/{serial}", node=node.id) or {}).get("data") or {})["certificate"])
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(old.subject)
    try:
        san = old.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        builder = builder.add_extension(san.value, critical=san.critical)
    except x509.ExtensionNotFound:
        pass
    csr = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    remaining = max(int((old.not_valid_after_utc - datetime.now(UTC)).total_seconds()), 3600)
    path = f"{mount}/issuer/{issuer_ref}/sign-verbatim" if issuer_ref else f"{mount}/sign-verbatim"
    data = (api.post(path, {"csr": csr, "ttl": f"{remaining}s"}, node=node.id) or {}).get("data") or {}
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    new_serial = norm_serial(data["serial_number"])
    return Replacement(
        old_id=node.id,
        new_id=cert_node_id(mount, new_serial),
        kind=NodeKind.CERTIFICATE,
        material=Secret({"certificate_pem": data["certificate"], "private_key_pem": key_pem}),
        attrs={"serial": new_serial, "issuer": issuer_ref or "default"},
    )


def new_root_issuer(api: VaultApi, node: Node) -> Replacement:
    """A new internal root issuer with the same subject, made the mount's default."""
    mount, iid = split_id(node.id)
    old_data = (api.get(f"{mount}/issuer/{iid}", node=node.id) or {}).get("data") or {}
    old = _load(old_data["certificate"])
    if old.issuer != old.subject:
        raise ConnectorError(P, "create_replacement", "only root issuers can be replaced here; "
                             "an intermediate needs its parent to sign the new one", node=node.id)
    key_type = "ec" if "EC" in type(old.public_key()).__name__.upper() else "rsa"
    remaining = max(int((old.not_valid_after_utc - datetime.now(UTC)).total_seconds()), 86400)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    data = (api.post(f"{mount}/root/generate/internal", {
        "common_name": _cn(old), "issuer_name": f"{old_data.get('issuer_name') or 'issuer'}-r{stamp}"[:120],
        "key_type": key_type, "key_bits": 256 if key_type == "ec" else 2048, "ttl": f"{remaining}s",
    }, node=node.id) or {}).get("data") or {}
    new_id = data["issuer_id"]
    api.post(f"{mount}/root/replace", {"default": new_id}, node=node.id)
    return Replacement(old_id=node.id, new_id=issuer_node_id(mount, new_id), kind=NodeKind.CA,
                       material=Secret({"certificate_pem": data["certificate"]}),
                       attrs={"issuer_id": new_id, "key": "internal to Vault"})
