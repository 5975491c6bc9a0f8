"""PKI helpers every connector shares: the x509 node ids, issuance by signature, and builders.

One formula for the ids: `x509:ca:<sha256 of DER>` for a certificate with basicConstraints
CA=true, `x509:cert:<sha256 of DER>` otherwise, `x509:private_key:<sha256 of the SPKI DER>`
for a key. The x509 connector, the credential recogniser (a PEM inside a Vault secret), AWS IoT
and Vault PKI all name certificates through here: if two copies drifted, a PEM found in a store
would silently stop joining its x509 node.

Issuance is decided by the signature, never by the name alone (anyone can write an issuer
name). The builders make the replacement material revoke issues itself (a new CA, a reissued
leaf); EC P-256 keys, since RSA generation costs ~50 ms a key and a fleet has hundreds.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID


def cert_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding, hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def spki_sha256(public_key: Any) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def pem_sha256(pem: str) -> str:
    """`cert_sha256` of a PEM certificate."""
    return cert_sha256(load_pem(pem))


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def cert_node_id(cert: x509.Certificate) -> str:
    return f"x509:{'ca' if is_ca(cert) else 'cert'}:{cert_sha256(cert)}"


def key_node_id(public_key: Any) -> str:
    return f"x509:private_key:{spki_sha256(public_key)}"


def load_pem(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def signed_by(cert: x509.Certificate, issuer_public_key: Any) -> bool:
    """True when `cert`'s signature verifies with `issuer_public_key`."""
    try:
        params = cert.signature_algorithm_parameters
        algo = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return False
    sig, tbs = cert.signature, cert.tbs_certificate_bytes
    try:
        if isinstance(issuer_public_key, rsa.RSAPublicKey):
            if not isinstance(params, padding.PKCS1v15 | padding.PSS) or algo is None:
                return False
            issuer_public_key.verify(sig, tbs, params, algo)
        elif isinstance(issuer_public_key, ec.EllipticCurvePublicKey):
            if not isinstance(params, ec.ECDSA):
                return False
            issuer_public_key.verify(sig, tbs, params)
        elif isinstance(issuer_public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            if params is not None or algo is not None:
                return False
            issuer_public_key.verify(sig, tbs)
        elif isinstance(issuer_public_key, dsa.DSAPublicKey):
            if algo is None:
                return False
            issuer_public_key.verify(sig, tbs, algo)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        # ValueError/TypeError: a malformed signature or a key/algorithm mismatch: not this issuer
        return False
    return True


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """`ca` issued `cert`: the issuer name matches and the signature verifies with the CA's key."""
    return cert.issuer == ca.subject and signed_by(cert, ca.public_key())


# -- builders: replacement material revoke issues itself ----------------------------------------
def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: Any) -> str:
    """PKCS#8 PEM, unencrypted: it goes straight to a store or the escrow, in memory."""
    return str(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode())


def build_certificate(
    subject: x509.Name,
    public_key: Any,
    *,
    issuer: x509.Name,
    signer: Any,
    ca: bool,
    path_length: int | None = None,
    not_before: datetime | None = None,
    days: float = 365,
    extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
) -> x509.Certificate:
    """A certificate for `public_key` signed by `signer` (Ed25519 signs without a separate hash)."""
    start = not_before or (datetime.now(UTC) - timedelta(minutes=5))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
    )
    for ext, critical in extensions or []:
        builder = builder.add_extension(ext, critical=critical)
    digest = None if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
    return builder.sign(signer, digest)


def new_ca(old_pem: str | None, days: int = 3650) -> tuple[str, str]:
    """(certificate PEM, key PEM) of a new self-signed P-256 CA named after the old one."""
    name = (common_name(load_pem(old_pem)) if old_pem else "") or "Replacement CA"
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} (reissued {stamp})")])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_certificate(subject, key.public_key(), issuer=subject, signer=key, ca=True, path_length=0, days=days,
                             extensions=[(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)])
    return pem(cert), key_pem(key)


def new_leaf(old_pem: str, ca_pem: str, ca_key_pem: str, days: int = 365) -> tuple[str, str]:
    """(certificate PEM, key PEM): a new P-256 key and a certificate with the old subject, signed by the CA."""
    old, ca = load_pem(old_pem), load_pem(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_certificate(old.subject, key.public_key(), issuer=ca.subject, signer=ca_key, ca=False, days=days)
    return pem(cert), key_pem(key)
