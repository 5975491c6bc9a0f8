"""Vault node ids, `vault:<type>:<native id>`: made and taken apart here only.

    vault:token:<accessor>                          a token, by accessor (never by value)
    vault:policy:<name>                             an ACL policy
    vault:secret:<kv mount>/<path>                  a KV v2 secret (the mount may contain `/`)
    vault:password:<kv mount>/<path>#<field>        a password found in a KV value
    vault:api_key:<kv mount>/<path>#<field>         an API key found in a KV value
    vault:pki_mount:<pki mount>                     a PKI mount, as the holder of the CAs it trusts
    vault:pki_issuer:<pki mount>/<issuer id>        a PKI issuer (kind ca)
    vault:pki_cert:<pki mount>/<serial>             a certificate the mount issued (serial `ab:cd:..`)
    vault:approle:<auth mount>/<role>               an AppRole role
    vault:secret_id:<auth mount>/<role>/<accessor>  an AppRole secret-id, by its accessor
    vault:lease:<lease id>                          a lease outside `auth/` (token leases are tokens)
"""

from __future__ import annotations

from connectors.vault.client import PROVIDER


def node_type(node_id: str) -> str:
    """`token`, `pki_cert`, ... for a Vault id; '' for any other shape."""
    parts = node_id.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PROVIDER else ""


def native(node_id: str) -> str:
    """What follows `vault:<type>:`: an accessor, a lease id, `<mount>/<path>`."""
    return node_id.split(":", 2)[2]


def token_node_id(accessor: str) -> str:
    return f"vault:token:{accessor}"


def policy_node_id(name: str) -> str:
    return f"vault:policy:{name}"


def secret_node_id(mount: str, path: str) -> str:
    return f"vault:secret:{mount}/{path}"


def value_node_id(kind_name: str, mount: str, path: str, field: str) -> str:
    """A password or API key inside a KV value: `kind_name` is `password` or `api_key`."""
    return f"vault:{kind_name}:{mount}/{path}#{field}"


def split_secret(node_id: str, mounts: list[str]) -> tuple[str, str]:
    """`vault:secret:secret/ci/db` -> (`secret`, `ci/db`), longest known mount first."""
    rest = native(node_id)
    for mount in sorted(mounts, key=len, reverse=True):
        if rest.startswith(mount + "/"):
            return mount, rest[len(mount) + 1:]
    mount, _, path = rest.partition("/")
    return mount, path


def norm_serial(serial: str) -> str:
    return serial.strip().lower().replace("-", ":")


def mount_node_id(mount: str) -> str:
    return f"vault:pki_mount:{mount}"


def issuer_node_id(mount: str, issuer: str) -> str:
    return f"vault:pki_issuer:{mount}/{issuer}"


def cert_node_id(mount: str, serial: str) -> str:
    return f"vault:pki_cert:{mount}/{norm_serial(serial)}"


def split_pki(node_id: str) -> tuple[str, str]:
    """`vault:pki_cert:pki/ab:cd` -> (`pki`, `ab:cd`); the mount may contain slashes."""
    mount, _, tail = native(node_id).rpartition("/")
    return mount, tail


def role_node_id(mount: str, role: str) -> str:
    return f"vault:approle:{mount}/{role}"


def secret_id_node_id(mount: str, role: str, accessor: str) -> str:
    return f"vault:secret_id:{mount}/{role}/{accessor}"


def split_secret_id(node_id: str) -> tuple[str, str, str]:
    """`vault:secret_id:approle/ci/<accessor>` -> (`approle`, `ci`, accessor)."""
    head, _, accessor = native(node_id).rpartition("/")
    mount, _, role = head.rpartition("/")
    return mount, role, accessor


def lease_node_id(lease_id: str) -> str:
    return f"vault:lease:{lease_id}"
