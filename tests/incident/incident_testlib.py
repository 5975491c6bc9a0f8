"""What an incident's recorded plan asks of people: its manual tasks, read from the journal."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def manual_tasks(lb: Any, incident: str) -> list[str]:
    """The nodes of every manual task in the incident's recorded plan (to attest them all)."""
    db = sqlite3.connect(lb.directory / ".revoke" / "revoke.db")
    row = db.execute("SELECT data FROM journal WHERE incident=? AND type='plan' ORDER BY seq LIMIT 1",
                     (incident,)).fetchone()
    db.close()
    return list(dict.fromkeys(s["node"] for s in json.loads(row[0])["steps"] if s["verb"] == "manual"))
