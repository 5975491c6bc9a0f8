"""A KV v2 path as the escrow: where a replacement goes when no store revoke can write may receive it.

revoke.yaml `escrow: {type: vault, path: secret/revoke-escrow}` puts the replacement of `<old id>`
at `secret/revoke-escrow/<item>` (item: `revoke.connector.escrow_item(old id)`), as one KV version:

    replaces:    the old credential's node id
    credential:  the replacement's node id
    fingerprint: the material's fingerprint (what the journal records)
    incident:    the incident that made it
    <fields>:    the material, in the canonical field names of `revoke.connector.Secret`

Only the material fields are secret. Writing the same replacement again is a no-op (same
fingerprint), so a resumed run may repeat the put. Who may read the path is the operator's
choice: the path should be readable by the responders only.

A fleet's replacements share items: `put_many` merges several members into one item in one write
(the layout is `connectors.escrow_batch`'s).
"""

from __future__ import annotations

from typing import Any

from connectors import escrow_batch
from connectors.vault.client import PROVIDER, VaultApi
from connectors.vault.collect import get_mounts
from connectors.vault.ids import split_secret
from connectors.vault.transform import kv2_mounts
from revoke.connector import ConnectorError, Replacement


def kv2(api: VaultApi) -> list[str]:
    """The KV v2 mounts (read once per connector: the escrow's mount does not move during a run)."""
    return kv2_mounts(get_mounts(api))


def _where(mounts: list[str], location: str, item: str) -> tuple[str, str]:
    full = f"{location.strip('/')}/{item}"
    mount, path = split_secret(f"{PROVIDER}:secret:{full}", mounts)
    if mount not in mounts:
        raise ConnectorError(PROVIDER, "escrow_put", f"the escrow path {location!r} is not under a KV v2 mount "
                             f"(KV v2 mounts: {', '.join(mounts) or 'none'})", code="not_kv2")
    return mount, path


def _current(api: VaultApi, mount: str, path: str) -> dict[str, Any]:
    try:
        body = api.get(f"{mount}/data/{path}", node=f"{PROVIDER}:secret:{mount}/{path}") or {}
    except ConnectorError as exc:
        if exc.code == "404":
            return {}
        raise
    return dict(((body.get("data") or {}).get("data")) or {})


def put(api: VaultApi, mounts: list[str], location: str, item: str, replacement: Replacement, incident: str,
        *, first_attempt: bool = False) -> tuple[bool, str]:
    """(changed, detail): the item holds the replacement afterwards. A first attempt writes
    without reading first (a fresh replacement cannot be there yet); a retry reads, so a put whose
    answer was lost is not written twice."""
    mount, path = _where(mounts, location, item)
    if not first_attempt and _current(api, mount, path).get("fingerprint") == replacement.fingerprint:
        return False, f"{mount}/{path} already holds it"
    data = {"replaces": replacement.old_id, "credential": replacement.new_id,
            "fingerprint": replacement.fingerprint, "incident": incident, **replacement.material.reveal()}
    api.post(f"{mount}/data/{path}", {"data": data}, node=f"{PROVIDER}:secret:{mount}/{path}")
    return True, f"escrowed at {mount}/{path}"


def put_many(api: VaultApi, mounts: list[str], location: str, item: str, members: dict[str, Replacement],
             incident: str, known: tuple[dict[str, Any], int] | None = None
             ) -> tuple[bool, str, tuple[dict[str, Any], int]]:
    """(changed, detail, (the item's content now, its KV version)): the members merged into the
    item, in one write. `known` is what this connector last wrote there (no read needed); the
    write is a check-and-set on that version, so a write by anyone else in between is read and
    merged, never lost."""
    mount, path = _where(mounts, location, item)
    node = f"{PROVIDER}:secret:{mount}/{path}"
    for attempt in range(3):
        current, version = known if known is not None else _versioned(api, mount, path)
        data, changed = escrow_batch.merged(current, members, incident)
        if not changed:
            return False, f"{mount}/{path} already holds them", (data, version)
        try:
            resp = api.post(f"{mount}/data/{path}", {"options": {"cas": version}, "data": data}, node=node) or {}
        except ConnectorError as exc:
            if exc.code != "400" or attempt == 2:  # 400: the version moved (check-and-set)
                raise
            known = None
            continue
        return True, f"{len(members)} escrowed at {mount}/{path}", (data, int((resp.get("data") or {}).get("version")
                                                                             or version + 1))
    raise AssertionError("unreachable")


def _versioned(api: VaultApi, mount: str, path: str) -> tuple[dict[str, Any], int]:
    """The item's data and KV version (0: no such item, what a check-and-set create expects)."""
    try:
        body = api.get(f"{mount}/data/{path}", node=f"{PROVIDER}:secret:{mount}/{path}") or {}
    except ConnectorError as exc:
        if exc.code == "404":
            return {}, 0
        raise
    inner = body.get("data") or {}
    return dict(inner.get("data") or {}), int((inner.get("metadata") or {}).get("version") or 0)


def read(api: VaultApi, mounts: list[str], location: str, item: str) -> tuple[dict[str, Any], int]:
    mount, path = _where(mounts, location, item)
    return _versioned(api, mount, path)


def held(data: dict[str, Any]) -> set[str]:
    """The credentials the item holds: its `credential` field(s) and what the recognisers find."""
    return escrow_batch.holds(data)
