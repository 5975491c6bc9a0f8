"""Secrets Manager as the escrow: where a replacement goes when no store revoke can write may receive it.

revoke.yaml `escrow: {type: aws, prefix: revoke/escrow/}` puts the replacement of `<old id>` in
the secret `revoke/escrow/<item>` (item: `revoke.connector.escrow_item(old id)`) of the first
configured account, as one JSON SecretString:

    {"replaces": old id, "credential": new id, "fingerprint": ..., "incident": ..., <material fields>}

Only the material fields are secret. Writing the same replacement again is a no-op (same
fingerprint), so a resumed run may repeat the put; a second replacement becomes a new version.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.aws.client import call
from connectors.recognize import recognize
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
    text = json.dumps({"replaces": replacement.old_id, "credential": replacement.new_id,
                       "fingerprint": replacement.fingerprint, "incident": incident,
                       **replacement.material.reveal()})
    if current is None:
        try:
            call(lambda: sm.create_secret(Name=name, SecretString=text,
                                          Description=f"revoke escrow: the replacement of {replacement.old_id}"),
                 "create_secret", f"aws:secret:{name}")
            return True, f"escrowed in {name}"
        except ConnectorError as exc:
            if exc.code != "ResourceExistsException":  # created by a try whose answer was lost
                raise
    call(lambda: sm.put_secret_value(SecretId=name, SecretString=text), "put_secret_value", f"aws:secret:{name}")
    return True, f"escrowed in {name} (new version)"


def held(sm: Any, prefix: str, item: str) -> set[str]:
    """The credentials the item holds: its `credential` field and what the recognisers find."""
    current = _current(sm, prefix + item) or {}
    out = {f.ref for f in recognize(current) if f.ref}
    if current.get("credential"):
        out.add(str(current["credential"]))
    return out
