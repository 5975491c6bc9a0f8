"""Verify stays linear on a deep graph: each live credential it finds reachable carries its path
shortened the way `blast-radius` prints it (head, "…", tail, and the whole length), built from its
predecessor's, never one whole path per survivor (10,000 survivors at depths up to 10,000 would be
50 million ids)."""

from __future__ import annotations

import json
from pathlib import Path

from revoke.blast import ELIDED, PATH_HEAD, PATH_TAIL
from tests.reliability.hostile_testlib import run_bounded
from tests.reliability.test_long_paths import _chain_site

LENGTH = 10_000


def test_verify_of_a_10000_long_chain_prints_short_paths_in_bounded_memory(tmp_path: Path) -> None:
    site = _chain_site(tmp_path / "chain", LENGTH)
    kw = {"cwd": site, "store": site / ".revoke" / "revoke.db", "timeout": 120}
    assert run_bounded("collect", **kw).returncode == 0  # type: ignore[arg-type]
    run = run_bounded("run", "compromised-host", "--node", "host:h0", "--incident", "deep", "--execute",
                      **kw)  # type: ignore[arg-type]
    assert run.returncode == 0, run.stderr[-1000:]
    # nothing can act on provider x: every password is a manual task, unattested, so live and reachable
    v = run_bounded("verify", "--incident", "deep", "--no-collect", "--format", "json", **kw)  # type: ignore[arg-type]
    assert v.returncode == 1, v.stderr[-1000:]
    body = json.loads(v.stdout)
    assert body["live_reachable"] == LENGTH - 1
    deepest = next(s for s in body["survivors"] if s["node"] == f"x:password:p{LENGTH - 1}")
    assert deepest["path"] == [*(["host:h0"] + [f"x:password:p{i}" for i in range(1, PATH_HEAD)]), ELIDED,
                               *(f"x:password:p{i}" for i in range(LENGTH - PATH_TAIL, LENGTH))]
    assert deepest["path_length"] == LENGTH
    shallow = next(s for s in body["survivors"] if s["node"] == "x:password:p2")
    assert shallow["path"] == ["host:h0", "x:password:p1", "x:password:p2"] and shallow["path_length"] == 0
    reason = next(r for r in body["reasons"] if r.startswith(f"live and reachable: x:password:p{LENGTH - 1} "))
    assert reason.endswith(f"via host:h0 -> x:password:p1 -> ... {LENGTH - 4} more ... -> "
                           f"x:password:p{LENGTH - 2} -> x:password:p{LENGTH - 1}"), reason
    assert v.peak_mb < 500 and len(v.stdout) < 3000 * LENGTH, (v.peak_mb, len(v.stdout), v.seconds)
