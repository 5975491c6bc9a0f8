"""Escrow items that hold several replacements (a fleet's reissued device certificates), shared by
the escrow of every connector that keeps one (a Vault KV path, a Secrets Manager prefix).

A single replacement is one item, as `revoke.connector.escrow_item` names it. A fleet is written
in batches: the plan names one item per group of certificates and, for each certificate, its
member (`escrow_item` of the old certificate); the item holds

    {"batch": "members", "members": {<member>: {replaces, credential, fingerprint, incident,
                                                <material fields of revoke.connector.Secret>}}}

so 200 devices cost a few writes and a few reads instead of 200 of each, and verify still reads
each device's replacement back (its `credential` among the item's members). A write merges the
new members into what the item holds (other members, from another run or incident, are kept).

`ReadCache` keeps an item's content for a few seconds in one connector instance: verify asks for
every member of an item in turn, and one read answers them all; a write through the same instance
replaces the cached content.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from connectors.recognize import recognize
from revoke.connector import Replacement

BATCH = "members"


def member_record(rep: Replacement, incident: str) -> dict[str, Any]:
    return {"replaces": rep.old_id, "credential": rep.new_id, "fingerprint": rep.fingerprint,
            "incident": incident, **rep.material.reveal()}


def merged(current: dict[str, Any] | None, members: dict[str, Replacement], incident: str) -> tuple[dict[str, Any], bool]:
    """(the item's new content, whether anything changes): members already holding the same
    replacement (same fingerprint) are not rewritten."""
    held = dict((current or {}).get("members") or {}) if (current or {}).get("batch") == BATCH else {}
    changed = False
    for name, rep in members.items():
        if (held.get(name) or {}).get("fingerprint") != rep.fingerprint:
            held[name] = member_record(rep, incident)
            changed = True
    return {"batch": BATCH, "members": held}, changed


def holds(data: dict[str, Any]) -> set[str]:
    """The credentials an item holds: each `credential` field and what the recognisers find, for
    a single item and for every member of a batch."""
    records = list((data.get("members") or {}).values()) if data.get("batch") == BATCH else [data]
    out: set[str] = set()
    for rec in records:
        if not isinstance(rec, dict):
            continue
        out.update(f.ref for f in recognize(rec) if f.ref)
        if rec.get("credential"):
            out.add(str(rec["credential"]))
    return out


class ReadCache:
    """Item content by (location, item), for `ttl` seconds, within one connector instance; what
    the instance itself wrote is also kept as `written` (for the next merge without a read)."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._items: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._written: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._reading: dict[tuple[str, ...], threading.Lock] = {}

    def get(self, key: tuple[str, ...], read: Callable[[], Any]) -> Any:
        with self._lock:
            gate = self._reading.setdefault(key, threading.Lock())
        with gate:  # concurrent askers for one item share one read
            with self._lock:
                hit = self._items.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
            value = read()
            with self._lock:
                self._items[key] = (time.monotonic(), value)
            return value

    def held(self, key: tuple[str, str], read: Callable[[], Any], holds: Callable[[Any], set[str]]) -> set[str]:
        """What the item holds, worked out once per read (a batch item answers for 25 members,
        and recognising each member's material is not free)."""
        return set(self.get((*key, "held"), lambda: holds(self.get(key, read))))

    def put(self, key: tuple[str, str], value: Any, *, written: bool = False) -> None:
        with self._lock:
            self._items.pop((*key, "held"), None)
            self._items[key] = (time.monotonic(), value)
            if written:
                self._written[key] = value

    def written(self, key: tuple[str, str]) -> Any:
        with self._lock:
            return self._written.get(key)

    def forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._items.pop(key, None)
            self._items.pop((*key, "held"), None)
            self._written.pop(key, None)
