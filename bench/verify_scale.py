"""Verify benchmark: `revoke verify` of a 10-credential incident on a 200k-node / 1M-edge estate,
incremental (the default) against `verify --full` (re-collects everything) in the same run.

    .venv/bin/python bench/verify_scale.py [--nodes 200000 --edges 1000000] [--repeat 2] [--keep DIR]

The estate is bench/collect_scale.py's generated inventory JSON (one file), plus one host that
stores 10 API keys of its own: the incident (`compromised-host` on that host) plans 10 manual
tasks, attested with `revoke attest` as a responder would. Every command is the real CLI in a
child process on one SQLite store: `collect`, `run --execute`, `attest`, then `verify` (best of
`--repeat`) and `verify --full`. The figure to hold is incremental verify under 5 s; the ratio
full/incremental is what skipping the unchanged inventory saves.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.collect_scale import ensure_generated, generate  # noqa: E402 - the same estate as the collect benchmark

HOST = "host:bench-incident"
KEYS = [f"vault:api_key:secret/bench-incident-{i}" for i in range(10)]


def estate(path: Path, n_nodes: int, n_edges: int, seed: int) -> None:
    """The collect benchmark's inventory plus the incident's host and its 10 keys."""
    import orjson

    generate(path, n_nodes, n_edges, seed)
    doc = orjson.loads(path.read_bytes())
    doc["nodes"].append({"id": HOST, "kind": "host"})
    doc["nodes"] += [{"id": k, "kind": "api_key", "provider": "vault", "status": "active"} for k in KEYS]
    doc["edges"] += [{"from": HOST, "to": k, "rel": "stores"} for k in KEYS]
    path.write_bytes(orjson.dumps(doc))


def cli(workdir: Path, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "revoke", "--config", str(workdir / "revoke.yaml"),
            "--store", f"sqlite:///{workdir / 'bench.db'}", *args]
    t0 = time.perf_counter()
    res = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if res.returncode not in ok:
        raise SystemExit(f"revoke {' '.join(args)} failed ({res.returncode}): {res.stderr[-2000:]}")
    return elapsed, res


def verify(workdir: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    elapsed, res = cli(workdir, "verify", "--incident", "bench", "--format", "json", *extra)
    out = json.loads(res.stdout)
    if not out["clean"]:
        raise SystemExit(f"verify {' '.join(extra)} is not clean: {out['reasons'][:5]}")
    return elapsed, out


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
        inventory = workdir / f"estate-{args.nodes}-{args.edges}.json"
        ensure_generated(inventory, lambda path: estate(path, args.nodes, args.edges, args.seed))
        (workdir / "revoke.yaml").write_text(f"connectors:\n  - {{type: inventory, path: {inventory}}}\n")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{workdir / 'bench.db'}{suffix}").unlink(missing_ok=True)
        collected, _ = cli(workdir, "collect")
        ran, _ = cli(workdir, "run", "compromised-host", "--node", HOST, "--incident", "bench", "--execute")
        cli(workdir, "attest", "--incident", "bench", *KEYS, "--note", "key revoked at the vendor")
        print(f"{args.nodes:,} nodes / {args.edges:,} edges: collect {collected:.1f} s; "
              f"run --execute (10 manual tasks) {ran:.1f} s", flush=True)
        runs = [verify(workdir) for _ in range(args.repeat)]
        fast, out = min(runs, key=lambda r: r[0])
        if out["recollection"]["recollected"] or list(out["recollection"]["reused"]) != ["inventory"]:
            raise SystemExit(f"incremental verify re-read something: {out['recollection']}")
        full, full_out = verify(workdir, "--full")
        if full_out["recollection"]["recollected"] != ["inventory"]:
            raise SystemExit(f"verify --full did not re-read the inventory: {full_out['recollection']}")
        same = {k: v for k, v in out.items() if k not in ("chain_message", "recollection")} == \
            {k: v for k, v in full_out.items() if k not in ("chain_message", "recollection")}
        print(f"verify (incremental, inventory unchanged) {fast:.2f} s; verify --full {full:.1f} s; "
              f"ratio full/incremental {full / fast:.1f}x; same result: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
