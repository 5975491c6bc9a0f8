"""The demo lab behind fault proxies (examples/lab/faultproxy.py), and the demo incident run
through the real CLI under faults.

`lab_with_faults()` starts the demo lab with one proxy in front of moto and one in front of
OpenBao and points the lab's revoke.yaml at the proxies; the test harness keeps talking to the
servers directly. `python -m examples.lab.faulty_lab --devices 200 --rate 0.2` runs the demo
incident under faults through the CLI and prints the figures.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.lab.faultproxy import FaultPlan, FaultProxy


@dataclass
class FaultyLab:
    lab: Any  # examples.lab.demo.Lab; its aws_endpoint / vault_url stay the servers' own
    aws: FaultProxy
    vault: FaultProxy

    def set_rate(self, rate: float) -> None:
        self.aws.set_rate(rate)
        self.vault.set_rate(rate)

    def stats(self) -> dict[str, Any]:
        return {"aws": self.aws.stats.to_json(), "vault": self.vault.stats.to_json()}


@contextmanager
def lab_with_faults(directory: Path | None = None, *, devices: int = 5, plan: FaultPlan | None = None,
                    rate: float | None = None) -> Iterator[FaultyLab]:
    """The demo lab (seeded without faults), with revoke.yaml pointing at fault proxies in front of
    moto and OpenBao. Faults start at `rate` (default: the plan's rate; 0 to start quiet)."""
    import yaml

    from examples.lab.demo import lab

    base = plan or FaultPlan()
    with lab(directory, devices=devices) as lb:
        aws_plan = FaultPlan(**{**base.__dict__, "weights": dict(base.weights)})
        vault_plan = FaultPlan(**{**base.__dict__, "weights": dict(base.weights), "seed": base.seed + 1})
        with FaultProxy(lb.aws_endpoint, flavor="aws", plan=aws_plan) as aws, \
                FaultProxy(lb.vault_url, flavor="vault", plan=vault_plan) as vault:
            config = yaml.safe_load(lb.config.read_text())
            for c in config["connectors"]:
                if c["type"] == "aws":
                    c["endpoint_url"] = aws.url
                elif c["type"] == "vault":
                    c["url"] = vault.url
            lb.config.write_text(yaml.safe_dump(config, sort_keys=False))
            faulty = FaultyLab(lb, aws, vault)
            if rate is not None:
                faulty.set_rate(rate)
            yield faulty


def _cli(lb: Any, *args: str, timeout: float = 600) -> tuple[int, str, str, float]:
    import os
    import subprocess
    import sys

    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "revoke", *args], cwd=lb.directory, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started


def _manual_tasks(lb: Any, incident: str) -> list[str]:
    """The nodes of the incident's manual tasks (the password, the deliveries from the escrow)."""
    import sqlite3

    db = sqlite3.connect(lb.directory / ".revoke" / "revoke.db")
    row = db.execute("SELECT data FROM journal WHERE incident=? AND type='plan' ORDER BY seq LIMIT 1",
                     (incident,)).fetchone()
    db.close()
    return list(dict.fromkeys(s["node"] for s in json.loads(row[0])["steps"] if s["verb"] == "manual")) if row else []


_RUN_LINE = re.compile(r"(\d+) actions done, (\d+) already done, (\d+) failed, (\d+) blocked, (\d+) retries, ([\d.]+)s")


def run_incident_under_faults(*, devices: int = 5, rate: float = 0.2, seed: int = 7, lost_response: float = 0.0,
                              directory: Path | None = None, faults_during: tuple[str, ...] = ("collect", "run", "verify"),
                              playbook: str = "compromised-ci-supply-chain",
                              weights: dict[str, float] | None = None, gcp_faults: bool = True,
                              inspect: Callable[[FaultyLab], Any] | None = None) -> dict[str, Any]:
    """The demo incident through the real CLI with faults on during the named phases. Returns the
    figures: per phase exit code and seconds, the run's actions and executor retries, and what the
    proxies injected (botocore retries some faults itself before the executor sees them).

    GCP speaks gRPC, which this HTTP proxy does not carry: with `gcp_faults`, the IAM double's own
    knobs fail its write calls once each during the run (UNAVAILABLE / RESOURCE_EXHAUSTED), which the
    SDK does not retry, so the executor's backoff is exercised. `inspect(faulty_lab)` runs before
    the lab stops (to read provider state); its return value is `figures["inspected"]`."""
    from examples.lab.demo import RUNNER

    figures: dict[str, Any] = {"devices": devices, "rate": rate, "seed": seed, "lost_response": lost_response,
                               "faults_during": list(faults_during), "phases": {}}
    plan = FaultPlan(rate=rate, seed=seed, lost_response=lost_response)
    if weights is not None:
        plan.weights = dict(weights)
    with lab_with_faults(directory, devices=devices, plan=plan, rate=0.0) as fl:

        def phase(name: str, *args: str) -> tuple[int, str, str]:
            fl.set_rate(rate if name in faults_during else 0.0)
            fl.aws.plan.lost_response = lost_response if name in faults_during else 0.0
            fl.vault.plan.lost_response = lost_response if name in faults_during else 0.0
            before = {k: v["faults"] for k, v in fl.stats().items()}
            rc, out, err, secs = _cli(fl.lab, *args)
            after = fl.stats()
            figures["phases"][name] = {"rc": rc, "seconds": round(secs, 2),
                                       "faults": {k: after[k]["faults"] - before[k] for k in after}}
            if rc not in (0, 1):
                figures["phases"][name]["error"] = err.strip().splitlines()[-1:] if err.strip() else []
            return rc, out, err

        phase("collect", "collect")
        gcp_injected = 0
        if gcp_faults and "run" in faults_during and rate > 0:
            import grpc

            for method, code in (("CreateServiceAccountKey", grpc.StatusCode.UNAVAILABLE),
                                 ("DisableServiceAccountKey", grpc.StatusCode.RESOURCE_EXHAUSTED)):
                fl.lab.gcp.fail_next(method, code, times=1)
                gcp_injected += 1
        figures["gcp_faults_armed"] = gcp_injected
        rc, out, _ = phase("run", "run", playbook, "--node", RUNNER, "--incident", "faults", "--execute", "--approve")
        m = _RUN_LINE.search(out)
        if m:
            figures["actions"], figures["already_done"], figures["failed"], figures["blocked"], \
                figures["executor_retries"] = (int(g) for g in m.groups()[:5])
            figures["run_seconds"] = float(m.group(6))
        figures["run_failures"] = [ln.strip() for ln in out.splitlines() if ln.strip().startswith(("FAILED", "BLOCKED"))]
        resumes = 0
        while rc != 0 and resumes < 3:
            # an incident left open by a fault that outlasted the retries is resumed, as an operator would
            resumes += 1
            rc, out, _ = phase(f"resume{resumes}", "run", playbook, "--incident", "faults", "--execute")
        figures["resumes"] = resumes
        phase("attest", "attest", "--incident", "faults", *_manual_tasks(fl.lab, "faults"), "--note", "done by hand")
        rc, out, _ = phase("verify", "verify", "--incident", "faults", "--format", "json")
        figures["verify_clean"] = rc == 0
        if rc != 0:
            try:
                body = json.loads(out)
                figures["verify_problems"] = ([p["problem"] for p in body["probes"] if p["problem"]] + body["problems"]
                                              + [f"collect {k}: {v}" for k, v in body["collect_failures"].items()])
            except ValueError:
                figures["verify_problems"] = ["unparsable verify output"]
        figures["proxy"] = fl.stats()
        if inspect is not None:
            figures["inspected"] = inspect(fl)
    figures["injected_total"] = sum(v["faults"] for v in figures["proxy"].values())
    return figures


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run the demo incident through the CLI under injected faults.")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phases", default="run", help="comma-separated: collect, run, verify")
    parser.add_argument("--lost-response", type=float, default=0.0,
                        help="share of forwarded requests whose response is dropped after the server acted")
    args = parser.parse_args(argv)
    figures = run_incident_under_faults(devices=args.devices, rate=args.rate, seed=args.seed,
                                        lost_response=args.lost_response,
                                        faults_during=tuple(p.strip() for p in args.phases.split(",") if p.strip()))
    print(json.dumps(figures, indent=2))
    return 0 if figures["verify_clean"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
