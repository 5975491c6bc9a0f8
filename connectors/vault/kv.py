"""KV v2 as a store: write a replacement as a new version, read back what it holds, and destroy
old versions in the finalize step (the versions the attacker could read keep the old material
until then, so rollback stays possible until finalize).

Store ids: `vault:secret:<mount>/<path>`; what a store holds is reported as the node ids
`recognize()` gives the credentials in its value, plus `fp:<fingerprint>` for each.
"""

from __future__ import annotations

from typing import Any

from connectors.recognize import recognize, substitute
from connectors.vault.client import PROVIDER, VaultApi
from connectors.vault.collect import get_mounts
from connectors.vault.ids import split_secret, value_node_id
from connectors.vault.transform import kv2_mounts
from revoke.connector import ConnectorError, ProbeResult, Replacement
from revoke.model import Node, NodeKind, fingerprint


def secret_path(api: VaultApi, node: Node) -> tuple[str, str]:
    """(mount, path) of a secret node: from its attributes, else from its id and the KV mounts."""
    if node.attrs.get("mount") and node.attrs.get("path"):
        return str(node.attrs["mount"]), str(node.attrs["path"])
    return split_secret(node.id, kv2_mounts(get_mounts(api)))


def read_current(api: VaultApi, mount: str, path: str, node: str) -> tuple[dict[str, Any], int]:
    body = api.get(f"{mount}/data/{path}", node=node) or {}
    data = body.get("data") or {}
    return dict(data.get("data") or {}), int((data.get("metadata") or {}).get("version") or 0)


def holds(mount: str, path: str, data: dict[str, Any]) -> set[str]:
    """Refs recognised in a value: node ids, plus `fp:` refs for everything carrying a fingerprint
    (a rotated password keeps its node id, so only the fingerprint tells old from new)."""
    out: set[str] = set()
    for item in recognize(data):
        if item.ref:
            out.add(item.ref)
        elif item.kind in (NodeKind.PASSWORD, NodeKind.API_KEY):
            out.add(value_node_id(item.kind.value, mount, path, item.fields[0]))
        if item.fingerprint:
            out.add("fp:" + item.fingerprint)
    return out


def old_ref(old: Node) -> str:
    """How `substitute()` finds the old credential: by id, or by fingerprint when the id is
    not something recognise() returns (tokens by accessor, passwords by path)."""
    if old.id.startswith(("vault:token:", "vault:password:", "vault:api_key:")) or old.kind in (
        NodeKind.PASSWORD, NodeKind.API_KEY, NodeKind.TOKEN
    ):
        if not old.fingerprint and not old.id.startswith("vault:"):
            return old.id  # another connector's id that recognize() gives (a Postgres role's password)
        if not old.fingerprint:
            raise ConnectorError(PROVIDER, "write_store", "the old credential has no fingerprint to find it by",
                                 node=old.id)
        return "fp:" + old.fingerprint
    return old.id


def new_refs(replacement: Replacement) -> set[str]:
    fields = replacement.material.reveal()
    refs = {replacement.new_id}
    for name in ("token", "password", "api_key", "private_key_pem"):
        if fields.get(name):
            refs.add("fp:" + fingerprint(fields[name].strip() if name == "private_key_pem" else fields[name]))
    return refs


def write_replacement(api: VaultApi, store: Node, mount: str, path: str, old: Node,
                      replacement: Replacement) -> tuple[bool, str, int]:
    """(changed, detail, version). Idempotent: a store already holding the new credential and
    not the old one is left alone."""
    data, version = read_current(api, mount, path, store.id)
    ref = old_ref(old)
    try:
        updated = substitute(data, ref, replacement.material.reveal(), replacement.kind)
    except KeyError:
        if holds(mount, path, data) & new_refs(replacement):
            return False, "store already holds the replacement", version
        raise ConnectorError(PROVIDER, "write_store", "the store holds neither the old credential nor its "
                             "replacement; re-collect before writing", node=store.id) from None
    if updated == data:
        return False, "value unchanged", version
    body = api.post(f"{mount}/data/{path}", {"data": updated, "options": {"cas": version}}, node=store.id) or {}
    return True, "new version written", int((body.get("data") or {}).get("version") or version + 1)


def destroy_old_versions(api: VaultApi, mount: str, path: str, node: str) -> tuple[bool, str]:
    meta = (api.get(f"{mount}/metadata/{path}", node=node) or {}).get("data") or {}
    current = int(meta.get("current_version") or 0)
    old = sorted(int(v) for v, info in (meta.get("versions") or {}).items()
                 if int(v) != current and not info.get("destroyed"))
    if not old:
        return False, "no old versions left"
    api.post(f"{mount}/destroy/{path}", {"versions": old}, node=node)
    return True, f"destroyed versions {old}"


def probe_secret(api: VaultApi, node: Node) -> ProbeResult:
    mount, path = secret_path(api, node)
    try:
        read_current(api, mount, path, node.id)
    except ConnectorError as exc:
        if exc.code == "404":
            return ProbeResult(node.id, False, "kv read: 404 (deleted or destroyed)")
        raise
    return ProbeResult(node.id, True, "kv read: current version readable")
