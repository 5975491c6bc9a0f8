"""Two stores hold the same collection: the same snapshot rows in the same order, the same
findings, the same compiled graph (a collection through workers against one in process)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from revoke.store import Store

COLUMNS = ("kind", "live", "created", "provider", "indptr", "indices", "rel", "since", "until", "status")


def rows(store: Store, table: str) -> list[Any]:
    return [json.loads(d) for (d,) in store.db.execute(f"SELECT data FROM {table} ORDER BY rowid")]


def same_graph(a: Store, b: Store) -> None:
    g, h = a.load_compiled(), b.load_compiled()
    assert g.ids == h.ids and g.providers == h.providers and g.statuses == h.statuses
    for name in COLUMNS:
        x, y = getattr(g, name), getattr(h, name)
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


def same_collection(a: Store, b: Store) -> None:
    assert rows(a, "nodes") == rows(b, "nodes")
    assert rows(a, "edges") == rows(b, "edges")
    assert [s.findings for s in a.snapshots()] == [s.findings for s in b.snapshots()]
    same_graph(a, b)
