"""Group commit for the escrow: a fleet's replacements reach their shared items in a few writes.

The plan puts a CA's reissued certificates into shared escrow items (`step.escrow["member"]`
names each one's place in its item). The executor reissues them concurrently; each step that
escrows into an item is awaited from its start until it hands its replacement to
`EscrowWrites.put` (or ends without one, e.g. failed); an item is written once no awaited step of
it is still missing: one `escrow_put_many` call for all of them, so a fleet
costs about one write per round of concurrent steps instead of one per device. Nothing waits for
a step that has not started (it holds no slot yet), so this cannot deadlock. A step returns only
once a write holding its member succeeded (or with that write's error), so "escrowed" is
journaled only for what the escrow holds, exactly as with one item per replacement. Material
stays in memory, as everywhere else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from revoke.connector import ActionResult, Replacement


@dataclass
class _Item:
    cond: threading.Condition = field(default_factory=threading.Condition)
    pending: dict[str, Replacement] = field(default_factory=dict)
    awaited: set[str] = field(default_factory=set)  # members whose steps run and have not handed in
    writing: bool = False
    results: dict[str, BaseException | ActionResult] = field(default_factory=dict)


class EscrowWrites:
    """`put(escrow, replacement)` blocks until the item named by `escrow` holds the replacement.

    `write(escrow, members)` does one write of several members (the executor's retried
    `escrow_put_many`); it is called by one thread at a time per item."""

    def __init__(self, write: Callable[[dict[str, Any], dict[str, Replacement]], ActionResult]) -> None:
        self._write = write
        self._items: dict[tuple[str, str, str], _Item] = {}
        self._lock = threading.Lock()
        self.writes = 0  # for the run's statistics and the tests

    def _item(self, escrow: dict[str, Any]) -> _Item:
        with self._lock:
            return self._items.setdefault((escrow["connector"], escrow["location"], escrow["item"]), _Item())

    def begin(self, escrow: dict[str, Any]) -> None:
        """A step that will escrow this member has started."""
        item = self._item(escrow)
        with item.cond:
            item.awaited.add(escrow["member"])

    def end(self, escrow: dict[str, Any]) -> None:
        """That step ended (escrowed or not): nobody waits for its member any more."""
        item = self._item(escrow)
        with item.cond:
            item.awaited.discard(escrow["member"])
            item.cond.notify_all()

    def put(self, escrow: dict[str, Any], rep: Replacement) -> ActionResult:
        item = self._item(escrow)
        member = escrow["member"]
        with item.cond:
            item.results.pop(member, None)
            item.pending[member] = rep
            item.cond.notify_all()
            while member not in item.results:
                # write when every running step of this item has handed in its member
                if item.writing or not item.awaited <= item.pending.keys():
                    item.cond.wait()
                    continue
                batch, item.pending, item.writing = item.pending, {}, True
                item.cond.release()
                outcome: BaseException | ActionResult
                try:
                    outcome = self._write(escrow, batch)
                except Exception as exc:  # handed to every member of this write, raised in each step
                    outcome = exc
                finally:
                    item.cond.acquire()
                with self._lock:
                    self.writes += 1
                item.writing = False
                for name in batch:
                    item.results[name] = outcome
                    item.awaited.discard(name)
                item.cond.notify_all()
            result = item.results.pop(member)
        if isinstance(result, BaseException):
            raise result
        return result
