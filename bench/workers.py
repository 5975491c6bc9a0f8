"""Worker benchmark: 500 simulated accounts, 50 ms of provider latency each, collected through the
Postgres job queue by 1, 2, 4 and 8 `revoke.worker` processes on this machine.

    .venv/bin/python bench/workers.py [--accounts 500] [--latency 0.05] [--workers 1,2,4,8]

A real Postgres server (the lab's embedded Postgres 18) holds the queue. Each run enqueues one
job per account (the queue's real enqueue, claim with FOR UPDATE SKIP LOCKED, lease heartbeat and
result recording); the job's handler only sleeps for the latency (the provider). Workers are
started and idle before the clock starts; the clock stops when every result is recorded. The
same calls are then made by a bare thread pool of as many threads (no queue, no store): the
overhead of going through the store is the ratio between the two.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from revoke import jobs, worker
from revoke.store import Store

KIND = "bench.account"


def _call(latency: float) -> dict[str, Any]:
    time.sleep(latency)  # the provider's round trips for one account
    return {"nodes": 10}


def _handler(job: jobs.Job) -> dict[str, Any]:
    return {"account": job.payload["account"], **_call(float(job.payload["latency"]))}


def _work(url: str, stop: Any) -> None:
    worker.run(url, {KIND: _handler}, poll=0.01, stop=stop)


def through_workers(url: str, n: int, accounts: int, latency: float) -> float:
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    procs = [ctx.Process(target=_work, args=(url, stop)) for _ in range(n)]
    for p in procs:
        p.start()
    store = Store(url)
    time.sleep(1.0)  # every worker connected and polling
    batch = f"bench-{n}-{time.time_ns()}"
    t0 = time.perf_counter()
    jobs.enqueue(store, batch, KIND, [{"account": i, "latency": latency} for i in range(accounts)])
    results = jobs.wait(store, batch, poll=0.01)
    elapsed = time.perf_counter() - t0
    stop.set()
    for p in procs:
        p.join(timeout=30)
    assert len(results) == accounts and all("error" not in r for r in results.values()), "a job failed"
    store.close()
    return elapsed


def thread_pool(n: int, accounts: int, latency: float) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(_call, [latency] * accounts))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--workers", default="1,2,4,8")
    args = ap.parse_args()
    from examples.lab import postgres_lab
    from revoke import logs

    logs.configure("console", "warning")

    lab = postgres_lab.start()
    try:
        url = lab.uri(lab.new_database("bench"))
        Store(url).close()
        base = None
        print(f"{args.accounts} accounts x {args.latency * 1000:.0f} ms, Postgres job queue")
        for n in (int(x) for x in args.workers.split(",")):
            took = through_workers(url, n, args.accounts, args.latency)
            pool = thread_pool(n, args.accounts, args.latency)
            base = base or took
            print(f"{n} worker(s): {took:.2f} s, speedup {base / took:.2f}x vs 1 worker; "
                  f"bare thread pool of {n}: {pool:.2f} s (workers take {took / pool:.2f}x)", flush=True)
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
