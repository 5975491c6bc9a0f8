"""Secrets Manager secrets as stores: a replacement is written as a new version of the secret,
in the shape the secret already has (the same JSON keys, or the bare value).

What a secret holds is read back with the same recognisers collect uses, so `store_holds`
answers in the ids the graph has (`aws:<kind>:<secret arn>#<fields>` for credentials no
provider manages).
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from connectors.aws.client import PROVIDER, call, native
from connectors.recognize import recognize, substitute
from revoke.connector import ActionResult, ConnectorError, Replacement
from revoke.model import Node

log = structlog.get_logger()


def _value(sm: Any, store: Node) -> str:
    arn = native(store.id)
    resp = call(lambda: sm.get_secret_value(SecretId=arn), "get_secret_value", store.id)
    value = resp.get("SecretString")
    if value is None:
        value = bytes(resp.get("SecretBinary", b"")).decode("utf-8", errors="replace")
    return str(value)


def write(sm: Any, store: Node, old: Node, replacement: Replacement) -> ActionResult:
    """Put the replacement where the old credential is; a repeat reports changed=False."""
    value = _value(sm, store)
    refs = _refs(store, value)
    if replacement.new_id in refs and old.id not in refs:
        return ActionResult(store.id, "write_store", changed=False, detail="already holds the replacement")
    try:
        updated = substitute(value, _old_ref(old), replacement.material.reveal(), replacement.kind)
    except KeyError:
        raise ConnectorError(PROVIDER, "write_store", f"the secret holds neither {old.id} nor "
                             f"{replacement.new_id}", node=store.id) from None
    text = updated if isinstance(updated, str) else json.dumps(updated)
    resp = call(lambda: sm.put_secret_value(SecretId=native(store.id), SecretString=text),
                "put_secret_value", store.id)
    log.info("aws.write_store", node=store.id, old=old.id, new=replacement.new_id)
    return ActionResult(store.id, "write_store", detail="new version written",
                        data={"version_id": resp.get("VersionId", ""), "new_id": replacement.new_id})


def holds(sm: Any, store: Node) -> set[str]:
    return _refs(store, _value(sm, store))


def _refs(store: Node, value: Any) -> set[str]:
    out = set()
    for found in recognize(value):
        if found.ref:
            out.add(found.ref)
        else:  # same ids as collect gives fields no provider manages
            out.add(f"aws:{found.kind.value}:{native(store.id)}#{','.join(found.fields)}")
    return out


def _old_ref(old: Node) -> str:
    """How `substitute()` finds the old credential: by id, or by fingerprint for unmanaged ones."""
    if old.id.startswith(("aws:password:", "aws:api_key:")) or old.id.startswith("fp:"):
        return old.id if old.id.startswith("fp:") else "fp:" + old.fingerprint
    return old.id
