"""Secrets Manager as the escrow: where a replacement goes when no store revoke can write may receive it.

revoke.yaml `escrow: {type: aws, prefix: revoke/escrow/}` puts the replacement of `<old id>` in
the secret `revoke/escrow/<item>` (item: `revoke.connector.escrow_item(old id)`) of the first
configured account, as one JSON SecretString:

    {"replaces": old id, "credential": new id, "fingerprint": ..., "incident": ..., <material fields>}

Only the material fields are secret. Writing the same replacement again is a no-op (same
fingerprint), so a resumed run may repeat the put; a second replacement becomes a new version.
A fleet's replacements share items: `put_many` merges several members into one secret in one
write (the layout is `connectors.escrow_batch`'s; a secret value holds at most 64 KiB, so the
plan puts a few devices in each).
"""

from __future__ import annotations

import json
from typing import Any

from connectors import escrow_batch
from connectors.aws.client import call
from revoke.connector import ConnectorError, Replacement

NOT_FOUND = "ResourceNotFoundException"


def _current(sm: Any, name: str) -> dict[str, Any] | None:
    """The item's JSON, or None when there is no such secret."""
    try:
        resp = call(lambda: sm.get_secret_value(SecretId=name), "get_secret_value", f"aws:secret:{name}")
    except ConnectorError as exc:
        if exc.code == NOT_FOUND:
            return None
        raise
    try:
        value = json.loads(resp.get("SecretString") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def put(sm: Any, prefix: str, item: str, replacement: Replacement, incident: str) -> tuple[bool, str]:
    """(changed, detail): the secret `prefix + item` holds the replacement afterwards (read first:
    whether to create the secret or add a version depends on it)."""
    name = prefix + item
    current = _current(sm, name)
    if current is not None and current.get("fingerprint") == replacement.fingerprint:
        return False, f"{name} already holds it"
    text = json.dumps(escrow_batch.member_record(replacement, incident))
    return True, _write(sm, name, text, current is None, f"the replacement of {replacement.old_id}")


def _write(sm: Any, name: str, text: str, new: bool, what: str) -> str:
    if new:
        try:
            call(lambda: sm.create_secret(Name=name, SecretString=text, Description=f"revoke escrow: {what}"),
                 "create_secret", f"aws:secret:{name}")
            return f"escrowed in {name}"
        except ConnectorError as exc:
            if exc.code != "ResourceExistsException":  # created by a try whose answer was lost
                raise
    call(lambda: sm.put_secret_value(SecretId=name, SecretString=text), "put_secret_value", f"aws:secret:{name}")
    return f"escrowed in {name} (new version)"


def put_many(sm: Any, prefix: str, item: str, members: dict[str, Replacement],
             incident: str) -> tuple[bool, str, dict[str, Any]]:
    """(changed, detail, the item's content now): the members merged into the secret, one write."""
    name = prefix + item
    current = _current(sm, name)
    data, changed = escrow_batch.merged(current, members, incident)
    detail = f"{name} already holds them"
    if changed:
        detail = _write(sm, name, json.dumps(data), current is None, f"{len(data['members'])} replacements")
    return changed, detail, data


def read(sm: Any, prefix: str, item: str) -> dict[str, Any]:
    return _current(sm, prefix + item) or {}


def held(data: dict[str, Any]) -> set[str]:
    """The credentials the item holds: its `credential` field(s) and what the recognisers find."""
    return escrow_batch.holds(data)
