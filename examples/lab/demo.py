"""`revoke demo`: the seed incident, end to end, on loopback.

The entry point is the mutable tag of a third-party scanner action (`scanner-org/scan-action`) that
`acme/ai-gateway`'s release workflow runs: its job reads the Actions secrets `PYPI_TOKEN` (which can
publish the gateway package), `AWS_DEPLOY_KEY` (the app's AWS key, also kept in Vault), a bot's
GitHub token and a deploy key, and runs on the CI runner (`host:ci-runner-7`). The runner's
environment held an AWS access key and a Vault token; the token could read KV paths holding the
app's AWS key, a GCP service-account key, a GitHub token and the password of the Postgres role `ci`;
one AWS key could assume a deploy role; an internal CA's private key sat on the runner and had
issued 200 IoT device certificates.

The lab runs a moto server, a real OpenBao dev server, the GCP IAM gRPC double, the GitHub double
and a real Postgres server, all on loopback, in a temporary directory that is removed afterwards
(unless --keep); the Postgres server's data directory is always removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RUNNER = "host:ci-runner-7"
PACKAGE = "package:pypi/ai-gateway@1.82.7"
INCIDENT = "demo-incident"
VAULT_TOKEN_ENV = "REVOKE_LAB_VAULT_TOKEN"


@dataclass
class Lab:
    directory: Path
    config: Path
    store_url: str
    seeds: dict[str, Any] = field(default_factory=dict)
    aws_endpoint: str = ""
    vault_url: str = ""
    gcp: Any = None  # the GCP IAM double, for tests that inspect or fault it
    github: Any = None  # the GitHub double, for tests that read its secrets and tokens
    postgres: Any = None  # the Postgres server (postgres_lab.PostgresLab), for tests that log in


def _inventory(aws: dict[str, Any], vault: dict[str, Any], github: Any) -> dict[str, Any]:
    runner_key = aws["keys"]["ci-deployer"]["access_key_id"]
    return {
        "nodes": [
            {"id": RUNNER, "kind": "host", "labels": {"env": "ci"}, "owner": "platform-team"},
            {"id": PACKAGE, "kind": "package", "labels": {"verdict": "malicious"}},
            {"id": f"aws:access_key:{runner_key}", "kind": "access_key", "provider": "aws"},
            {"id": f"vault:token:{vault['runner_accessor']}", "kind": "token", "provider": "vault"},
        ],
        "edges": [
            # the package's code ran as the runner: whoever controls it controls the runner
            {"from": PACKAGE, "to": RUNNER, "rel": "can_assume"},
            {"from": RUNNER, "to": f"aws:access_key:{runner_key}", "rel": "stores"},
            {"from": RUNNER, "to": f"vault:token:{vault['runner_accessor']}", "rel": "stores"},
            # the release job runs on the runner: the re-tagged action's code runs as the runner too
            {"from": github.facts["job"], "to": RUNNER, "rel": "can_assume"},
            # whoever can publish the project controls the code the runner installs from it
            {"from": github.facts["package"], "to": PACKAGE, "rel": "can_assume"},
            # what each Actions secret holds (a secret's value can never be read back)
            *github.inventory_edges,
        ],
    }


# what the lab writes into its directory (`revoke demo --keep DIR`)
LAB_FILES = ("revoke.yaml", "inventory.yaml", "pki", ".revoke/revoke.db",
             "demo-incident-report.md", "demo-incident-report.html")


def check_lab_directory(directory: Path) -> None:
    """Refuse a directory already holding what the lab would write: `--keep .` in a real project
    must not replace its revoke.yaml, inventory or store with the lab's."""
    from revoke.errors import InputError

    if directory.exists() and not directory.is_dir():
        raise InputError("--keep: not a directory", source=str(directory))
    for name in LAB_FILES:
        if (directory / name).exists() or (directory / name).is_symlink():
            raise InputError(f"--keep: {name} already exists there and the demo would overwrite it; "
                             "give a new or empty directory", source=str(directory))


@contextmanager
def lab(directory: Path | None = None, *, devices: int = 200, separate_aws: bool = False) -> Iterator[Lab]:
    """Start and seed every provider; yield the lab; always stop the servers."""
    from examples.lab.aws_lab import LAB_ENV, MotoServer
    from examples.lab.aws_lab import seed_demo as seed_aws
    from examples.lab.aws_process import SeededMotoProcess
    from examples.lab.gcp_iam_double import GcpIamDouble
    from examples.lab.gcp_iam_double import seed_demo as seed_gcp
    from examples.lab.github_demo import ADMIN_ENV, LEAKED_ENV, PYPI_ENV
    from examples.lab.github_demo import seed as seed_github
    from examples.lab.github_double import GithubDouble
    from examples.lab.pki import write_lab_pki
    from examples.lab.postgres_demo import PG_DSN_ENV
    from examples.lab.postgres_demo import seed_demo as seed_postgres
    from examples.lab.vault_lab import OpenBaoServer
    from examples.lab.vault_lab import seed_demo as seed_vault

    own_dir = directory is None
    if directory is not None:
        check_lab_directory(directory)
    root = Path(tempfile.mkdtemp(prefix="revoke-lab-")) if directory is None else directory
    root.mkdir(parents=True, exist_ok=True)
    saved_env = {k: os.environ.get(k) for k in [*LAB_ENV, VAULT_TOKEN_ENV, PG_DSN_ENV, ADMIN_ENV, LEAKED_ENV,
                                                PYPI_ENV, "no_proxy", "NO_PROXY"]}
    try:
        with ExitStack() as stack:
            # Postgres (initdb and start, ~1 s of mostly waiting) comes up while the other servers do
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
            pg_started = pool.submit(_start_postgres)
            stack.callback(_stop_postgres, pg_started)
            os.environ.update(LAB_ENV)
            # gRPC and requests honour proxy variables: loopback must never go through one
            for var in ("no_proxy", "NO_PROXY"):
                os.environ[var] = ",".join(filter(None, [os.environ.get(var), "127.0.0.1", "localhost"]))
            pki = write_lab_pki(root / "pki", devices=devices)
            aws_server: Any
            if separate_aws:
                # moto in its own process (its CPU is not the client's), seeding while the others start
                aws_server = SeededMotoProcess(pki["ca_cert_pem"], pki["ca_key_pem"], devices)
                stack.push(aws_server.__exit__)
                aws_server.start()
            else:
                aws_server = stack.enter_context(MotoServer())
            bao = stack.enter_context(OpenBaoServer())
            gcp_double = stack.enter_context(GcpIamDouble())
            gh_double = stack.enter_context(GithubDouble())
            if separate_aws:
                aws = aws_server.wait().seed
            else:
                aws = seed_aws(aws_server.endpoint_url, pki["ca_cert_pem"], pki["ca_key_pem"], devices=devices)
            gcp = seed_gcp(gcp_double)
            app = aws["keys"]["app-backend"]
            db_password = secrets.token_urlsafe(18)
            vault = seed_vault(bao.url, bao.root_token, app_aws=(app["access_key_id"], app["secret_access_key"]),
                               gcp_key_json=gcp["deployer_key_json"], db_password=db_password)
            os.environ[VAULT_TOKEN_ENV] = bao.root_token
            # the release job's AWS_DEPLOY_KEY is the app's key (also in secret/ci/aws-app): the entry
            # point joins the chain there, and the runner's own key stays held by the runner alone
            github = seed_github(gh_double, aws_key_id=app["access_key_id"], aws_secret=app["secret_access_key"])
            os.environ.update(github.env)
            # a GitHub token the runner's Vault token can read: found there, revoked by the GitHub connector
            vault_github = _seed_vault_github_token(gh_double, bao.url, bao.root_token)
            pg = pg_started.result()
            postgres_block = seed_postgres(pg, db_password)  # the role whose password secret/ci/db holds
            (root / "inventory.yaml").write_text(yaml.safe_dump(_inventory(aws, vault, github), sort_keys=False))
            config = {"connectors": [
                {"type": "inventory", "path": "inventory.yaml"},
                # the runner trusts the internal CA through its CA bundle: retiring the CA takes it out
                {"type": "x509", "paths": ["pki/runner"], "holder": RUNNER,
                 "trust_paths": [{"path": "pki/runner-trust/ca-bundle.pem", "holder": RUNNER}]},
                {"type": "vault", "url": bao.url, "token_env": VAULT_TOKEN_ENV},
                {"type": "aws", "endpoint_url": aws_server.endpoint_url, "region": aws["region"],
                 "access_key_id_env": "AWS_ACCESS_KEY_ID", "secret_access_key_env": "AWS_SECRET_ACCESS_KEY",
                 # moto implements no ListCACertificates: name the registered CA (a real account lists it)
                 "iot_ca_ids": [aws["iot_ca_id"]]},
                {"type": "gcp", "projects": [gcp["project"]], "endpoint": gcp_double.endpoint},
                github.config,
                postgres_block,
            ],
                # a replacement no store may receive (the runner's own key, the devices' new
                # certificates, the new CA's key) is kept here until it is delivered
                "escrow": {"type": "vault", "path": "secret/revoke-escrow"}}
            (root / "revoke.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            store_url = f"sqlite:///{root / '.revoke' / 'revoke.db'}"
            seeds = {"runner_key": f"aws:access_key:{aws['keys']['ci-deployer']['access_key_id']}",
                     "runner_token": f"vault:token:{vault['runner_accessor']}", "aws": _public(aws),
                     "gcp_key": gcp["node_ids"]["deployer_key"], "source": github.source,
                     "deploy_key": f"aws:access_key:{app['access_key_id']}",
                     "github": {**github.facts, "vault_token": vault_github}}
            yield Lab(root, root / "revoke.yaml", store_url, seeds, aws_server.endpoint_url, bao.url, gcp_double,
                      gh_double, pg)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)


def _seed_vault_github_token(double: Any, url: str, root_token: str) -> str:
    """Write a CI automation token into `secret/ci/github` and name its value to the GitHub
    connector (`leaked_tokens_env`), which needs the value to revoke it. Returns its node id."""
    import hvac

    from connectors.github.transform import token_id
    from examples.lab.github_demo import LEAKED_ENV
    from revoke.model import fingerprint

    value = double.add_token("ci-automation")
    hvac.Client(url=url, token=root_token).secrets.kv.v2.create_or_update_secret(
        "ci/github", secret={"token": value}, mount_point="secret")
    os.environ[LEAKED_ENV] = " ".join(filter(None, [os.environ.get(LEAKED_ENV), value]))
    return token_id(fingerprint(value))


def _start_postgres() -> Any:
    from examples.lab import postgres_lab

    return postgres_lab.start()


def _stop_postgres(started: Any) -> None:
    """Stop the server whether or not the lab got as far as using it (its data directory goes too)."""
    try:
        pg = started.result()
    except Exception:  # it never started: nothing to stop, and the lab's own error is the one to show
        return
    pg.stop()


def _public(aws: dict[str, Any]) -> dict[str, Any]:
    """The seed identifiers without key material."""
    return {k: v for k, v in aws.items() if k != "keys"}


def naive_survivors(store: Any, source: str, only_rotated: str) -> list[str]:
    """Live credentials still reachable if responders only revoked `only_rotated`."""
    from revoke.blast import live_reachable, resolve_sources

    graph = store.load_compiled()
    _, live = live_reachable(graph, resolve_sources(graph, [source]), [only_rotated])
    return sorted(graph.ids[int(i)] for i in live)


def run_demo(*, keep: str | None = None, devices: int = 200) -> int:
    """The whole incident loop, printing each phase. Returns the exit code."""
    from rich.console import Console

    from examples.lab.github_demo import pin_action
    from revoke.blast import blast_radius, resolve_sources
    from revoke.collect import collect
    from revoke.config import load_config
    from revoke.incident import attest_many, declare, execute
    from revoke.journal import Journal
    from revoke.plan import build_plan
    from revoke.playbook import load_playbook
    from revoke.store import Store
    from revoke.verify import verify

    # piped to a file or another program, ids are never folded in the middle
    c = Console(highlight=False, emoji=False, soft_wrap=not sys.stdout.isatty())
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def phase(name: str, started: float) -> None:
        timings[name] = time.perf_counter() - started
        c.print(f"[dim]  ({timings[name]:.2f}s)[/]")

    with lab(Path(keep) if keep else None, devices=devices, separate_aws=True) as lb:
        source = lb.seeds["source"]
        c.print(f"[bold]1. lab[/] moto, OpenBao, GCP IAM double, GitHub double, Postgres on loopback; "
                f"{devices} device certificates")
        phase("lab", t0)
        t = time.perf_counter()
        config = load_config(lb.config)
        store = Store(lb.store_url)
        report = collect(config, store)
        c.print("[bold]2. collect[/] " + ", ".join(f"{k}: {n} nodes/{e} edges" for k, (n, e) in report.collected.items()))
        for name, err in report.failed.items():
            c.print(f"   [red]collection failed[/] {name}: {err}", markup=False)
        phase("collect", t)
        t = time.perf_counter()
        graph = store.load_compiled()
        radius = blast_radius(graph, resolve_sources(graph, [source]))
        data = radius.to_json()
        kinds: dict[str, int] = {}
        for item in data["credentials"]:
            kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
        c.print(f"[bold]3. blast radius[/] of {source} (its tag was moved): {len(data['credentials'])} credentials "
                f"({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}), {len(data['holders'])} holders")
        for item in data["credentials"]:
            if item["kind"] != "certificate":
                c.print(f"   {item['id']}  [dim]via {' -> '.join(item['path'][1:-1]) or 'direct'}[/]", markup=True)
        from revoke.trust import trust_edges

        reached = {item["id"] for item in data["credentials"] if item["kind"] == "ca"}
        for (holder, ca), files in sorted(trust_edges(store).items()):
            if ca in reached:
                c.print(f"   {holder} trusts {ca} (its key is exposed) through {', '.join(files)}", markup=False)
        # the first key a responder finds from the moved tag: the one in the job's AWS_DEPLOY_KEY
        naive = naive_survivors(store, source, lb.seeds["deploy_key"])
        c.print(f"   rotating only the first key found ({lb.seeds['deploy_key']}) leaves "
                f"[bold red]{len(naive)} live reachable credentials[/]")
        phase("blast", t)
        t = time.perf_counter()
        pb = load_playbook("compromised-ci-supply-chain")
        plan = build_plan(pb, store, graph, config, [source])
        counts = plan.to_json()["summary"]
        c.print(f"[bold]4. plan[/] {pb.name}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        for step in plan.steps:
            if step.kind != "certificate":
                c.print(f"   {step.verb:16} {step.node}" + (f"  [dim]{step.reason}[/]" if step.reason else ""))
        phase("plan", t)
        t = time.perf_counter()
        journal = Journal(store, INCIDENT)
        declare(journal, pb, plan, [source], emergency=False)
        stats = execute(store, journal, pb, plan, config)
        c.print(f"[bold]5. run --execute[/] {stats.done} actions done, {len(stats.failed)} failed, "
                f"{stats.retries} retries")
        for sid, err in stats.failed.items():
            c.print(f"   [red]failed[/] {sid}: {err}", markup=False)
        for sid, why in stats.waiting.items():
            c.print(f"   waiting {sid}: {why}", markup=False)
        for step in plan.steps:
            if step.verb == "untrust" and step.id not in stats.failed:
                c.print(f"   untrust: {step.trust.get('holder')} no longer trusts {step.trust.get('ca_name')} "
                        f"({', '.join(step.trust.get('paths') or [])}); {step.trust.get('before')} waited for it",
                        markup=False)
        # no playbook step can edit a workflow: a responder pins the action (the lab does it here),
        # or the moved tag reads every replacement just written back into the job's secrets
        pinned = pin_action(lb.github)
        c.print(f"   the demo pins the action in release.yml to {pinned}, as a responder would", markup=False)
        phase("run", t)
        t = time.perf_counter()
        result = verify(journal, store, config)
        c.print(f"[bold]6. verify[/] {sum(p.live is False for p in result.probes)}/{len(result.probes)} probes dead, "
                f"{len(result.survivors)} live reachable, {len(result.open_manual)} open manual task(s)")
        shown = [m for m in result.open_manual if not m["node"].startswith("aws:iot_thing:")]
        for m in shown:
            c.print(f"   manual: {m['node']}: {m['reason']}", markup=False)
        if len(result.open_manual) > len(shown):
            c.print(f"   manual: deliver the new certificate and key to each of {len(result.open_manual) - len(shown)} "
                    "devices, from the escrow", markup=False)
        if result.open_manual:
            # a responder does these by hand (remove the PyPI token on pypi.org, re-provision the
            # runner, deliver the devices' certificates); the lab has nobody to do them
            c.print(f"   the demo attests these {len(result.open_manual)} manual task(s) itself, as their owners "
                    "would once done (`revoke attest`)", markup=False)
            attest_many(journal, [m["node"] for m in result.open_manual], "lab: done by the responsible owner")
            result = verify(journal, store, config, recollect=False)
            verdict = "[green]CLEAN[/]" if result.clean else "[red]NOT CLEAN[/]"
            c.print(f"   after `revoke attest`: {len(result.survivors)} live reachable, "
                    f"{len(result.open_manual)} open manual task(s): {verdict}")
        for s in result.survivors:
            c.print(f"   [red]survivor[/] {s.node}: {s.reason}", markup=False)
        for p in result.probes:
            if p.problem:
                c.print(f"   [red]probe[/] {p.node}: {p.problem}", markup=False)
        for msg in result.problems:
            c.print(f"   [red]problem[/] {msg}", markup=False)
        for ts in result.trust_survivors:
            c.print(f"   [red]still trusted[/] {ts['holder']}: {ts['ca']} in {', '.join(ts['paths'])}", markup=False)
        phase("verify", t)
        t = time.perf_counter()
        report_path = _write_report(store, journal, lb.directory, keep)
        if report_path:
            c.print(f"[bold]7. report[/] {report_path}")
        phase("report", t)
        store.close()
    total = time.perf_counter() - t0
    c.print(f"[bold]done in {total:.1f}s[/]: first key only -> {len(naive)} live reachable; "
            f"playbook -> {len(result.survivors)} live reachable; " + ("clean" if result.clean else "NOT clean"))
    return 0 if result.clean else 1


def _write_report(store: Any, journal: Any, directory: Path, keep: str | None) -> str | None:
    try:
        from revoke.files import write_private
        from revoke.report import build_report, render
    except ImportError:
        return None
    out_dir = Path(keep) if keep else Path.cwd() / ".revoke"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(store, journal)
    paths = []
    for fmt in ("md", "html"):
        path = out_dir / f"demo-incident-report.{fmt}"
        write_private(path, render(report, fmt).encode("utf-8"), what="report")
        paths.append(str(path))
    return " and ".join(paths)
