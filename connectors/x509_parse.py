"""Pure parsing for the x509 connector: bytes of one file -> certificates, keys and findings.

Ids and issuance come from `connectors.pki` (one formula for every connector).

Nothing here touches the file system. Messages never quote file contents or the text of a
parser's exception (which could echo key bytes): they name the file, the block number and
what was wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from connectors.pki import is_ca, spki_sha256
from connectors.recognize import PEM_RE
from revoke.connector import CollectFinding
from revoke.model import fingerprint

CERT_LABELS = frozenset({"CERTIFICATE", "X509 CERTIFICATE"})
CSR_LABELS = frozenset({"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"})
KEY_FORMATS = {
    "PRIVATE KEY": "pkcs8",
    "RSA PRIVATE KEY": "pkcs1",
    "EC PRIVATE KEY": "sec1",
    "DSA PRIVATE KEY": "dsa",
    "OPENSSH PRIVATE KEY": "openssh",
}
# Extensions whose files are expected to hold PKI material: an unparseable one is reported,
# while any other unparseable file in a scanned tree is just not PKI and is skipped quietly.
PKI_SUFFIXES = frozenset(
    {".pem", ".crt", ".cer", ".der", ".key", ".p8", ".pk8", ".csr", ".req", ".p12", ".pfx", ".ca-bundle"}
)
PKCS12_SUFFIXES = frozenset({".p12", ".pfx"})


@dataclass
class LoadedKey:
    public_key: Any
    fingerprint: str  # of the material as stored (PEM block text or DER bytes)
    format: str
    encoding: str  # pem | der | pkcs12


@dataclass
class FileContents:
    path: str
    certs: list[x509.Certificate] = field(default_factory=list)
    keys: list[LoadedKey] = field(default_factory=list)
    csrs: int = 0
    skipped_blocks: int = 0
    findings: list[CollectFinding] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.certs or self.keys or self.csrs or self.findings)


def _finding(code: str, path: str, message: str) -> CollectFinding:
    return CollectFinding(code=code, message=f"{path}: {message}", source=path)


def parse_file(path: str, data: bytes, suffix: str = "") -> FileContents:
    """Everything PKI in one file's bytes. Never raises on bad content."""
    out = FileContents(path)
    if b"-----BEGIN " in data:
        _parse_pem(out, data)
    elif suffix in PKCS12_SUFFIXES:
        _parse_pkcs12(out, data)
    elif data[:1] == b"\x30":
        _parse_der(out, data, report=suffix in PKI_SUFFIXES)
    elif suffix in PKI_SUFFIXES and data.strip():
        out.findings.append(_finding("x509.corrupt", path, "no PEM block and not DER"))
    return out


def _parse_pem(out: FileContents, data: bytes) -> None:
    # latin-1 maps every byte, so a binary file with a stray marker cannot fail to decode
    text = data.decode("latin-1")
    blocks = [(m.group(1), m.group(0)) for m in PEM_RE.finditer(text)]
    if not blocks:
        out.findings.append(_finding("x509.corrupt", out.path, "PEM BEGIN marker without a matching END"))
        return
    for index, (label, block) in enumerate(blocks, start=1):
        where = f"block {index} ({label})"
        raw = block.encode("latin-1")
        if label in CERT_LABELS:
            try:
                out.certs.append(x509.load_pem_x509_certificate(raw))
            except ValueError:
                out.findings.append(_finding("x509.corrupt", out.path, f"{where} is not a valid certificate"))
        elif label in CSR_LABELS:
            try:
                x509.load_pem_x509_csr(raw)
                out.csrs += 1
            except ValueError:
                out.findings.append(_finding("x509.corrupt", out.path, f"{where} is not a valid CSR"))
        elif label == "ENCRYPTED PRIVATE KEY":
            out.findings.append(_encrypted(out.path, where))
        elif label in KEY_FORMATS:
            _load_pem_key(out, label, block, raw, where)
        else:
            out.skipped_blocks += 1


def _load_pem_key(out: FileContents, label: str, block: str, raw: bytes, where: str) -> None:
    key: PrivateKeyTypes
    try:
        if label == "OPENSSH PRIVATE KEY":
            key = serialization.load_ssh_private_key(raw, password=None)
        else:
            key = serialization.load_pem_private_key(raw, password=None)
    except TypeError:
        # cryptography raises TypeError when a password is needed (legacy Proc-Type or bcrypt)
        out.findings.append(_encrypted(out.path, where))
        return
    except (ValueError, UnsupportedAlgorithm):
        if "ENCRYPTED" in block[:200]:
            out.findings.append(_encrypted(out.path, where))
        else:
            out.findings.append(_finding("x509.corrupt", out.path, f"{where} is not a valid private key"))
        return
    # fingerprint of the stripped PEM block text, as connectors.recognize.pem_ref computes it
    out.keys.append(LoadedKey(key.public_key(), fingerprint(block.strip()), KEY_FORMATS[label], "pem"))


def _encrypted(path: str, where: str) -> CollectFinding:
    return _finding(
        "x509.encrypted_key", path,
        f"{where} is an encrypted private key: not placed in the graph (its passphrase may be stored "
        "nearby; add it to the inventory if this holder is compromised)",
    )


def _parse_der(out: FileContents, data: bytes, *, report: bool) -> None:
    try:
        out.certs.append(x509.load_der_x509_certificate(data))
        return
    except ValueError:
        pass
    try:
        key = serialization.load_der_private_key(data, password=None)
    except TypeError:
        out.findings.append(_encrypted(out.path, "DER"))
        return
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if key is not None:
        out.keys.append(LoadedKey(key.public_key(), fingerprint(data), "der", "der"))
        return
    try:
        x509.load_der_x509_csr(data)
        out.csrs += 1
        return
    except ValueError:
        pass
    if report:
        out.findings.append(_finding("x509.corrupt", out.path, "not a DER certificate, private key or CSR"))


def _parse_pkcs12(out: FileContents, data: bytes) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    for password in (None, b""):
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if key is not None:
            out.keys.append(LoadedKey(key.public_key(), fingerprint(data), "pkcs12", "pkcs12"))
        out.certs.extend(c for c in [cert, *extra] if c is not None)
        return
    message = "PKCS#12 bundle is password-protected or corrupt: not placed in the graph"
    out.findings.append(_finding("x509.encrypted_key", out.path, message))


# ---------------------------------------------------------------------------------------------
# Attributes


def key_params(public_key: Any) -> dict[str, Any]:
    if isinstance(public_key, rsa.RSAPublicKey):
        return {"key_type": "rsa", "key_size": public_key.key_size}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"key_type": "ec", "key_size": public_key.key_size, "curve": public_key.curve.name}
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return {"key_type": "ed25519", "key_size": 256}
    if isinstance(public_key, ed448.Ed448PublicKey):
        return {"key_type": "ed448", "key_size": 456}
    if isinstance(public_key, dsa.DSAPublicKey):
        return {"key_type": "dsa", "key_size": public_key.key_size}
    return {"key_type": type(public_key).__name__.lower()}


def _oid_name(oid: x509.ObjectIdentifier) -> str:
    return getattr(oid, "_name", "") or oid.dotted_string


def _general_name(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    if isinstance(name, x509.DirectoryName):
        return f"DirName:{name.value.rfc4514_string()}"
    if isinstance(name, x509.RegisteredID):
        return f"RID:{name.value.dotted_string}"
    if isinstance(name, x509.OtherName):
        return f"othername:{name.type_id.dotted_string}"
    return type(name).__name__


_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
           "key_agreement", "key_cert_sign", "crl_sign")


def _key_usage(ku: x509.KeyUsage) -> list[str]:
    used = [name for name in _USAGES if getattr(ku, name)]
    if ku.key_agreement:  # encipher_only / decipher_only are only defined with key_agreement
        used += [name for name in ("encipher_only", "decipher_only") if getattr(ku, name)]
    return used


def cert_attrs(cert: x509.Certificate) -> dict[str, Any]:
    """Non-secret attributes of a certificate (the certificate is public material)."""
    ext = cert.extensions
    attrs: dict[str, Any] = {
        "serial": format(cert.serial_number, "x").zfill(2),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "is_ca": is_ca(cert),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "public_key_sha256": spki_sha256(cert.public_key()),
        "signature_algorithm": _oid_name(cert.signature_algorithm_oid),
    }
    attrs.update(key_params(cert.public_key()))
    try:
        algo = cert.signature_hash_algorithm
        attrs["signature_hash"] = algo.name if algo is not None else None
    except UnsupportedAlgorithm:
        attrs["signature_hash"] = "unsupported"
    renderers: tuple[tuple[type[x509.ExtensionType], str, Callable[[Any], Any]], ...] = (
        (x509.SubjectAlternativeName, "san", lambda v: [_general_name(n) for n in v]),
        (x509.KeyUsage, "key_usage", _key_usage),
        (x509.ExtendedKeyUsage, "extended_key_usage", lambda v: [_oid_name(o) for o in v]),
        (x509.SubjectKeyIdentifier, "ski", lambda v: v.digest.hex()),
        (x509.AuthorityKeyIdentifier, "aki", lambda v: v.key_identifier.hex() if v.key_identifier else None),
        (x509.BasicConstraints, "path_length", lambda v: v.path_length),
    )
    for cls, name, render in renderers:
        try:
            attrs[name] = render(ext.get_extension_for_class(cls).value)
        except x509.ExtensionNotFound:
            attrs[name] = [] if name in ("san", "key_usage", "extended_key_usage") else None
    return attrs


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()
