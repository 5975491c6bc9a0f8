"""Collection benchmark: `revoke collect` of a generated inventory JSON against a same-run floor.

    .venv/bin/python bench/collect_scale.py [--nodes 200000 --edges 1000000] [--big] [--seed S]

The inventory is written as one `.json` file (hosts, workloads, repos, users, roles, service
accounts, Vault paths and tokens, access keys, secrets, a tenth of the credentials dead). Each
measurement runs in its own process so its peak RSS is its own:
- `collect`: the real CLI, `revoke --store sqlite:///... collect`, on a new store;
- the floor: orjson parse of the same file + a bare `executemany` of the same rows (one compact
  JSON text per row) into a bare SQLite table + a bare CSR build with numpy.
The ratio collect/floor is the figure to hold (issue target: within 3x). `--big` adds the
1M-node / 5M-edge run (target: under 60 s, peak RSS under 4 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# (kind, id prefix, provider, share of the nodes)
BLOCKS = [
    ("host", "host:h", "", 0.06), ("workload", "workload:w", "", 0.04), ("repo", "repo:r", "", 0.02),
    ("user", "aws:user:u", "aws", 0.06), ("role", "aws:role:r", "aws", 0.03),
    ("service_account", "gcp:service_account:sa", "gcp", 0.03), ("secret_path", "vault:path:secret/p", "vault", 0.06),
    ("token", "vault:token:t", "vault", 0.20), ("access_key", "aws:access_key:AKIA", "aws", 0.15),
    ("service_account_key", "gcp:service_account_key:k", "gcp", 0.05), ("secret", "vault:secret:secret/s", "vault", 0.20),
    ("api_key", "vault:api_key:secret/a", "vault", 0.10),
]
HOLDERS = {"host", "workload", "repo"}
# which kinds an edge from a kind may lead to, and with which relation
LINKS = {
    "host": [("stores", ("access_key", "token", "secret", "api_key", "service_account_key"))],
    "workload": [("stores", ("token", "secret", "access_key"))],
    "repo": [("stores", ("api_key", "secret", "token"))],
    "access_key": [("authenticates_as", ("user",))],
    "service_account_key": [("authenticates_as", ("service_account",))],
    "token": [("can_read", ("secret_path",))],
    "secret_path": [("stores", ("secret", "api_key", "access_key"))],
    "user": [("can_assume", ("role",))],
    "role": [("can_read", ("secret_path",))],
    "service_account": [("can_mint", ("token",))],
    "secret": [("derives", ("api_key",))],
    "api_key": [("stores", ("token",))],
}


def generate(path: Path, n_nodes: int, n_edges: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    counts = [max(1, int(share * n_nodes)) for *_, share in BLOCKS]
    counts[-1] += n_nodes - sum(counts)
    ids: dict[str, list[str]] = {}
    nodes = []
    for (kind, prefix, provider, _), count in zip(BLOCKS, counts, strict=True):
        block = [f"{prefix}{i:07d}" for i in range(count)]
        ids[kind] = block
        dead = rng.random(count) < (0.1 if kind not in HOLDERS else 0.0)
        for i, nid in enumerate(block):
            node = {"id": nid, "kind": kind, "name": nid.rsplit(":", 1)[-1], "created": f"2025-01-{1 + i % 28:02d}T00:00:00Z",
                    "attrs": {"account": "123456789012", "n": i}}
            if provider:
                node["provider"] = provider
                node["status"] = "inactive" if dead[i] else "active"
            nodes.append(node)
    sources = [k for k in LINKS]
    weight = np.array([len(ids[k]) for k in sources], dtype=float)
    per_kind = np.floor(n_edges * weight / weight.sum()).astype(int)
    per_kind[0] += n_edges - per_kind.sum()
    edges = []
    seen: set[tuple[str, str, str]] = set()
    for src_kind, count in zip(sources, per_kind, strict=True):
        rel, targets = LINKS[src_kind][0]
        srcs = ids[src_kind]
        made = 0
        while made < count:
            batch = count - made
            a = rng.integers(0, len(srcs), batch)
            tk = rng.integers(0, len(targets), batch)
            for ai, ti in zip(a.tolist(), tk.tolist(), strict=True):
                dst_ids = ids[targets[ti]]
                b = int(rng.integers(0, len(dst_ids)))
                key = (srcs[ai], rel, dst_ids[b])
                if key in seen:
                    continue
                seen.add(key)
                edges.append({"from": key[0], "to": key[2], "rel": rel})
                made += 1
    path.write_text(json.dumps({"nodes": nodes, "edges": edges}))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def floor(inventory: Path) -> dict[str, float]:
    """orjson parse + bare executemany of the same rows + bare CSR build (numpy)."""
    import orjson

    t0 = time.perf_counter()
    doc = orjson.loads(inventory.read_bytes())
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE nodes (snapshot TEXT, id TEXT, data BLOB)")
        db.execute("CREATE TABLE edges (snapshot TEXT, data BLOB)")
        db.execute("BEGIN")
        db.executemany("INSERT INTO nodes VALUES ('inventory',?,?)", ((n["id"], orjson.dumps(n)) for n in doc["nodes"]))
        db.executemany("INSERT INTO edges VALUES ('inventory',?)", ((orjson.dumps(e),) for e in doc["edges"]))
        db.execute("COMMIT")
        db.close()
    t2 = time.perf_counter()
    ids = sorted(n["id"] for n in doc["nodes"])
    index = {nid: i for i, nid in enumerate(ids)}
    m = len(doc["edges"])
    src = np.fromiter((index[e["from"]] for e in doc["edges"]), dtype=np.int64, count=m)
    dst = np.fromiter((index[e["to"]] for e in doc["edges"]), dtype=np.int32, count=m)
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum(np.bincount(src, minlength=len(ids)), out=indptr[1:])
    _ = dst[order]
    t3 = time.perf_counter()
    return {"parse": t1 - t0, "insert": t2 - t1, "csr": t3 - t2, "total": t3 - t0, "rss_mib": _peak_mib()}


_CHILD = """
import resource, sys
from revoke.cli import main
try:
    main()
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def collect_once(inventory: Path, workdir: Path) -> dict[str, Any]:
    """The real CLI in a child process, which reports its own peak RSS."""
    config = workdir / "revoke.yaml"
    config.write_text(f"connectors:\n  - type: inventory\n    path: {inventory}\n")
    store = workdir / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["revoke", "--config", str(config), "--store", f"sqlite:///{store}", "collect"]
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = {argv!r}\n" + _CHILD], cwd=workdir, env=env,
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"collect failed ({res.returncode}): {res.stderr[-2000:]}")
    rss_kib = int(res.stderr.strip().splitlines()[-1])
    return {"total": elapsed, "rss_mib": rss_kib / 1024, "out": res.stdout.strip().splitlines()[-1]}


def ensure_generated(path: Path, make: Callable[[Path], None]) -> None:
    """Write the estate unless a kept folder (`--keep`) already holds it, saying how long it took."""
    if path.exists():
        return
    t0 = time.perf_counter()
    make(path)
    print(f"generated {path.name}: {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s", flush=True)


def _floor_child(inventory: Path) -> dict[str, Any]:
    res = subprocess.run([sys.executable, __file__, "--floor-of", str(inventory)], capture_output=True, text=True,
                         check=True)
    return json.loads(res.stdout)


def run(n_nodes: int, n_edges: int, seed: int, workdir: Path, repeat: int) -> tuple[dict[str, Any], dict[str, Any]]:
    inventory = workdir / f"inventory-{n_nodes}-{n_edges}.json"
    ensure_generated(inventory, lambda path: generate(path, n_nodes, n_edges, seed))
    # interleaved, best of `repeat` each: the machine is shared, the best run is the least disturbed
    runs = [(_floor_child(inventory), collect_once(inventory, workdir)) for _ in range(repeat)]
    base = min((b for b, _ in runs), key=lambda r: r["total"])
    got = min((g for _, g in runs), key=lambda r: r["total"])
    return base, got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=200_000)
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--big", action="store_true", help="also 1M nodes / 5M edges")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each, the best kept")
    ap.add_argument("--keep", type=Path, help="a folder to keep the generated inventories in")
    ap.add_argument("--floor-of", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.floor_of:
        print(json.dumps(floor(args.floor_of)))
        return
    sizes = [(args.nodes, args.edges)] + ([(1_000_000, 5_000_000)] if args.big else [])
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for n, m in sizes:
            base, got = run(n, m, args.seed, workdir, args.repeat)
            print(f"{n:,} nodes / {m:,} edges: collect {got['total']:.1f} s (peak RSS {got['rss_mib']:.0f} MiB); "
                  f"floor {base['total']:.1f} s (parse {base['parse']:.2f} + insert {base['insert']:.2f} + "
                  f"csr {base['csr']:.2f}; peak RSS {base['rss_mib']:.0f} MiB); ratio {got['total'] / base['total']:.2f}x")


if __name__ == "__main__":
    main()
