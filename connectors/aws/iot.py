"""AWS IoT Core: the pure transform of CA and device certificates, things and policies, and the
certificate material a reissue needs.

A CA registered in IoT is the same credential as the x509 connector's `x509:ca:<sha256 DER>`;
`derives {alias: True}` edges join the two ids so a CA key found on a host reaches the IoT
CA and every device certificate it issued. `issued` CA -> certificate comes from IoT's own
link (checked against the signature: `signature: verified | mismatch | unchecked`) or, for a
certificate IoT links to no CA, from the signature alone (`basis: signature`).

Ids, issuance and the new CA and device certificates come from `connectors.pki`; only what is
IoT's own (the registration proof, the ids IoT may give a certificate) stays here.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime
from typing import Any

from connectors import pki
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


@functools.lru_cache(maxsize=1 << 16)
def verify_signature(cert_pem: str, ca_pem: str) -> bool:
    """Whether the CA issued this certificate (issuer name and signature). Remembered: a pure
    function of the two PEMs, asked again for every certificate by each later collection."""
    try:
        return pki.issued_by(pki.load_pem(cert_pem), pki.load_pem(ca_pem))
    except ValueError:
        return False


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
    # IoT trusts its active registered CAs: a device certificate they sign can connect. The
    # registry is the trust store (the walk never follows `trusts`; the plan and verify use it).
    iot_id = f"aws:iot:{account}/{region}"
    if raw.get("cas"):
        nodes.append(Node(id=iot_id, kind=NodeKind.WORKLOAD, provider=PROVIDER, name=f"IoT Core {region}",
                          attrs={"account": account, "region": region}))
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
        if str(ca.get("status", "")).upper() == "ACTIVE":
            edges.append((iot_id, "trusts", ca_node_id(cid), {"path": "IoT CA registry"}))
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
    for prefix, kind, attached in (("aws:iot_thing:", NodeKind.WORKLOAD, raw.get("thing_principals", {})),
                                   ("aws:iot_policy:", NodeKind.POLICY, raw.get("policy_targets", {}))):
        _attached_nodes(prefix, kind, attached, by_arn, account, region, nodes, edges)
    return nodes, edges, findings


def _attached_nodes(prefix: str, kind: NodeKind, attached: dict[str, list[str]], by_arn: dict[str, str],
                    account: str, region: str, nodes: list[Node], edges: list[IotEdge]) -> None:
    """Things or policies (`prefix` + name), each with `authenticates_as` from every collected
    certificate attached to it (certificate ARN -> id in `by_arn`)."""
    for name, arns in sorted(attached.items()):
        node_id = f"{prefix}{name}"
        nodes.append(Node(id=node_id, kind=kind, provider=PROVIDER, name=name,
                          attrs={"account": account, "region": region}))
        for arn in arns:
            if arn in by_arn:
                edges.append((cert_node_id(by_arn[arn]), "authenticates_as", node_id, {}))


# ---------------------------------------------------------------------------------------------
# certificate material


def registered_id_candidates(cert_pem: str) -> list[str]:
    """The ids IoT may have given a registered certificate: the SHA-256 of its DER (AWS), or of
    its PEM text (some emulators)."""
    return [pki.pem_sha256(cert_pem), hashlib.sha256(cert_pem.encode()).hexdigest()]


def verification_certificate(ca_pem: str, ca_key_pem: str, code: str) -> str:
    """The proof-of-possession certificate AWS asks for: CN = registration code, signed by the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca = pki.load_pem(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, code or "verification")])
    return pki.pem(pki.build_certificate(subject, key.public_key(), issuer=ca.subject, signer=ca_key, ca=False, days=1))
