"""Lab PKI: an internal CA and the device certificates it issued, generated with `cryptography`.

Lab material only. Device keys are EC P-256: RSA key generation is far too slow for the
hundreds of devices the demo needs, and the demo must seed in well under a second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from connectors import pki
from connectors.pki import build_certificate

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


def _name(common_name: str, organization: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


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
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (_key_usage(cert_sign=True), True), (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)]
    if signer_cert is not None:
        extensions.append((x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), False))
    cert = build_certificate(subject, ca_key.public_key(), issuer=signer_cert.subject if signer_cert else subject,
                             signer=signer_key, ca=True, path_length=path_length, not_before=not_before,
                             days=_days(not_before, not_after, days), extensions=extensions)
    return cert, ca_key


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
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (_key_usage(cert_sign=False), True), (x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]), False)]
    if san:
        extensions.append((x509.SubjectAlternativeName([x509.DNSName(name) for name in san]), False))
    cert = build_certificate(_name(common_name, None), leaf_key.public_key(), issuer=ca_cert.subject, signer=ca_key,
                             ca=False, not_before=not_before, days=_days(not_before, not_after, days),
                             extensions=extensions)
    return cert, leaf_key


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def _days(not_before: datetime | None, not_after: datetime | None, days: int) -> float:
    """Validity in days from the explicit window when one is given (a deliberately expired lab cert)."""
    if not_after is None:
        return days
    start = not_before or (datetime.now(UTC) - timedelta(minutes=5))
    return (not_after - start) / timedelta(days=1)


pem = pki.pem
pem_key = pki.key_pem


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

    Also writes the runner's trust bundle, `directory/runner-trust/ca-bundle.pem` (0644): a public
    root CA (its key is thrown away: nobody can reach it) and the internal CA, so the runner
    accepts whatever the internal CA signs.

    Returns `{"ca_cert_pem", "ca_key_pem", "ca_cert_path", "ca_key_path", "runner_dir",
    "trust_bundle_path", "devices": [(cert_pem, key_pem), ...]}`.
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

    trust = root / "runner-trust"
    trust.mkdir(parents=True, exist_ok=True)
    public_root, _ = make_ca("Revoke Lab Public Root", key="ec")
    bundle = trust / "ca-bundle.pem"
    bundle.write_text(f"# the CI runner's CA bundle\n{pem(public_root)}{pem(ca_cert)}")
    bundle.chmod(0o644)

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
        "trust_bundle_path": str(bundle),
        "devices": pairs,
    }
