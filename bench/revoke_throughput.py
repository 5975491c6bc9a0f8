"""Throughput of `revoke run`: N AWS access keys revoked through the executor (journal, per-provider
concurrency, retries, idempotent actions), against a plain sequential boto3 loop and a bare
ThreadPoolExecutor loop at the same concurrency, all in one run against one moto server in a
separate process (an in-process server shares the GIL with the client and hides concurrency).

    .venv/bin/python bench/revoke_throughput.py [--keys 2000] [--concurrency 8] [--latency-ms 0]

`--latency-ms` puts the lab's loopback proxy (examples/lab/faultproxy.py, every response held
back that long) between every contender and moto, as a remote API's round trip would: moto on
loopback answers in about a millisecond, where concurrency hardly helps.

Each contender deactivates its own disjoint set of keys. The executor's action is idempotent, so it
reads the key's status before setting it Inactive; the "pool, check+set" baseline does the same two
calls, the "pool, set only" baseline one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.lab.aws_lab import LAB_ENV, lab_client
from examples.lab.aws_process import MotoProcess


def list_keys(iam: Any, users: list[str], workers: int) -> list[tuple[str, str]]:
    def one(user: str) -> list[tuple[str, str]]:
        return [(user, k["AccessKeyId"]) for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]

    with ThreadPoolExecutor(workers) as pool:
        return [pair for chunk in pool.map(one, users) for pair in chunk]


def run_revoke(endpoint: str, keys: list[tuple[str, str]], concurrency: int) -> tuple[float, Any]:
    import yaml

    from revoke.config import load_config
    from revoke.incident import declare, execute
    from revoke.journal import Journal
    from revoke.plan import build_plan
    from revoke.playbook import load_playbook
    from revoke.store import Store

    work = Path(tempfile.mkdtemp(prefix="revoke-bench-"))
    inv = {"nodes": [{"id": "host:bench", "kind": "host"}]
           + [{"id": f"aws:access_key:{k}", "kind": "access_key", "provider": "aws", "attrs": {"user": u}} for u, k in keys],
           "edges": [{"from": "host:bench", "to": f"aws:access_key:{k}", "rel": "stores"} for _, k in keys]}
    (work / "inventory.json").write_text(__import__("json").dumps(inv))
    (work / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [
        {"type": "inventory", "path": "inventory.json"},
        {"type": "aws", "endpoint_url": endpoint, "region": "us-east-1",
         "access_key_id_env": "AWS_ACCESS_KEY_ID", "secret_access_key_env": "AWS_SECRET_ACCESS_KEY"}]}))
    (work / "pb.yaml").write_text(yaml.safe_dump({"name": "bench", "actions": {"access_key": "revoke"},
                                                  "concurrency": {"default": concurrency}}))
    config = load_config(work / "revoke.yaml")
    store = Store(f"sqlite:///{work / 'revoke.db'}")
    from revoke.collect import collect

    collect(config, store, only=["inventory"])
    pb = load_playbook(work / "pb.yaml")
    plan = build_plan(pb, store, store.load_compiled(), config, ["host:bench"])
    journal = Journal(store, "bench")
    declare(journal, pb, plan, ["host:bench"], emergency=False)
    t = time.perf_counter()
    stats = execute(store, journal, pb, plan, config)
    return time.perf_counter() - t, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    args = ap.parse_args()
    os.environ.update(LAB_ENV)
    from revoke.logs import configure

    configure("console", "warning")  # as the CLI runs by default
    n, c = args.keys, args.concurrency
    users_needed = (4 * n + 1) // 2  # four disjoint sets of n keys, two keys per user
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        aws = stack.enter_context(MotoProcess(bulk={"users": users_needed, "keys_per_user": 2, "roles": 0}))
        endpoint = aws.endpoint_url
        if args.latency_ms > 0:
            from examples.lab.faultproxy import FaultPlan, FaultProxy

            delay = args.latency_ms / 1000
            proxy = stack.enter_context(FaultProxy(endpoint, plan=FaultPlan(
                rate=1.0, weights={"slow": 1.0}, slow_seconds=(delay, delay)), max_connections=4 * c))
            endpoint = proxy.url
        iam = lab_client("iam", endpoint, max_pool=max(16, c * 2))
        users = [f"bulk-user-{i:05d}" for i in range(users_needed)]
        keys = list_keys(iam, users, 8)[: 4 * n]
        sets = [keys[i * n:(i + 1) * n] for i in range(4)]
        print(f"moto in a separate process, {len(keys)} keys ready in {time.perf_counter() - t0:.1f} s; "
              f"{n} keys per contender, concurrency {c}, added latency {args.latency_ms:g} ms")

        def deactivate(pair: tuple[str, str]) -> None:
            iam.update_access_key(UserName=pair[0], AccessKeyId=pair[1], Status="Inactive")

        def check_then_deactivate(pair: tuple[str, str]) -> None:
            status = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=pair[0])["AccessKeyMetadata"]}
            if status.get(pair[1]) == "Active":
                deactivate(pair)

        t = time.perf_counter()
        for pair in sets[0]:
            deactivate(pair)
        seq = time.perf_counter() - t
        t = time.perf_counter()
        with ThreadPoolExecutor(c) as pool:
            list(pool.map(deactivate, sets[1]))
        pool_set = time.perf_counter() - t
        t = time.perf_counter()
        with ThreadPoolExecutor(c) as pool:
            list(pool.map(check_then_deactivate, sets[2]))
        pool_check = time.perf_counter() - t
        took, stats = run_revoke(endpoint, sets[3], c)
        assert stats.ok and stats.done == n, stats
        inactive = sum(1 for u, k in sets[3] for m in iam.list_access_keys(UserName=u)["AccessKeyMetadata"]
                       if m["AccessKeyId"] == k and m["Status"] == "Inactive")
        assert inactive == n, f"only {inactive}/{n} keys are Inactive after revoke run"
    rate = lambda s: f"{n / s:7.0f} keys/s"  # noqa: E731
    print(f"sequential boto3 loop        {seq:6.2f} s  {rate(seq)}")
    print(f"pool, set only               {pool_set:6.2f} s  {rate(pool_set)}")
    print(f"pool, check+set              {pool_check:6.2f} s  {rate(pool_check)}")
    print(f"revoke run (journal, retry)  {took:6.2f} s  {rate(took)}  ({stats.retries} retries)")
    print(f"ratios: revoke vs sequential {seq / took:.2f}x faster; vs pool check+set {took / pool_check:.2f}x the time; "
          f"vs pool set-only {took / pool_set:.2f}x the time")


if __name__ == "__main__":
    main()
