"""AWS IoT Core: the pure transform of CA and device certificates, things and policies, and the
certificate material a reissue needs.

A CA registered in IoT is the same credential as the x509 connector's `x509:ca:<sha256 DER>`;
`derives {alias: True}` edges join the two ids so a CA key found on a host reaches the IoT
CA and every device certificate it issued. `issued` CA -> certificate comes from IoT's own
link (checked against the signature: `signature: verified | mismatch | unchecked`) or, for a
certificate IoT links to no CA, from the signature alone (`basis: signature`).

The PKI helpers at the end (`new_device_certificate`, `new_ca`, `verification_certificate`,
`der_sha256`, `registered_id_candidates`) are separate top-level functions so that a shared PKI
module can replace them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.aws.client import PROVIDER
from revoke.connector import CollectFinding
from revoke.model import Node, NodeKind

IotEdge = tuple[str, str, str, dict[str, Any]]


def ca_node_id(ca_id: str) -> str:
    return f"aws:iot_ca:{ca_id}"


def cert_node_id(cert_id: str) -> str:
    return f"aws:iot_certificate:{cert_id}"


def pem_alias(pem: str) -> str | None:
    """The x509 connector's id for the same certificate."""
    from connectors.recognize import pem_objects, pem_ref

    for label, block in pem_objects(pem or ""):
        found = pem_ref(label, block)
        if found is not None:
            return found.ref
    return None


def verify_signature(cert_pem: str, ca_pem: str) -> bool:
    """Whether the CA's key signed this certificate (issuer name and signature)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _dt(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def transform_iot(raw: dict[str, Any], account: str, region: str) -> tuple[list[Node], list[IotEdge], list[CollectFinding]]:
    nodes: list[Node] = []
    edges: list[IotEdge] = []
    findings: list[CollectFinding] = []
    by_arn: dict[str, str] = {}
    ca_pems: dict[str, str] = {}
    issuer_of: dict[str, str] = {}
    for ca in raw.get("cas", []):
        cid = ca["certificateId"]
        ca_pems[cid] = ca.get("certificatePem", "")
        nodes.append(Node(
            id=ca_node_id(cid), kind=NodeKind.CA, provider=PROVIDER, name=cid[:12],
            created=_dt(ca.get("creationDate")), status=str(ca.get("status", "")).lower(),
            expires=_dt((ca.get("validity") or {}).get("notAfter")),
            attrs={"arn": ca.get("certificateArn", ""), "account": account, "region": region},
        ))
        alias = pem_alias(ca_pems[cid])
        if alias:
            edges.append((alias, "derives", ca_node_id(cid), {"alias": True}))
        for member in ca.get("members", []):
            issuer_of[member] = cid
    for cert in raw.get("certificates", []):
        cid = cert["certificateId"]
        by_arn[cert.get("certificateArn", "")] = cid
        ca_id = cert.get("caCertificateId") or issuer_of.get(cid)
        nodes.append(Node(
            id=cert_node_id(cid), kind=NodeKind.CERTIFICATE, provider=PROVIDER, name=cid[:12],
            created=_dt(cert.get("creationDate")), status=str(cert.get("status", "")).lower(),
            expires=_dt((cert.get("validity") or {}).get("notAfter")),
            attrs={"arn": cert.get("certificateArn", ""), "account": account, "region": region,
                   **({"ca": ca_id} if ca_id else {})},
        ))
        pem = cert.get("certificatePem", "")
        alias = pem_alias(pem)
        if alias:
            edges.append((alias, "derives", cert_node_id(cid), {"alias": True}))
        if ca_id and ca_id in ca_pems:
            verified = verify_signature(pem, ca_pems[ca_id]) if pem and ca_pems[ca_id] else None
            attrs = {"signature": {True: "verified", False: "mismatch", None: "unchecked"}[verified]}
            edges.append((ca_node_id(ca_id), "issued", cert_node_id(cid), attrs))
            if verified is False:
                findings.append(CollectFinding("aws.iot.signature_mismatch",
                                        f"IoT links this certificate to CA {ca_id} but that CA did not sign it",
                                        node=cert_node_id(cid), source=PROVIDER))
        elif pem:
            for other, ca_pem in ca_pems.items():
                if ca_pem and verify_signature(pem, ca_pem):
                    edges.append((ca_node_id(other), "issued", cert_node_id(cid), {"signature": "verified",
                                                                                   "basis": "signature"}))
    for thing, principals in sorted(raw.get("thing_principals", {}).items()):
        nodes.append(Node(id=f"aws:iot_thing:{thing}", kind=NodeKind.WORKLOAD, provider=PROVIDER, name=thing,
                          attrs={"account": account, "region": region}))
        for arn in principals:
            if arn in by_arn:
                edges.append((cert_node_id(by_arn[arn]), "authenticates_as", f"aws:iot_thing:{thing}", {}))
    for policy, targets in sorted(raw.get("policy_targets", {}).items()):
        nodes.append(Node(id=f"aws:iot_policy:{policy}", kind=NodeKind.POLICY, provider=PROVIDER, name=policy,
                          attrs={"account": account, "region": region}))
        for arn in targets:
            if arn in by_arn:
                edges.append((cert_node_id(by_arn[arn]), "authenticates_as", f"aws:iot_policy:{policy}", {}))
    return nodes, edges, findings


# ---------------------------------------------------------------------------------------------
# certificate material


def new_device_certificate(old_pem: str, ca_pem: str, ca_key_pem: str, days: int = 365) -> tuple[str, str]:
    """(certificate PEM, key PEM): a P-256 key and a certificate with the old subject, signed by the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    old = x509.load_pem_x509_certificate(old_pem.encode())
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return _pem(cert), _key_pem(key)


def new_ca(old_pem: str | None, days: int = 3650) -> tuple[str, str]:
    """(certificate PEM, key PEM) of a new self-signed P-256 CA named after the old one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    name = "Replacement CA"
    if old_pem:
        old = x509.load_pem_x509_certificate(old_pem.encode())
        cns = old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cns:
            name = str(cns[0].value)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} (reissued {stamp})")])
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem(cert), _key_pem(key)


def _pem(cert: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def der_sha256(pem: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def registered_id_candidates(cert_pem: str) -> list[str]:
    """The ids IoT may have given a registered certificate: the SHA-256 of its DER (AWS), or of
    its PEM text (some emulators)."""
    return [der_sha256(cert_pem), hashlib.sha256(cert_pem.encode()).hexdigest()]


def verification_certificate(ca_pem: str, ca_key_pem: str, code: str) -> str:
    """The proof-of-possession certificate AWS asks for: CN = registration code, signed by the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, code or "verification")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return _pem(cert)
