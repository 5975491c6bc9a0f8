"""Test helpers: node ids computed straight from their definitions, file writing, edge sets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from revoke.connector import Collected


def cid(cert: x509.Certificate) -> str:
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    return f"x509:{'ca' if ca else 'cert'}:{hashlib.sha256(der).hexdigest()}"


def kid(key: Any) -> str:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"x509:private_key:{hashlib.sha256(spki).hexdigest()}"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


def edge_set(collected: Collected) -> set[tuple[str, str, str]]:
    return {e.key for e in collected.edges}


def serialised(collected: Collected) -> str:
    """Everything a connector hands to the core, as text, for canary searches."""
    return json.dumps(
        {
            "nodes": [n.to_dict() for n in collected.nodes],
            "edges": [e.to_dict() for e in collected.edges],
            "findings": [vars(f) for f in collected.findings],
            "meta": collected.meta,
        },
        default=str,
    )
