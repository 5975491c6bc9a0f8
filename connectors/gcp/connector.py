"""The GCP connector class: its options, its action table, and collect/probe over the client.

Config (`revoke.yaml`):
    - type: gcp
      projects: [my-project]
      endpoint: 127.0.0.1:8085      # optional gRPC endpoint; plaintext only on loopback
      credentials_env: GCP_KEY_FILE # optional: env var naming a key file; else ADC
      timeout: 30                   # optional per-call deadline (s)
      retry_seconds: 10             # optional: budget for retrying reads (0: none)
      concurrency: 8                # optional: parallel per-account reads during collect
      observations: false           # optional: keys' last authentication (Policy Analyzer)
      activity_endpoint: http://127.0.0.1:8086  # optional: Policy Analyzer REST base (http only on loopback)

Actions: keys `disable`, `revoke` (disable now, delete at `finalize`), `rotate` (the executor
calls `create_replacement`, writes the stores, then `act("rotate")` disables the old key),
`rollback` (enable); service accounts `disable` / `rollback`. Mutating calls are not retried
here: a retryable `ConnectorError` goes back to the executor, which owns the retry policy.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from pydantic import Field, StringConstraints

from connectors.gcp import actions
from connectors.gcp.collect import KeyNames, get_project
from connectors.gcp.transform import ACCOUNT_TYPE, KEY_TYPE, PROVIDER, merge, transform_project
from revoke.collect_parts import (
    CollectPart,
    collected_from_wire,
    collected_to_wire,
    edges_from_wire,
    edges_to_wire,
    findings_from_wire,
    findings_to_wire,
)
from revoke.connector import (
    ActionContext,
    ActionResult,
    ActionTable,
    BaseConnector,
    Collected,
    ConnectorError,
    ConnectorOptions,
    ProbeResult,
    Replacement,
)
from revoke.model import Node, NodeKind

if TYPE_CHECKING:
    from connectors.gcp.client import GcpClient

log = structlog.get_logger()

ProjectId = Annotated[str, StringConstraints(strict=True, min_length=1)]
KEYS, KEY_KINDS = (KEY_TYPE,), (NodeKind.SERVICE_ACCOUNT_KEY,)
ACCOUNTS, ACCOUNT_KINDS = (ACCOUNT_TYPE,), (NodeKind.SERVICE_ACCOUNT,)
PROBES = {NodeKind.SERVICE_ACCOUNT_KEY: actions.probe_key, NodeKind.SERVICE_ACCOUNT: actions.probe_account}


class GcpOptions(ConnectorOptions):
    """The `type: gcp` block (see the module docstring); the endpoint's loopback-only plaintext
    rule is checked when the client is built."""

    projects: list[ProjectId] = Field(min_length=1)
    endpoint: str | None = None
    credentials_env: str | None = None
    timeout: float = Field(default=30, gt=0)
    retry_seconds: float = Field(default=10, ge=0)  # 0: reads are not retried
    concurrency: int = Field(default=8, ge=1, le=1024)
    # observed use: each key's last authentication from Policy Analyzer (connectors.gcp.usage)
    observations: bool = False
    activity_endpoint: str | None = None  # default https://policyanalyzer.googleapis.com; http only on loopback


class GcpConnector(BaseConnector):
    name = PROVIDER
    options_model = GcpOptions
    operations = {
        "collect": ["iam.serviceAccounts.list", "iam.serviceAccountKeys.list",
                    "iam.serviceAccounts.getIamPolicy", "resourcemanager.projects.getIamPolicy"],
        "probe": ["iam.serviceAccountKeys.get", "iam.serviceAccounts.get"],
        "observations": ["policyanalyzer.serviceAccountKeyLastAuthenticationActivities.query"],
    }
    table = ActionTable()

    def __init__(self, config: dict[str, Any]) -> None:
        from connectors.gcp.client import GcpClient

        super().__init__(config)
        opts = GcpOptions.parse(config, PROVIDER)
        self.projects: list[str] = list(opts.projects)
        self.concurrency = max(1, opts.concurrency)
        self.client: GcpClient = GcpClient(endpoint=opts.endpoint or None, credentials_env=opts.credentials_env,
                                           timeout=opts.timeout, retry_seconds=opts.retry_seconds)
        self.keys = KeyNames(self.client, self.projects, self.concurrency)
        self.observations, self.activity_endpoint = opts.observations, opts.activity_endpoint

    def close(self) -> None:
        self.client.close()

    # -- collect ---------------------------------------------------------------------------

    def collect(self) -> Collected:
        out = self._read_projects()
        if self.observations:  # keys' last authentication as observed_use edges
            from connectors.gcp.usage import observe

            observe(self.client, self.projects, self.activity_endpoint, out)
        return out

    def _read_projects(self) -> Collected:
        started = time.perf_counter()
        parts: list[Collected] = []
        meta: dict[str, Any] = {"projects": list(self.projects), "pages": 0, "service_accounts": 0,
                                "keys": 0, "policies_read": 0}
        for project in self.projects:
            payload, findings, pages = get_project(self.client, project, self.concurrency)
            self.keys.remember_payload(payload)
            part = transform_project(project, payload)
            part.findings.extend(findings)
            parts.append(part)
            meta["pages"] += pages
            meta["service_accounts"] += len(payload["accounts"])
            meta["keys"] += sum(len(k) for k in payload["keys"].values())
            meta["policies_read"] += len(payload["account_policies"]) + (payload["project_policy"] is not None)
            log.info("gcp.collect.project", project=project, accounts=len(payload["accounts"]),
                     keys=sum(len(k) for k in payload["keys"].values()), pages=pages)
        out = merge(parts)
        meta["edges"] = len(out.edges)
        meta["seconds"] = round(time.perf_counter() - started, 3)
        out.meta = meta
        return out

    # one job per project under `revoke collect --workers` (revoke/collect_parts.py): each part is
    # one project's snapshot, its observed use apart, so `assemble` orders them as `collect()` does
    @classmethod
    def collect_parts(cls, config: dict[str, Any]) -> list[CollectPart]:
        projects = list(GcpOptions.parse(config, PROVIDER).projects)
        if len(projects) < 2:
            return []
        return [CollectPart(f"project {p}", {**config, "projects": [p]}) for p in projects]

    def collect_part(self, task: dict[str, Any]) -> dict[str, Any]:
        out = self._read_projects()
        wire: dict[str, Any] = {"snapshot": collected_to_wire(out)}
        if self.observations:
            from connectors.gcp.usage import observe

            seen = Collected(edges=list(out.edges))
            observe(self.client, self.projects, self.activity_endpoint, seen)
            wire["observed"] = {"edges": edges_to_wire(seen.edges[len(out.edges):]),
                                "findings": findings_to_wire(seen.findings),
                                "events": seen.meta["observations"]["events"]}
        return wire

    @classmethod
    def assemble(cls, config: dict[str, Any],
                 done: list[tuple[CollectPart, dict[str, Any]]]) -> Collected | list[CollectPart]:
        snaps = [collected_from_wire(result["snapshot"]) for _, result in done]
        out = merge(snaps)
        out.meta = {"projects": [p for s in snaps for p in s.meta["projects"]],
                    **{k: sum(s.meta[k] for s in snaps) for k in ("pages", "service_accounts", "keys", "policies_read")},
                    "edges": len(out.edges), "seconds": round(sum(s.meta["seconds"] for s in snaps), 3)}
        if GcpOptions.parse(config, PROVIDER).observations:
            seen = [result["observed"] for _, result in done]
            for item in seen:
                out.findings += findings_from_wire(item["findings"])
            # one project's keys are no other's: sorted together they are `to_edges` of all of them
            out.edges += sorted((e for item in seen for e in edges_from_wire(item["edges"])),
                                key=lambda e: (e.src, e.rel, e.dst))
            out.meta["observations"] = {"source": "gcp:policy_analyzer", "events": sum(i["events"] for i in seen)}
        return out

    # -- actions: each declared once; handlers check state first, so dry runs report it ----------

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        result = self.spec_for(action, node).handler(self, node, ctx)
        log.info("gcp.action", node=node.id, action=action, changed=result.changed, ok=result.ok,
                 dry_run=ctx.dry_run, incident=ctx.incident)
        return result

    @table.action("disable", types=KEYS, kinds=KEY_KINDS, undo=True,
                  permissions=["iam.serviceAccountKeys.get", "iam.serviceAccountKeys.disable"])
    def _disable_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.disable_key(self.client, self.keys, node, ctx, action="disable")

    @table.action("revoke", types=KEYS, kinds=KEY_KINDS, undo=True,
                  permissions=["iam.serviceAccountKeys.get", "iam.serviceAccountKeys.disable"])
    def _revoke_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.disable_key(self.client, self.keys, node, ctx, action="revoke")

    @table.action("rotate", types=KEYS, kinds=KEY_KINDS, undo=True,
                  permissions=["iam.serviceAccountKeys.create", "iam.serviceAccountKeys.get",
                               "iam.serviceAccountKeys.disable", "iam.serviceAccountKeys.delete",
                               "iam.serviceAccountKeys.list"])
    def _rotate_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.disable_key(self.client, self.keys, node, ctx, action="rotate")

    @table.action("finalize", types=KEYS, kinds=KEY_KINDS, reversible=False, permissions=["iam.serviceAccountKeys.delete"])
    def _finalize_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.delete_key(self.client, self.keys, node, ctx, action="finalize")

    @table.action("rollback", types=KEYS, kinds=KEY_KINDS, probe="none",
                  permissions=["iam.serviceAccountKeys.get", "iam.serviceAccountKeys.enable"])
    def _enable_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.enable_key(self.client, self.keys, node, ctx)

    @table.action("disable", types=ACCOUNTS, kinds=ACCOUNT_KINDS, undo=True,
                  permissions=["iam.serviceAccounts.get", "iam.serviceAccounts.disable"])
    def _disable_account(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.set_account_disabled(self.client, node, ctx, action="disable")

    @table.action("rollback", types=ACCOUNTS, kinds=ACCOUNT_KINDS, probe="none",
                  permissions=["iam.serviceAccounts.get", "iam.serviceAccounts.enable"])
    def _enable_account(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.set_account_disabled(self.client, node, ctx, action="rollback")

    # accepted so a finalize pass over every acted-on node succeeds, but never planned (no kinds)
    @table.action("finalize", types=ACCOUNTS, kinds=(), probe="none")
    def _keep_account(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.keep_account(node, ctx)

    # -- rotation --------------------------------------------------------------------------

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        if node.kind is not NodeKind.SERVICE_ACCOUNT_KEY:
            raise self._unsupported("create_replacement", node.id)
        rep = actions.create_key(self.client, self.keys, node, ctx)
        log.info("gcp.replacement.created", node=node.id, new=rep.new_id, incident=ctx.incident)
        return rep

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult:
        """Delete a replacement key that never reached its stores (idempotent)."""
        node = actions.replacement_node(new_id, ctx)
        result = actions.delete_key(self.client, self.keys, node, ctx, action="discard_replacement")
        log.info("gcp.replacement.discarded", new=new_id, changed=result.changed, incident=ctx.incident)
        return result

    def siblings(self, node: Node) -> set[str]:
        if node.kind is not NodeKind.SERVICE_ACCOUNT_KEY:
            return set()
        return actions.sibling_keys(self.client, self.keys, node)

    # -- probe -----------------------------------------------------------------------------

    def probe(self, node: Node) -> ProbeResult:
        """Live state only (see `actions.probe_key`); a failed read cannot decide (live=None)."""
        probe = PROBES.get(node.kind)
        if probe is None:
            return ProbeResult(node.id, None, f"no probe for kind {node.kind.value}")
        try:
            return probe(self.client, self.keys, node)
        except ConnectorError as err:
            return ProbeResult(node.id, None, f"probe failed: {err}")
