"""Where the graph is known to be incomplete: connectors whose last collection failed, or that
never ran. `run --execute` refuses on these (revoke/incident.py `check_complete`); every other
command that reads the graph (`plan`, a dry run, `blast-radius`, `sweep`) warns with one stderr
line per connector, through `warn_gaps`, so an answer drawn from a stale snapshot says so.

Kept apart from revoke/incident.py so the read-only commands do not import the executor.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from revoke.config import Config
    from revoke.store import Store


def graph_gaps(store: Store, config: Config | None) -> list[str]:
    """One line per connector whose snapshot is missing or older than its last failure: a plan
    made now would miss whatever they hold. With a config, its connectors (one never collected
    is a gap too); without one, every connector the store has recorded a collection of."""
    snaps = {s.name: s for s in store.snapshots()}
    names = [c.name for c in config.connectors] if config is not None else sorted(snaps)
    gaps = []
    for name in names:
        snap = snaps.get(name)
        if snap is None or snap.taken_at == "never":
            gaps.append(f"{name}: never collected" + (f" (last attempt failed: {_one_line(snap.last_error)})"
                                                      if snap is not None and snap.last_error else ""))
        elif snap.last_error:
            gaps.append(f"{name}: last collection failed ({_one_line(snap.last_error)}); "
                        f"the snapshot is from {snap.taken_at}")
    return gaps


def warn_gaps(store: Store, config: Config | None = None) -> list[str]:
    """Print one `warning: incomplete graph: ...` line per gap to stderr; return the gaps."""
    from revoke.textsafe import safe

    gaps = graph_gaps(store, config)
    for gap in gaps:
        # a connector's error text is a provider's words: shown escaped, like every terminal line
        sys.stderr.write(safe(f"warning: incomplete graph: {gap}") + "\n")
    return gaps


def _one_line(text: str) -> str:
    return " ".join(text.split())
