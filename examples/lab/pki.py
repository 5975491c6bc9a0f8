"""Lab PKI: an internal CA and the device certificates it issued, generated with `cryptography`.

Lab material only. Device keys are EC P-256: RSA key generation is far too slow for the
hundreds of devices the demo needs, and the demo must seed in well under a second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

KeyType = Literal["ec", "rsa", "ed25519"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def new_key(key: KeyType = "ec") -> PrivateKey:
    if key == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key!r}; expected 'ec', 'rsa' or 'ed25519'")


def _digest(signer: PrivateKey) -> hashes.SHA256 | None:
    # Ed25519 signs the message itself: cryptography requires no separate hash
    return None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _name(common_name: str, organization: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _window(not_before: datetime | None, not_after: datetime | None, days: int) -> tuple[datetime, datetime]:
    start = not_before or (datetime.now(UTC) - timedelta(minutes=5))
    return start, not_after or (start + timedelta(days=days))


def _ski(public_key: Any) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def make_ca(
    common_name: str,
    *,
    key: KeyType = "ec",
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    organization: str | None = "Revoke Lab",
    path_length: int | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    days: int = 3650,
    private_key: PrivateKey | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A CA certificate and its key: self-signed root, or an intermediate when `issuer` is given.

    `private_key` reuses an existing key (a cross-signed or re-issued CA keeps its key).
    """
    ca_key = private_key or new_key(key)
    subject = _name(common_name, organization)
    signer_cert, signer_key = issuer if issuer else (None, ca_key)
    start, end = _window(not_before, not_after, days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(ca_key.public_key()), critical=False)
    )
    if signer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False
        )
    return builder.sign(signer_key, _digest(signer_key)), ca_key


def make_leaf(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    common_name: str,
    *,
    key: KeyType = "ec",
    san: list[str] | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    days: int = 365,
    private_key: PrivateKey | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """An end-entity certificate (CA=false) signed by `ca_key`, with DNS SANs if given."""
    leaf_key = private_key or new_key(key)
    start, end = _window(not_before, not_after, days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, None))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in san]), critical=False
        )
    return builder.sign(ca_key, _digest(ca_key)), leaf_key


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def pem_key(key: PrivateKey) -> str:
    """PKCS#8 PEM, unencrypted (lab material)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def write_lab_pki(
    directory: str | Path,
    *,
    devices: int,
    ca_name: str = "Revoke Lab Internal CA",
    write_devices: bool = False,
) -> dict[str, Any]:
    """Create the internal CA and `devices` device certificates it issued.

    Writes the CA certificate and key into `directory/runner/` (the files that sat on the
    CI runner). Device material is returned in memory; it is written under
    `directory/devices/` only when `write_devices` is true.

    Returns `{"ca_cert_pem", "ca_key_pem", "ca_cert_path", "ca_key_path", "runner_dir",
    "devices": [(cert_pem, key_pem), ...]}`.
    """
    root = Path(directory)
    runner = root / "runner"
    runner.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca(ca_name, key="ec")
    ca_cert_pem, ca_key_pem = pem(ca_cert), pem_key(ca_key)
    ca_cert_path, ca_key_path = runner / "internal-ca.crt", runner / "internal-ca.key"
    ca_cert_path.write_text(ca_cert_pem)
    ca_key_path.write_text(ca_key_pem)
    ca_key_path.chmod(0o600)

    pairs: list[tuple[str, str]] = []
    for i in range(devices):
        cert, key = make_leaf(ca_cert, ca_key, f"device-{i:04d}")
        pairs.append((pem(cert), pem_key(key)))

    if write_devices:
        out = root / "devices"
        out.mkdir(parents=True, exist_ok=True)
        for i, (cert_pem, key_pem) in enumerate(pairs):
            (out / f"device-{i:04d}.crt").write_text(cert_pem)
            key_path = out / f"device-{i:04d}.key"
            key_path.write_text(key_pem)
            key_path.chmod(0o600)

    return {
        "ca_cert_pem": ca_cert_pem,
        "ca_key_pem": ca_key_pem,
        "ca_cert_path": str(ca_cert_path),
        "ca_key_path": str(ca_key_path),
        "runner_dir": str(runner),
        "devices": pairs,
    }
