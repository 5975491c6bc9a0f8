"""The incident journal: a durable, append-only, hash-chained record of every step.

Each record's hash covers the previous record's hash and its own canonical content, so editing,
deleting or reordering any record breaks the chain from that point on. Records hold ids and
fingerprints only. Appends are single SQLite transactions with synchronous=FULL: a record that
was written survives a SIGKILL.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from revoke import journal_key
from revoke.errors import RevokeError
from revoke.run_lock import Holder, LockLostError, RunLock, lost_message
from revoke.store import Store

GENESIS = "0" * 64
log = structlog.get_logger()


class IncidentError(RevokeError):
    exit_code = 2


@dataclass
class Record:
    seq: int
    ts: str
    type: str
    action: str | None
    node: str | None
    data: dict[str, Any]
    prev: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "type": self.type, "action": self.action, "node": self.node,
                "data": self.data, "prev": self.prev, "hash": self.hash}


def _digest(incident: str, seq: int, ts: str, type_: str, action: str | None, node: str | None,
            data: str, prev: str) -> str:
    body = json.dumps([incident, seq, ts, type_, action, node, data, prev], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


class Journal:
    def __init__(self, store: Store, incident: str) -> None:
        self.store = store
        self.incident = incident
        self._cv = threading.Condition()
        self._queue: list[dict[str, Any]] = []
        self._writing = False
        self._lock = RunLock(store, incident)
        self._held: str | None = None  # this instance's lock token while it holds the lock
        # a worker's extra condition on every append (its job still claimed by it): the reason to refuse, or None
        self._fence: Callable[[Any], str | None] | None = None
        # heads (seq, hash) kept outside the store (a SIEM's `journal.head` events): the journal
        # must still hold each of them, or it was truncated or rewritten (`report --head`)
        self.published_heads: list[tuple[int, str]] = []
        journal_key.active()  # a bad journal key is an input error now, before anything is done

    # -- incidents --------------------------------------------------------------------------------
    def info(self) -> dict[str, Any] | None:
        row = self.store.db.execute(
            "SELECT id, created_at, playbook, playbook_name, playbook_digest, sources, options, lock_owner, lock_at "
            "FROM incidents WHERE id=?", (self.incident,)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "created_at": row[1], "playbook": row[2], "playbook_name": row[3],
                "playbook_digest": row[4], "sources": json.loads(row[5]), "options": json.loads(row[6]),
                "lock_owner": row[7], "lock_at": row[8]}

    def require(self) -> dict[str, Any]:
        info = self.info()
        if info is None:
            known = [r[0] for r in self.store.db.execute("SELECT id FROM incidents ORDER BY created_at DESC LIMIT 5")]
            hint = f"; known incidents: {', '.join(known)}" if known else ""
            raise IncidentError(f"unknown incident {self.incident!r}{hint}")
        return info

    def declare(self, playbook: str, playbook_name: str, digest: str, sources: list[str], options: dict[str, Any],
                records: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        """Create the incident and its first records in one transaction: another process sees
        either no incident or one with its plan, never one without. The first record is always
        `declared` and holds everything the incidents row holds (sources, playbook file, name and
        digest, options, creation time) plus the journal key's fingerprint, so the row is checked
        against the chain (revoke/journal_check.py); the records given follow it (a `declared`
        record among them is merged into it)."""
        now = datetime.now(UTC).isoformat()
        key = journal_key.active()
        given = list(records or [])
        extra = given.pop(0)[1] if given and given[0][0] == "declared" else {}
        declaration = {**extra, "created_at": now, "playbook_file": playbook, "playbook": playbook_name,
                       "playbook_digest": digest, "sources": sources, "options": options,
                       "journal_key": key.fingerprint if key else None}
        written: list[Record] = []
        try:
            with self.store.transaction() as db:
                db.execute("INSERT INTO incidents VALUES (?,?,?,?,?,?,?,NULL,NULL)",
                           (self.incident, now, playbook, playbook_name, digest, json.dumps(sources), json.dumps(options)))
                prev = GENESIS
                for seq, (type_, data) in enumerate([("declared", declaration), *given], start=1):
                    ts = datetime.now(UTC).isoformat()
                    payload, h = self._seal(key, seq, ts, type_, None, None, json.dumps(data, sort_keys=True, default=str),
                                            prev)
                    db.execute("INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?)",
                               (self.incident, seq, ts, type_, None, None, payload, prev, h))
                    written.append(Record(seq, ts, type_, None, None, {}, prev, h))
                    prev = h
        except sqlite3.IntegrityError:
            raise IncidentError(f"incident {self.incident!r} was declared by another process at the same moment; "
                                "it is running there (re-run the same command later to resume it)") from None
        self._log_heads(written, key)

    def _seal(self, key: journal_key.JournalKey | None, seq: int, ts: str, type_: str, action: str | None,
              node: str | None, payload: str, prev: str) -> tuple[str, str]:
        """(payload, hash) of one record. With a journal key, a record of a signed type carries the
        signature of its own hash computed without the signature (revoke/journal_key.py)."""
        h = _digest(self.incident, seq, ts, type_, action, node, payload, prev)
        if key is None or type_ not in journal_key.SIGNED_TYPES:
            return payload, h
        data = json.loads(payload)
        data[journal_key.FIELD] = {"seq": seq, "hash": h, "key": key.fingerprint,
                                   "value": key.sign(self.incident, seq, h)}
        payload = json.dumps(data, sort_keys=True, default=str)
        return payload, _digest(self.incident, seq, ts, type_, action, node, payload, prev)

    def _log_heads(self, records: list[Record], key: journal_key.JournalKey | None) -> None:
        """The head after each signed-type record, as a log event: with `--log-format json` a SIEM
        keeps a copy outside the store, against which a truncation or a rewrite shows."""
        for r in records:
            if r.type in journal_key.SIGNED_TYPES:
                log.info("journal.head", incident=self.incident, record=r.type, head={"seq": r.seq, "hash": r.hash},
                         signed=key is not None, key=key.fingerprint if key else None)

    # -- the run lock: one executor per incident (revoke/run_lock.py) -----------------------------------
    def acquire(self) -> str:
        me, taken, why = self._lock.acquire()
        self._held = me
        if taken is not None:
            heartbeat = taken.heartbeat.isoformat() if taken.heartbeat else None
            log.warning("lock.taken_over", incident=self.incident, holder=taken.owner, reason=why)
            self.append("lock.takeover", data={"by": actor(), "holder": taken.owner, "heartbeat": heartbeat,
                                               "reason": why})
        return me

    def act_for(self, token: str, fence: Callable[[Any], str | None] | None = None) -> None:
        """Append on behalf of the run that holds the lock as `token` (a `revoke worker` running one
        of its steps): every append then fails with LockLostError, in its own transaction, once that
        run's lock is taken over or released, or once `fence(db)` gives a reason (the worker's job was
        taken over). Nothing is acquired: the coordinating run keeps the lock and its heartbeat."""
        self._held, self._fence = token, fence

    def release(self, token: str) -> None:
        self._held = None
        self._lock.release(token)

    def force_unlock(self) -> Holder | None:
        """`revoke unlock --force`: clear the lock whoever holds it, and journal who did it and whose
        lock it was. None when the incident was not locked (nothing is journaled)."""
        self.require()
        holder = self._lock.force_clear()
        if holder is not None:
            self.append("unlock", data={"by": actor(), "holder": holder.owner,
                                        "heartbeat": holder.heartbeat.isoformat() if holder.heartbeat else None})
        return holder

    # -- records ------------------------------------------------------------------------------------
    def append(self, type_: str, *, action: str | None = None, node: str | None = None,
               data: dict[str, Any] | None = None) -> Record:
        """Append one record and return once it is durable.

        Group commit: concurrent callers queue their records and one of them writes the whole
        queue in a single transaction (one fsync), so a busy executor is not serialised on
        one fsync per record, and no caller returns before its own record is on disk.
        """
        item: dict[str, Any] = {"type": type_, "action": action, "node": node,
                                "payload": json.dumps(data or {}, sort_keys=True, default=str)}
        with self._cv:
            self._queue.append(item)
            while "record" not in item and "error" not in item:
                if self._writing:
                    self._cv.wait()
                    continue
                self._writing = True
                batch, self._queue = self._queue, []
                self._cv.release()
                try:
                    self._write(batch)
                finally:
                    self._cv.acquire()
                    self._writing = False
                    self._cv.notify_all()
        if "error" in item:
            raise item["error"]
        _fault_point()
        record: Record = item["record"]
        return record

    def _write(self, batch: list[dict[str, Any]]) -> None:
        key = journal_key.active() if any(i["type"] in journal_key.SIGNED_TYPES for i in batch) else None
        try:
            with self.store.transaction() as db:
                if self._held is not None:
                    # still ours? taken over while this process was suspended, it writes nothing more
                    row = db.execute("SELECT lock_owner FROM incidents WHERE id=?", (self.incident,)).fetchone()
                    if row is None or row[0] != self._held:
                        raise LockLostError(lost_message(self.incident, row[0] if row else None))
                    refused = self._fence(db) if self._fence is not None else None
                    if refused is not None:
                        raise LockLostError(f"incident {self.incident!r}: {refused}")
                last = db.execute("SELECT seq, hash FROM journal WHERE incident=? ORDER BY seq DESC LIMIT 1",
                                  (self.incident,)).fetchone()
                seq, prev = (last[0], last[1]) if last else (0, GENESIS)
                records = []
                for item in batch:
                    seq += 1
                    ts = datetime.now(UTC).isoformat()
                    payload, h = self._seal(key, seq, ts, item["type"], item["action"], item["node"], item["payload"], prev)
                    db.execute("INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?)",
                               (self.incident, seq, ts, item["type"], item["action"], item["node"], payload, prev, h))
                    records.append(Record(seq, ts, item["type"], item["action"], item["node"], json.loads(payload), prev, h))
                    prev = h
        except BaseException as exc:
            for item in batch:
                item["error"] = exc
            return
        self._log_heads(records, key)
        for item, record in zip(batch, records, strict=True):
            item["record"] = record

    def records(self) -> list[Record]:
        rows = self.store.db.execute(
            "SELECT seq, ts, type, action, node, data, prev, hash FROM journal WHERE incident=? ORDER BY seq",
            (self.incident,)).fetchall()
        out = []
        for r in rows:
            try:
                data = json.loads(r[5])
            except ValueError:
                data = {"__corrupt__": True}
            out.append(Record(r[0], r[1], r[2], r[3], r[4], data, r[6], r[7]))
        return out

    def raw_rows(self) -> list[tuple[Any, ...]]:
        """The stored rows as they are (seq, ts, type, action, node, data text, prev, hash)."""
        return self.store.db.execute(
            "SELECT seq, ts, type, action, node, data, prev, hash FROM journal WHERE incident=? ORDER BY seq",
            (self.incident,)).fetchall()

    def check_chain(self) -> tuple[bool, str, str]:
        """(intact, message, last hash that checks): the hash chain, the incidents row against the
        declaration, and the head signatures (revoke/journal_check.py)."""
        from revoke.journal_check import check

        res = check(self)
        return res.intact, res.message, res.verified_through


def digest(incident: str, seq: int, ts: str, type_: str, action: str | None, node: str | None,
           data: str, prev: str) -> str:
    """A record's hash, from its stored fields (`data` as the stored text)."""
    return _digest(incident, seq, ts, type_, action, node, data, prev)


_appended = 0


def _fault_point() -> None:
    """Crash-test hook: REVOKE_FAULT_KILL_AFTER=N SIGKILLs this process right after its N-th
    journal record is durable, so resume can be tested at every step (between a replacement's
    creation and its store writes included). Unset in normal use."""
    global _appended
    limit = os.environ.get("REVOKE_FAULT_KILL_AFTER")
    if not limit:
        return
    _appended += 1
    if _appended >= int(limit):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
