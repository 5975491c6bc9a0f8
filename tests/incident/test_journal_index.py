"""The cross-incident reads (revoke/journal_index.py) mean what each incident's own reader says:
the one-query lineage equals every journal read record by record, and an open incident retains
what it retired, contained or created until its finalize or rollback of that step."""

from __future__ import annotations

import random
from pathlib import Path

from revoke import journal_index
from revoke.incident_state import IncidentState
from revoke.journal import Journal
from revoke.store import Store


def _incident(store: Store, name: str) -> Journal:
    j = Journal(store, name)
    j.declare("pb.yaml", "pb", "sha256:0", ["host:h"], {"nodes": ["host:h"]}, records=[("plan", {"steps": []})])
    return j


def _per_journal_lineage(store: Store) -> dict[str, str]:
    """What verify did before: every incident's journal read whole, in creation order."""
    out: dict[str, str] = {}
    for (incident,) in store.db.execute("SELECT id FROM incidents ORDER BY created_at"):
        out.update(IncidentState.read(Journal(store, incident)).lineage())
    return out


def test_the_one_query_lineage_equals_every_journal_read_whole(tmp_path: Path) -> None:
    rng = random.Random(3)
    store = Store(f"sqlite:///{tmp_path / 'revoke.db'}")
    creds = [f"aws:access_key:K{i}" for i in range(12)]
    made = 0
    for n in range(6):
        j = _incident(store, f"i{n}")
        for _ in range(rng.randint(0, 8)):
            old = rng.choice(creds)
            step = f"rotate:{old}"
            j.append("intent", action=step, node=old, data={"verb": "rotate"})
            made += 1
            new = f"aws:access_key:N{made}"
            j.append("progress", action=step, node=old, data={"event": "created", "old": old, "new": new})
            if rng.random() < 0.3:
                j.append("progress", action=step, node=old, data={"event": "discarded", "new": new})
            if rng.random() < 0.5:
                creds.append(new)
            j.append("progress", action=step, node=old, data={"event": "stored", "store": "s", "new": new})
            j.append("outcome", action=step, node=old, data={"ok": True})
        j.append("progress", action=None, data={"event": "created", "old": "x", "new": "y"})  # no step: ignored
    # a record whose data is not JSON means nothing to either reader
    store.db.execute("UPDATE journal SET data='{not json' WHERE incident='i2' AND seq=(SELECT MAX(seq) FROM journal "
                     "WHERE incident='i2' AND type='progress')")
    assert journal_index.lineage(store) == _per_journal_lineage(store)
    assert len(journal_index.lineage(store)) > 5
    store.close()


def test_an_open_incident_retains_what_it_retired_contained_or_created_until_it_lets_go(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'revoke.db'}")
    a = _incident(store, "a")
    a.append("progress", action="rotate:k1", node="k1", data={"event": "created", "old": "k1", "new": "k1b"})
    a.append("progress", action="rotate:k1", node="k1", data={"event": "retired", "old": "k1", "verb": "disable"})
    a.append("outcome", action="rotate:k1", node="k1", data={"ok": True})
    a.append("outcome", action="disable:k2", node="k2", data={"ok": True})
    a.append("outcome", action="disable:k3", node="k3", data={"ok": False})
    a.append("progress", action="rotate:k4", node="k4", data={"event": "created", "old": "k4", "new": "k4b"})
    a.append("progress", action="rotate:k4", node="k4", data={"event": "discarded", "new": "k4b"})
    kept = journal_index.retained(store)
    assert sorted(kept) == ["k1", "k1b", "k2"]
    assert kept["k1"].incident == "a" and kept["k1"].step == "rotate:k1" and "retired" in kept["k1"].why
    assert "contained" in kept["k2"].why and "replacement" in kept["k1b"].why
    assert journal_index.retained(store, besides="a") == {}
    # finalize of the rotation lets its keys go; a rollback of the disable gives k2 back
    a.append("outcome", action="finalize:rotate:k1", node="k1", data={"ok": True})
    a.append("outcome", action="rollback:disable:k2", node="k2", data={"ok": True})
    assert journal_index.retained(store) == {}
    store.close()
