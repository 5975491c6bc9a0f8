"""Verify benchmark: `revoke verify` of a 10-credential incident on a 200k-node / 1M-edge estate,
incremental (the default) against `verify --full` (re-collects everything) in the same run.

    .venv/bin/python bench/verify_scale.py [--nodes 200000 --edges 1000000] [--repeat 2] [--keep DIR]

The estate is bench/collect_scale.py's generated inventory JSON plus one host that stores 10 API
keys of its own: the incident (`compromised-host` on that host) plans 10 manual tasks, attested
with `revoke attest` as a responder would. Every command is the real CLI in a child process on a
SQLite store: `collect`, `run --execute`, `attest`, then `verify` (best of `--repeat`) and
`verify --full`. Two variants, each on its own store:
- one file: the host and its keys in the big inventory, which does not change: verify re-reads
  nothing and reuses the stored graph;
- two files: the host and its keys in a second, small inventory, rewritten before verify (a label
  added): verify re-reads that file only and merges it with the unchanged big snapshot's compiled
  part (revoke/graph_parts.py) instead of re-reading the big snapshot's rows.
The figure to hold is incremental verify under 5 s; the ratio full/incremental is what skipping
the unchanged inventory saves.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.collect_scale import ensure_generated, generate  # noqa: E402 - the same estate as the collect benchmark

HOST = "host:bench-incident"
KEYS = [f"vault:api_key:secret/bench-incident-{i}" for i in range(10)]


def incident_doc(label: str = "") -> dict[str, Any]:
    """The incident's host and its 10 keys (the host labelled `label`, if given)."""
    host: dict[str, Any] = {"id": HOST, "kind": "host", **({"labels": {"note": label}} if label else {})}
    return {"nodes": [host, *({"id": k, "kind": "api_key", "provider": "vault", "status": "active"} for k in KEYS)],
            "edges": [{"from": HOST, "to": k, "rel": "stores"} for k in KEYS]}


def estate(path: Path, n_nodes: int, n_edges: int, seed: int) -> None:
    """The collect benchmark's inventory plus the incident's host and its 10 keys."""
    import orjson

    generate(path, n_nodes, n_edges, seed)
    doc = orjson.loads(path.read_bytes())
    extra = incident_doc()
    doc["nodes"] += extra["nodes"]
    doc["edges"] += extra["edges"]
    path.write_bytes(orjson.dumps(doc))


def cli(workdir: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "revoke", "--config", str(workdir / "revoke.yaml"),
            "--store", f"sqlite:///{workdir / 'bench.db'}", *args]
    t0 = time.perf_counter()
    res = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"revoke {' '.join(args)} failed ({res.returncode}): {res.stderr[-2000:]}")
    return elapsed, res


def verify(workdir: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    elapsed, res = cli(workdir, "verify", "--incident", "bench", "--format", "json", *extra)
    out = json.loads(res.stdout)
    if not out["clean"]:
        raise SystemExit(f"verify {' '.join(extra)} is not clean: {out['reasons'][:5]}")
    return elapsed, out


def incident(workdir: Path, sources: list[tuple[str, Path]]) -> float:
    """A new store: collect these inventories, run the incident, attest its 10 tasks."""
    (workdir / "revoke.yaml").write_text("connectors:\n" + "".join(
        f"  - {{type: inventory, name: {name}, path: {path}}}\n" for name, path in sources))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{workdir / 'bench.db'}{suffix}").unlink(missing_ok=True)
    collected, _ = cli(workdir, "collect")
    cli(workdir, "run", "compromised-host", "--node", HOST, "--incident", "bench", "--execute")
    cli(workdir, "attest", "--incident", "bench", *KEYS, "--note", "key revoked at the vendor")
    return collected


def compare(label: str, workdir: Path, repeat: int, before: Callable[[], object], reread: list[str],
            reused: list[str]) -> None:
    """Incremental verify (best of `repeat`, `before` run ahead of each) against `verify --full`."""
    runs = []
    for _ in range(repeat):
        before()
        runs.append(verify(workdir))
    fast, out = min(runs, key=lambda r: r[0])
    if out["recollection"]["recollected"] != reread or list(out["recollection"]["reused"]) != reused:
        raise SystemExit(f"incremental verify ({label}) re-read otherwise than expected: {out['recollection']}")
    full, full_out = verify(workdir, "--full")
    if sorted(full_out["recollection"]["recollected"]) != sorted(reread + reused):
        raise SystemExit(f"verify --full did not re-read every inventory: {full_out['recollection']}")
    same = {k: v for k, v in out.items() if k not in ("chain_message", "recollection")} == \
        {k: v for k, v in full_out.items() if k not in ("chain_message", "recollection")}
    print(f"verify ({label}) {fast:.2f} s; verify --full {full:.1f} s; ratio full/incremental "
          f"{full / fast:.1f}x; same result: {'yes' if same else 'NO'}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=200_000)
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=2, help="incremental verify runs, the best kept")
    ap.add_argument("--keep", type=Path, help="a folder to keep the estate and store in")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        size = f"{args.nodes:,} nodes / {args.edges:,} edges"
        # one file: the incident's host and keys inside the big inventory, unchanged
        one = workdir / f"estate-{args.nodes}-{args.edges}.json"
        ensure_generated(one, lambda path: estate(path, args.nodes, args.edges, args.seed))
        collected = incident(workdir, [("inventory", one)])
        print(f"{size}, one file: collect {collected:.1f} s", flush=True)
        compare("one file, unchanged", workdir, args.repeat, lambda: None, [], ["inventory"])
        # two files: the big inventory as collect_scale writes it, the incident's in a small one
        big = workdir / f"inventory-{args.nodes}-{args.edges}.json"
        ensure_generated(big, lambda path: generate(path, args.nodes, args.edges, args.seed))
        small = workdir / "incident.json"
        small.write_text(json.dumps(incident_doc()))
        collected = incident(workdir, [("estate", big), ("incident", small)])
        print(f"{size} + a small inventory: collect {collected:.1f} s", flush=True)
        edits = iter(range(1, 1000))
        compare("small file changed, big one unchanged", workdir, args.repeat,
                lambda: small.write_text(json.dumps(incident_doc(f"edit {next(edits)}"))), ["incident"], ["estate"])


if __name__ == "__main__":
    main()
