"""The run lock: one process acts on an incident at a time (`run --execute`, finalize, rollback).

The lock lives in the incident's row: `lock_owner` is `<pid>@<host>` and `lock_at` its heartbeat,
rewritten every HEARTBEAT_SECONDS by a thread of the holder for as long as it holds the lock.
Another process takes the lock over when
- its holder is a process on this host that no longer exists (a crash, a kill -9), at once; or
- its heartbeat is older than STALE_AFTER (5 minutes), whichever host holds it: a holder on
  another machine cannot be asked whether it is alive, but a live one beats every 30 seconds.
Otherwise it is refused, naming the holder and how to clear it by hand (`revoke unlock --incident
ID --force`). The holder checks that the lock is still its own in the same transaction as every
journal record it appends (revoke/journal.py), and every provider action is preceded by a record
(its intent, or the progress of the step before): a holder whose lock was taken over while it was
suspended stops before its next provider action (`LockLostError`), and its journal ends where it
stopped, as after a crash, for the new holder to resume. Every takeover and every forced unlock
is journaled with who did it and whose lock it was. The bound assumes the hosts' clocks agree to well within 5 minutes.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from revoke.errors import RevokeError

if TYPE_CHECKING:
    from revoke.store import Store

log = structlog.get_logger()

STALE_AFTER = timedelta(minutes=5)
HEARTBEAT_SECONDS = 30.0


class LockedError(RevokeError):
    exit_code = 2


class LockLostError(LockedError):
    """This process held the lock and another took it over (it was silent past the bound: a
    suspended VM, a stopped process): it must not act any more."""


def lost_message(incident: str, now_held_by: str | None) -> str:
    by = f"by {now_held_by}" if now_held_by else "and cleared (`revoke unlock --force`)"
    return (f"incident {incident!r}: this run's lock was taken over {by} while this process was silent "
            f"past the {int(STALE_AFTER.total_seconds())}s bound (suspended?); it stopped before its next "
            "provider action. An action it had started is finished by the new holder or the next "
            f"resume; see `revoke report --incident {incident}`")


@dataclass(frozen=True)
class Holder:
    """Who holds an incident's lock, from its row."""

    owner: str
    heartbeat: datetime | None

    @property
    def pid(self) -> int | None:
        text = self.owner.partition("@")[0]
        return int(text) if text.isdigit() else None

    @property
    def host(self) -> str:
        return self.owner.partition("@")[2]

    def age(self, now: datetime) -> timedelta | None:
        return None if self.heartbeat is None else now - self.heartbeat

    def takeover_reason(self, now: datetime) -> str | None:
        """Why another process may take this lock now, or None while it must wait."""
        if self.host == socket.gethostname() and not _pid_alive(self.pid):
            return f"its process {self.pid} no longer exists on this host"
        age = self.age(now)
        if age is None or age > STALE_AFTER:
            seen = "never" if age is None else f"{int(age.total_seconds())}s ago"
            return f"its last heartbeat was {seen} (bound {int(STALE_AFTER.total_seconds())}s)"
        return None

    def describe(self, now: datetime) -> str:
        age = self.age(now)
        seen = "no heartbeat" if age is None else f"last heartbeat {max(0, int(age.total_seconds()))}s ago"
        return f"{self.owner} ({seen})"


def token() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def read_holder(store: Store, incident: str) -> Holder | None:
    row = store.db.execute("SELECT lock_owner, lock_at FROM incidents WHERE id=?", (incident,)).fetchone()
    if row is None or not row[0]:
        return None
    return Holder(row[0], _parse(row[1]))


class RunLock:
    """Acquire, keep alive and release one incident's lock; the journal records takeovers."""

    def __init__(self, store: Store, incident: str) -> None:
        self.store = store
        self.incident = incident
        self._beat: _Heartbeat | None = None

    def acquire(self) -> tuple[str, Holder | None, str | None]:
        """(token, the holder taken over, why) or LockedError naming the live holder."""
        me = token()
        now = datetime.now(UTC)
        taken: tuple[Holder | None, str | None] = (None, None)
        # on Postgres, a session advisory lock too: it dies with its holder's connection, on any host
        exclusive = self.store.pg.runner_lock(self.incident) if self.store.pg is not None else None
        with self.store.transaction() as db:
            row = db.execute("SELECT lock_owner, lock_at FROM incidents WHERE id=?", (self.incident,)).fetchone()
            if exclusive is False or (row and row[0] and row[0] != me):
                holder = Holder(row[0] if row and row[0] else "another session", _parse(row[1]) if row else None)
                why = holder.takeover_reason(now) if exclusive is None else (
                    "its session no longer holds the incident's advisory lock (its process ended)" if exclusive else None)
                if why is None:
                    raise LockedError(
                        f"incident {self.incident!r} is being run by {holder.describe(now)}; wait for it to finish "
                        f"(a lock is taken over once its holder is dead or silent for "
                        f"{int(STALE_AFTER.total_seconds() // 60)} minutes; to clear it now: "
                        f"`revoke unlock --incident {self.incident} --force`)")
                taken = (holder, why)
            db.execute("UPDATE incidents SET lock_owner=?, lock_at=? WHERE id=?", (me, now.isoformat(), self.incident))
        if self._beat is None:
            self._beat = _Heartbeat(self.store, self.incident, me)
            self._beat.start()
        return me, taken[0], taken[1]

    def release(self, me: str) -> None:
        if self._beat is not None:
            self._beat.stop()
            self._beat = None
        with self.store.transaction() as db:
            db.execute("UPDATE incidents SET lock_owner=NULL, lock_at=NULL WHERE id=? AND lock_owner=?",
                       (self.incident, me))
        if self.store.pg is not None:
            self.store.pg.runner_unlock(self.incident)

    def force_clear(self) -> Holder | None:
        """Clear whatever lock the incident holds; return whose it was (None: it was not locked)."""
        with self.store.transaction() as db:
            row = db.execute("SELECT lock_owner, lock_at FROM incidents WHERE id=?", (self.incident,)).fetchone()
            if row is None or not row[0]:
                return None
            db.execute("UPDATE incidents SET lock_owner=NULL, lock_at=NULL WHERE id=? AND lock_owner=?",
                       (self.incident, row[0]))
        return Holder(row[0], _parse(row[1]))


class _Heartbeat(threading.Thread):
    """Rewrites `lock_at` while the lock is held. If the lock was taken from under it (this
    process was silent past the bound: a suspended VM), it says so loudly and stops beating."""

    def __init__(self, store: Store, incident: str, me: str) -> None:
        super().__init__(name=f"revoke-lock-{incident}", daemon=True)
        self.store, self.incident, self.me = store, incident, me
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout=5)

    def run(self) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            try:
                with self.store.transaction() as db:
                    cur = db.execute("UPDATE incidents SET lock_at=? WHERE id=? AND lock_owner=?",
                                     (datetime.now(UTC).isoformat(), self.incident, self.me))
                    lost = cur.rowcount == 0
            except Exception as exc:  # a busy or failing store: the next beat tries again, said once here
                log.warning("lock.heartbeat_failed", incident=self.incident, error=str(exc))
                continue
            if lost and not self._stopped.is_set():
                log.error("lock.lost", incident=self.incident, holder=self.me,
                          effect="another process took this incident's lock over; stop this run and resume it later")
                return


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return True  # cannot tell: wait for the heartbeat bound
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True
