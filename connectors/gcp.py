"""GCP connector: service accounts, their user-managed keys and who can act as them.

Config (`revoke.yaml`):
    - type: gcp
      projects: [my-project]
      endpoint: 127.0.0.1:8085      # optional gRPC endpoint; plaintext only on loopback
      credentials_env: GCP_KEY_FILE # optional: env var naming a key file; else ADC
      timeout: 30                   # optional per-call deadline (s)
      retry_seconds: 10             # optional: budget for retrying reads (0: none)
      concurrency: 8                # optional: parallel per-account reads during collect

Actions: keys `disable`, `revoke` (disable now, delete at `finalize`), `rotate` (the executor
calls `create_replacement`, writes the stores, then `act("rotate")` disables the old key),
`rollback` (enable); service accounts `disable` / `rollback`. Mutating calls are not retried
here: a retryable `ConnectorError` goes back to the executor, which owns the retry policy.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import structlog
from pydantic import ConfigDict

from connectors import gcp_client as gc
from connectors.gcp_policy import account_id, email_from_key_name, key_id_from_name, key_node_id, merge
from connectors.gcp_policy import transform_project as _transform_project
from revoke.connector import (
    ActionContext,
    ActionResult,
    BaseConnector,
    Collected,
    CollectFinding,
    ConnectorError,
    ConnectorOptions,
    ProbeResult,
    Replacement,
    Secret,
)
from revoke.errors import RevokeError
from revoke.model import Node, NodeKind

log = structlog.get_logger()

KEY_ACTIONS = frozenset({"disable", "revoke", "rotate", "finalize", "rollback"})
ACCOUNT_ACTIONS = frozenset({"disable", "rollback"})


class PendingOptions(ConnectorOptions):
    model_config = ConfigDict(extra="allow")


class GcpConnector(BaseConnector):
    options_model = PendingOptions  # replaced by a declared model with the package split
    actions: ClassVar[dict[NodeKind, frozenset[str]]] = {
        NodeKind.SERVICE_ACCOUNT_KEY: KEY_ACTIONS,
        NodeKind.SERVICE_ACCOUNT: ACCOUNT_ACTIONS,
    }
    permissions: ClassVar[dict[str, list[str]]] = {
        "collect": ["iam.serviceAccounts.list", "iam.serviceAccountKeys.list",
                    "iam.serviceAccounts.getIamPolicy", "resourcemanager.projects.getIamPolicy"],
        "disable": ["iam.serviceAccountKeys.get", "iam.serviceAccountKeys.disable",
                    "iam.serviceAccounts.get", "iam.serviceAccounts.disable"],
        "revoke": ["iam.serviceAccountKeys.get", "iam.serviceAccountKeys.disable"],
        "rotate": ["iam.serviceAccountKeys.create", "iam.serviceAccountKeys.get",
                   "iam.serviceAccountKeys.disable", "iam.serviceAccountKeys.delete",
                   "iam.serviceAccountKeys.list"],
        "finalize": ["iam.serviceAccountKeys.delete"],
        "rollback": ["iam.serviceAccountKeys.get", "iam.serviceAccountKeys.enable",
                     "iam.serviceAccounts.get", "iam.serviceAccounts.enable"],
        "probe": ["iam.serviceAccountKeys.get", "iam.serviceAccounts.get"],
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        projects = config.get("projects")
        if not isinstance(projects, list) or not projects or not all(isinstance(p, str) and p for p in projects):
            raise ConnectorError("gcp", "config", "`projects` must be a non-empty list of project ids")
        self.projects: list[str] = list(projects)
        if config.get("endpoint"):
            gc.split_endpoint(str(config["endpoint"]))  # refuse a plaintext remote endpoint up front
        self.timeout = float(config.get("timeout", 30))
        self.retry = gc.read_retry(float(config.get("retry_seconds", 10)))
        self.concurrency = max(1, int(config.get("concurrency", 8)))
        gc.silence_sdk_logging()
        self._clients: gc.Clients | None = None
        self._lock = threading.Lock()
        self._key_names: dict[str, str] = {}  # key id -> full key resource name

    # -- plumbing --------------------------------------------------------------------------

    def _c(self) -> gc.Clients:
        with self._lock:
            if self._clients is None:
                self._clients = gc.make_clients(self.config)
            return self._clients

    def _call(self, call: str, resource: str, fn: Callable[..., Any], request: dict[str, Any], *,
              read: bool, node: str | None = None) -> Any:
        kwargs: dict[str, Any] = {"request": request, "timeout": self.timeout}
        kwargs["retry"] = self.retry if read else None
        try:
            return fn(**kwargs)
        except Exception as exc:  # every SDK/gRPC failure leaves as a ConnectorError
            if isinstance(exc, ConnectorError):
                raise
            raise gc.wrap(exc, call, resource, node) from exc

    def close(self) -> None:
        with self._lock:
            if self._clients is not None and self._clients.channel is not None:
                self._clients.channel.close()
            self._clients = None

    # -- collect ---------------------------------------------------------------------------

    def collect(self) -> Collected:
        started = time.perf_counter()
        parts: list[Collected] = []
        meta: dict[str, Any] = {"projects": list(self.projects), "pages": 0, "service_accounts": 0,
                                "keys": 0, "policies_read": 0}
        for project in self.projects:
            payload, findings, pages = self.get_project(project)
            part = _transform_project(project, payload)
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

    def get_project(self, project: str) -> tuple[dict[str, Any], list[CollectFinding], int]:
        """Fetch one project's accounts (all pages), keys, account policies and project policy."""
        c = self._c()
        accounts: list[dict[str, Any]] = []
        pages = 0
        pager = self._call("ListServiceAccounts", f"projects/{project}", c.iam.list_service_accounts,
                           {"name": f"projects/{project}", "page_size": 100}, read=True)
        try:
            for page in pager.pages:
                pages += 1
                accounts.extend(gc.account_dict(a) for a in page.accounts)
        except Exception as exc:  # later pages are fetched lazily by the pager
            raise gc.wrap(exc, "ListServiceAccounts", f"projects/{project}") from exc
        findings: list[CollectFinding] = []
        if not accounts:
            findings.append(CollectFinding("gcp.no_service_accounts", f"project {project} lists no service accounts",
                                    source=f"projects/{project}"))
        project_policy = self._policy_or_finding(
            "Projects.GetIamPolicy", f"projects/{project}", c.projects.get_iam_policy, findings)
        keys: dict[str, list[dict[str, Any]]] = {}
        policies: dict[str, dict[str, Any]] = {}

        def per_account(acct: dict[str, Any]) -> None:
            name = acct["name"]
            try:
                listed = self._call("ListServiceAccountKeys", name, c.iam.list_service_account_keys,
                                    {"name": name, "key_types": [1]}, read=True)  # USER_MANAGED only
            except ConnectorError as err:
                if gc.has_status(err, "NOT_FOUND"):
                    return  # deleted since it was listed
                if not gc.has_status(err, "PERMISSION_DENIED"):
                    raise
                findings.append(CollectFinding("gcp.keys_unreadable", f"keys of {acct['email']} not listed: {err}",
                                        node=account_id(acct["email"]), severity="error", source=name))
                listed = None
            if listed is not None:
                key_list = [gc.key_dict(k) for k in listed.keys]
                with self._lock:
                    for k in key_list:
                        self._key_names[key_id_from_name(k["name"])] = k["name"]
                keys[acct["email"]] = key_list
            policy = self._policy_or_finding("GetIamPolicy", name, c.iam.get_iam_policy, findings)
            if policy is not None:
                policies[acct["email"]] = policy

        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(accounts)))) as pool:
            for fut in [pool.submit(per_account, a) for a in accounts]:
                fut.result()
        payload = {"accounts": accounts, "keys": keys, "account_policies": policies,
                   "project_policy": project_policy}
        return payload, findings, pages

    def _policy_or_finding(self, call: str, resource: str, fn: Callable[..., Any],
                           findings: list[CollectFinding]) -> dict[str, Any] | None:
        """A policy we may not read is reported, not fatal: the rest of the graph still stands,
        but the finding says edges through it may be missing."""
        try:
            policy = self._call(call, resource, fn,
                                {"resource": resource, "options": {"requested_policy_version": 3}}, read=True)
        except ConnectorError as err:
            if not gc.has_status(err, "PERMISSION_DENIED", "NOT_FOUND"):
                raise
            findings.append(CollectFinding("gcp.policy_unreadable", f"{call} on {resource}: {err}",
                                    severity="error", source=resource))
            return None
        return gc.policy_dict(policy)

    # -- locating keys ---------------------------------------------------------------------

    def _key_name(self, node: Node) -> str:
        name = self._locate_key(node)
        if name is None:
            raise ConnectorError("gcp", "locate_key", f"key is in none of the projects {self.projects}",
                                 node=node.id)
        return name

    def _locate_key(self, node: Node) -> str | None:
        """The key's resource name from the cache, the node's attrs or its owner's email; else a
        search of the configured projects; None if it exists nowhere."""
        key_id = node.id.removeprefix("gcp:service_account_key:")
        with self._lock:
            cached = self._key_names.get(key_id)
        if cached:
            return cached
        resource = str(node.attrs.get("resource") or "")
        if resource.endswith(f"/keys/{key_id}"):
            return resource
        email = node.owner or node.attrs.get("service_account") or node.attrs.get("client_email")
        if email:
            return f"{gc.account_resource(str(email))}/keys/{key_id}"
        return self._find_key(key_id)

    def _find_key(self, key_id: str) -> str | None:
        """Search the configured projects (a node known only by id, e.g. after a restart)."""
        for project in self.projects:
            payload, _, _ = self.get_project(project)
            for keys in payload["keys"].values():
                for k in keys:
                    if key_id_from_name(k["name"]) == key_id:
                        return str(k["name"])
        return None

    def _get_key(self, name: str, node: str | None, read: bool = True) -> Any | None:
        """The key's public metadata, or None when it no longer exists."""
        try:
            return self._call("GetServiceAccountKey", name, self._c().iam.get_service_account_key,
                              {"name": name}, read=read, node=node)
        except ConnectorError as err:
            if gc.has_status(err, "NOT_FOUND"):
                return None
            raise

    def _get_account(self, resource: str, node: str | None, read: bool = True) -> Any | None:
        try:
            return self._call("GetServiceAccount", resource, self._c().iam.get_service_account,
                              {"name": resource}, read=read, node=node)
        except ConnectorError as err:
            if gc.has_status(err, "NOT_FOUND"):
                return None
            raise

    # -- actions ---------------------------------------------------------------------------

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        from connectors.gcp_actions import account_action, key_action

        if node.kind is NodeKind.SERVICE_ACCOUNT_KEY and action in KEY_ACTIONS:
            result = key_action(self, action, node, ctx)
        elif node.kind is NodeKind.SERVICE_ACCOUNT and action in ACCOUNT_ACTIONS | {"finalize"}:
            result = account_action(self, action, node, ctx)
        else:
            raise self._unsupported(action, node.id)
        log.info("gcp.action", node=node.id, action=action, changed=result.changed, ok=result.ok,
                 dry_run=ctx.dry_run, incident=ctx.incident)
        return result

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        """A new user-managed key for the same account. Its key-file JSON goes into `Secret` only."""
        if node.kind is not NodeKind.SERVICE_ACCOUNT_KEY:
            raise self._unsupported("create_replacement", node.id)
        if ctx.dry_run:
            raise ConnectorError("gcp", "create_replacement", "dry run: no key created", node=node.id)
        account = self._key_name(node).rsplit("/keys/", 1)[0]
        created = self._call("CreateServiceAccountKey", account, self._c().iam.create_service_account_key,
                             {"name": account}, read=False, node=node.id)
        new_key_id = key_id_from_name(created.name)
        key_json = bytes(created.private_key_data).decode()
        try:
            file_key_id = json.loads(key_json).get("private_key_id", "")
        except ValueError:
            file_key_id = ""
        if file_key_id and file_key_id != new_key_id:
            raise ConnectorError("gcp", "CreateServiceAccountKey",
                                 f"key file id does not match key name ({new_key_id})", node=node.id)
        new_name = str(created.name)
        del created  # the response holds the private key: drop it as soon as it is copied
        with self._lock:
            self._key_names[new_key_id] = new_name
        new_id = key_node_id(new_key_id)
        log.info("gcp.replacement.created", node=node.id, new=new_id, incident=ctx.incident)
        return Replacement(
            old_id=node.id, new_id=new_id, kind=NodeKind.SERVICE_ACCOUNT_KEY,
            material=Secret({"key_json": key_json, "private_key_id": new_key_id}),
            attrs={"service_account": email_from_key_name(new_name), "resource": new_name},
        )

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult:
        """Delete a replacement key that never reached its stores (idempotent)."""
        from connectors.gcp_actions import delete_key

        result = delete_key(self, self._replacement_node(new_id, ctx), ctx, action="discard_replacement")
        log.info("gcp.replacement.discarded", new=new_id, changed=result.changed, incident=ctx.incident)
        return result

    def _replacement_node(self, new_id: str, ctx: ActionContext) -> Node:
        """A replacement is rarely in the graph; the key it replaced names the same account."""
        def lookup(node_id: str) -> Node | None:
            try:
                return ctx.get_node(node_id)
            except (KeyError, LookupError, RevokeError):
                return None

        known = lookup(new_id)
        if known is not None:
            return known
        for old_id, nid in ctx.replacements.items():
            old = lookup(old_id) if nid == new_id else None
            email = (old.owner or old.attrs.get("service_account")) if old is not None else None
            if email:
                return Node(new_id, NodeKind.SERVICE_ACCOUNT_KEY, "gcp", owner=str(email))
        return Node(new_id, NodeKind.SERVICE_ACCOUNT_KEY, "gcp")

    def siblings(self, node: Node) -> set[str]:
        """The other user-managed keys of the same service account."""
        if node.kind is not NodeKind.SERVICE_ACCOUNT_KEY:
            return set()
        account = self._key_name(node).rsplit("/keys/", 1)[0]
        listed = self._call("ListServiceAccountKeys", account, self._c().iam.list_service_account_keys,
                            {"name": account, "key_types": [1]}, read=True, node=node.id)
        names = [k.name for k in listed.keys]
        with self._lock:
            for name in names:
                self._key_names[key_id_from_name(name)] = name
        return {key_node_id(key_id_from_name(n)) for n in names} - {node.id}

    # -- probe -----------------------------------------------------------------------------

    def probe(self, node: Node) -> ProbeResult:
        """Live state only. A key is dead if it is gone, disabled or expired, or if its account is
        gone or disabled (a disabled account still lists its keys as enabled: both are read)."""
        from connectors.gcp_actions import probe_account, probe_key

        try:
            if node.kind is NodeKind.SERVICE_ACCOUNT_KEY:
                return probe_key(self, node)
            if node.kind is NodeKind.SERVICE_ACCOUNT:
                return probe_account(self, node)
        except ConnectorError as err:
            return ProbeResult(node.id, None, f"probe failed: {err}")
        return ProbeResult(node.id, None, f"no probe for kind {node.kind.value}")


def account_node_resource(node: Node) -> str:
    email = node.id.removeprefix("gcp:service_account:")
    return str(node.attrs.get("resource") or gc.account_resource(email))


__all__ = ["GcpConnector", "account_id", "account_node_resource"]
