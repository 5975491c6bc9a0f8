"""What a walk reports per reached node besides reachability: its depth, computed vectorised from
the predecessor array, and its printed path, bounded whatever the depth."""

from __future__ import annotations

import numpy as np

# A path printed per entry keeps its first PATH_HEAD and last PATH_TAIL ids around ELIDED (and
# says its `path_length`): a 10,000-long chain would otherwise print 50 million ids. `explain`
# gives a whole path.
PATH_HEAD = PATH_TAIL = 8
ELIDED = "…"


class ShortPaths:
    """Each reached node's printed path, built from its predecessor's in discovery order: whole
    while short, else head + ELIDED + tail. A full head list is shared, not copied, so memory and
    output stay linear in the number of nodes whatever the depth."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        # node -> (whole path or None once too long, first PATH_HEAD ids, last PATH_TAIL ids, length)
        self.known: dict[int, tuple[list[str] | None, list[str], list[str], int]] = {}

    def add(self, i: int, pred: int) -> tuple[list[str], int]:
        """(printed path, whole length) of node i reached from `pred` (-1 for a source)."""
        nid = self.ids[i]
        whole: list[str] | None
        if pred < 0:
            head = tail = [nid]
            whole, length = head, 1
        else:
            p_whole, p_head, p_tail, p_length = self.known[pred]
            length = p_length + 1
            whole = [*p_whole, nid] if p_whole is not None and length <= PATH_HEAD + PATH_TAIL + 1 else None
            head = p_head if len(p_head) >= PATH_HEAD else [*p_head, nid]
            tail = [*p_tail[-(PATH_TAIL - 1):], nid]
        self.known[i] = (whole, head, tail, length)
        return (whole if whole is not None else [*head, ELIDED, *tail]), length


MAX_LEVELS = 64


def bfs_depths(pred: np.ndarray, reached: np.ndarray, n_sources: int) -> np.ndarray:
    """Depths for a FIFO breadth-first order with the sources first (what csgraph returns).

    Predecessors' positions never decrease along such an order, so each level is the contiguous
    run of nodes whose predecessor lies in the level before: one scatter, two gathers and one
    binary search per level. Deeper than MAX_LEVELS, pointer doubling takes over."""
    m = reached.shape[0]
    inv = np.empty(pred.shape[0], dtype=np.int32)  # uninitialised: only reached slots are read
    inv[reached] = np.arange(m, dtype=np.int32)
    ppos = inv[pred[reached[n_sources:]]]
    ends = [n_sources]
    while ends[-1] < m and len(ends) <= MAX_LEVELS:
        nxt = n_sources + int(np.searchsorted(ppos, ends[-1], side="left"))
        if nxt <= ends[-1]:
            break
        ends.append(nxt)
    if ends[-1] == m:
        return np.repeat(np.arange(len(ends), dtype=np.int32), np.diff([0, *ends]))
    return reached_depths(pred, reached)


def reached_depths(pred: np.ndarray, reached: np.ndarray) -> np.ndarray:
    """Depth of reached[k] for any order in which predecessors come first: pointer doubling over
    the reached nodes, log(depth) vectorised rounds."""
    m = reached.shape[0]
    inv = np.empty(pred.shape[0], dtype=np.int64)  # uninitialised: only reached slots are read
    inv[reached] = np.arange(m)
    p = pred[reached]
    has = p >= 0
    anc = np.full(m, -1, dtype=np.int64)
    anc[has] = inv[p[has]]
    depth = has.astype(np.int32)
    active = np.flatnonzero(has)
    while active.size:
        nxt = anc[active]
        depth[active] += depth[nxt]
        anc[active] = anc[nxt]
        active = active[anc[active] >= 0]
    return depth
