"""Vault PKI actions over the client: revoke a certificate or an issuer, probe them against the
CRL, reissue a certificate, replace a root issuer. Certificate parsing and issuance checks come from
`connectors.pki`.

Ids: `vault:pki_cert:<mount>/<serial>`, `vault:pki_issuer:<mount>/<issuer id>` (connectors.vault.ids).
"""

from __future__ import annotations

from datetime import UTC, datetime

from connectors import pki
from connectors.vault.client import PROVIDER, VaultApi
from connectors.vault.ids import cert_node_id, issuer_node_id, native, norm_serial, split_pki
from revoke.connector import ConnectorError, ProbeResult, Replacement, Secret
from revoke.model import Node, NodeKind


def revoke_cert(api: VaultApi, node: Node) -> tuple[bool, str]:
    mount, serial = split_pki(node.id)
    data = (api.get(f"{mount}/cert/{serial}", node=node.id) or {}).get("data") or {}
    if int(data.get("revocation_time") or 0) > 0:
        return False, "already revoked"
    api.post(f"{mount}/revoke", {"serial_number": serial}, node=node.id)
    return True, "serial revoked; CRL rebuilt"


def revoke_issuer(api: VaultApi, node: Node) -> tuple[bool, str]:
    mount, iid = split_pki(node.id)
    data = (api.get(f"{mount}/issuer/{iid}", node=node.id) or {}).get("data") or {}
    if data.get("revoked"):
        return False, "issuer already revoked"
    api.post(f"{mount}/issuer/{iid}/revoke", {}, node=node.id)
    return True, "issuer revoked"


def probe_cert(api: VaultApi, node: Node) -> ProbeResult:
    """Live unless the serial is on the issuer's CRL (signature checked) or the cert expired."""
    from cryptography import x509

    mount, serial = split_pki(node.id)
    try:
        data = (api.get(f"{mount}/cert/{serial}", node=node.id) or {}).get("data") or {}
    except ConnectorError as exc:
        if exc.code == "404":
            return ProbeResult(node.id, False, "cert read: 404 not found")
        raise
    cert = pki.load_pem(data["certificate"])
    if cert.not_valid_after_utc <= datetime.now(UTC):
        return ProbeResult(node.id, False, "certificate expired")
    issuers = {iid: pki.load_pem(((api.get(f"{mount}/issuer/{iid}") or {}).get("data") or {})["certificate"])
               for iid in api.list_keys(f"{mount}/issuers")}
    signer = next((iid for iid, ic in issuers.items() if pki.issued_by(cert, ic)), None)
    if signer is None:
        return ProbeResult(node.id, None, "no issuer of the mount verifies this certificate")
    crl = x509.load_der_x509_crl(api.get_bytes(f"{mount}/issuer/{signer}/crl/der", node=node.id))
    if not crl.is_signature_valid(issuers[signer].public_key()):  # type: ignore[arg-type]  # issuers are CAs: no X25519/X448 keys
        return ProbeResult(node.id, None, "CRL signature does not verify against the issuer")
    if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        return ProbeResult(node.id, False, "crl: serial present (signature verified)")
    return ProbeResult(node.id, True, "crl: serial absent (signature verified)")


def probe_issuer(api: VaultApi, node: Node) -> ProbeResult:
    mount, iid = split_pki(node.id)
    try:
        data = (api.get(f"{mount}/issuer/{iid}", node=node.id) or {}).get("data") or {}
    except ConnectorError as exc:
        if exc.code in ("404", "500"):  # a deleted issuer reads as an error, not as data
            return ProbeResult(node.id, False, f"issuer read: HTTP {exc.code}")
        raise
    if data.get("revoked"):
        return ProbeResult(node.id, False, "issuer read: revoked=true")
    return ProbeResult(node.id, True, "issuer read: revoked=false")


# ---------------------------------------------------------------------------------------------
# Replacements


def reissue_cert(api: VaultApi, node: Node, issuer_ref: str | None) -> Replacement:
    """A new key and certificate with the same subject and SANs, signed verbatim by the issuer
    (the replacement issuer when the old one is being replaced)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    mount, serial = split_pki(node.id)
    old = pki.load_pem(((api.get(f"{mount}/cert/{serial}", node=node.id) or {}).get("data") or {})["certificate"])
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


def reissue_cert_under(api: VaultApi, node: Node, replacements: dict[str, str]) -> Replacement:
    """Reissue under the certificate's issuer, or under that issuer's replacement when this
    incident already made one (`replacements`: old node id -> new node id)."""
    issuer = node.attrs.get("issuer_id") or None
    old_issuer = issuer_node_id(split_pki(node.id)[0], issuer) if issuer else ""
    new_issuer = replacements.get(old_issuer, "")
    ref = split_pki(new_issuer)[1] if new_issuer else issuer
    return reissue_cert(api, node, ref)


def new_root_issuer(api: VaultApi, node: Node) -> Replacement:
    """A new internal root issuer with the same subject, made the mount's default."""
    mount, iid = split_pki(node.id)
    old_data = (api.get(f"{mount}/issuer/{iid}", node=node.id) or {}).get("data") or {}
    old = pki.load_pem(old_data["certificate"])
    if old.issuer != old.subject:
        raise ConnectorError(PROVIDER, "create_replacement", "only root issuers can be replaced here; "
                             "an intermediate needs its parent to sign the new one", node=node.id)
    key_type = "ec" if "EC" in type(old.public_key()).__name__.upper() else "rsa"
    remaining = max(int((old.not_valid_after_utc - datetime.now(UTC)).total_seconds()), 86400)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    data = (api.post(f"{mount}/root/generate/internal", {
        "common_name": pki.common_name(old), "issuer_name": f"{old_data.get('issuer_name') or 'issuer'}-r{stamp}"[:120],
        "key_type": key_type, "key_bits": 256 if key_type == "ec" else 2048, "ttl": f"{remaining}s",
    }, node=node.id) or {}).get("data") or {}
    new_id = data["issuer_id"]
    api.post(f"{mount}/root/replace", {"default": new_id}, node=node.id)
    return Replacement(old_id=node.id, new_id=issuer_node_id(mount, new_id), kind=NodeKind.CA,
                       material=Secret({"certificate_pem": data["certificate"]}),
                       attrs={"issuer_id": new_id, "key": "internal to Vault"})


# ---------------------------------------------------------------------------------------------
# Trust: a CA certificate the mount imported (it holds no key for it)


def trusted_issuers(api: VaultApi, mount: str, ca_id: str, node_id: str) -> list[tuple[str, bool]]:
    """(issuer id, holds a key) for every issuer of the mount whose certificate is `ca_id`
    (the x509 id, `connectors.pki.cert_node_id`)."""
    out = []
    for iid in api.list_keys(f"{mount}/issuers"):
        data = (api.get(f"{mount}/issuer/{iid}", node=node_id) or {}).get("data") or {}
        if data.get("certificate") and pki.cert_node_id(pki.load_pem(data["certificate"])) == ca_id:
            out.append((iid, bool(data.get("key_id"))))
    return out


def untrust(api: VaultApi, node: Node, ca_id: str) -> tuple[bool, str, dict[str, str]]:
    """Delete every imported issuer of the mount holding `ca_id`'s certificate. Refused, changing
    nothing, when one is the mount's default issuer (deleting it leaves the mount issuing with
    nothing, or silently with another CA) or holds a key (then the mount signs with the CA: that
    is a CA to replace, not a trust to drop)."""
    from connectors.vault.collect import default_issuer

    mount = native(node.id)
    if not ca_id:
        raise ConnectorError(PROVIDER, "untrust", "the step names no CA to remove", node=node.id)
    found = trusted_issuers(api, mount, ca_id, node.id)
    if not found:
        return False, f"no issuer of {mount} holds {ca_id}", {}
    default = default_issuer(api, mount)
    for iid, keyed in found:
        if iid == default:
            raise ConnectorError(PROVIDER, "untrust", f"issuer {iid} is {mount}'s default issuer: set another "
                                 f"default ({mount}/config/issuers) and delete {mount}/issuer/{iid} by hand, then "
                                 "attest", node=node.id, code="default_issuer")
        if keyed:
            raise ConnectorError(PROVIDER, "untrust", f"issuer {iid} of {mount} holds the CA's key: replace the "
                                 "issuer instead of dropping a trust", node=node.id, code="keyed_issuer")
    for iid, _ in found:
        api.delete(f"{mount}/issuer/{iid}", node=node.id)
    ids = ", ".join(iid for iid, _ in found)
    return True, f"deleted imported issuer(s) {ids} from {mount}", {"issuers": ids, "ca": ca_id}


def confirm_untrust(api: VaultApi, node: Node, ca_id: str) -> ProbeResult:
    """Re-read the mount's issuers: live=False when none holds the CA's certificate any more."""
    mount = native(node.id)
    found = trusted_issuers(api, mount, ca_id, node.id)
    if found:
        return ProbeResult(node.id, True, f"issuers read: {mount} still holds {ca_id} as issuer "
                           + ", ".join(iid for iid, _ in found))
    return ProbeResult(node.id, False, f"issuers read: no issuer of {mount} holds {ca_id}")
