"""Get: one project's raw state as the plain-dict payload `transform.transform_project` reads,
and the index of key resource names that actions use to find a key known only by its id.

Proto messages are read attribute by attribute into dicts here and go no further: the
payload holds public metadata only (`private_key_data` is never copied).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from connectors.gcp.transform import PROVIDER, account_id, account_resource, key_id_from_name, key_node_id
from revoke.connector import CollectFinding, ConnectorError
from revoke.model import Node

if TYPE_CHECKING:
    from connectors.gcp.client import GcpClient

Payload = dict[str, Any]
USER_MANAGED = 1  # ListServiceAccountKeysRequest.KeyType.USER_MANAGED


def get_project(client: GcpClient, project: str, concurrency: int) -> tuple[Payload, list[CollectFinding], int]:
    """Fetch one project's accounts (all pages), keys, account policies and project policy."""
    accounts: list[dict[str, Any]] = []
    pages = client.pages("ListServiceAccounts", f"projects/{project}",
                         {"name": f"projects/{project}", "page_size": 100})
    for page in pages:
        accounts.extend(account_dict(a) for a in page.accounts)
    findings: list[CollectFinding] = []
    if not accounts:
        findings.append(CollectFinding("gcp.no_service_accounts", f"project {project} lists no service accounts",
                                       source=f"projects/{project}"))
    project_policy = policy_or_finding(client, "Projects.GetIamPolicy", f"projects/{project}", findings)
    keys: dict[str, list[dict[str, Any]]] = {}
    policies: dict[str, dict[str, Any]] = {}

    def per_account(acct: dict[str, Any]) -> None:
        name = acct["name"]
        try:
            listed = client.call("ListServiceAccountKeys", name, {"name": name, "key_types": [USER_MANAGED]},
                                 read=True)
        except ConnectorError as err:
            if err.code == "NOT_FOUND":
                return  # deleted since it was listed
            if err.code != "PERMISSION_DENIED":
                raise
            findings.append(CollectFinding("gcp.keys_unreadable", f"keys of {acct['email']} not listed: {err}",
                                           node=account_id(acct["email"]), severity="error", source=name))
            listed = None
        if listed is not None:
            keys[acct["email"]] = [key_dict(k) for k in listed.keys]
        policy = policy_or_finding(client, "GetIamPolicy", name, findings)
        if policy is not None:
            policies[acct["email"]] = policy

    with ThreadPoolExecutor(max_workers=min(concurrency, max(1, len(accounts)))) as pool:
        for fut in [pool.submit(per_account, a) for a in accounts]:
            fut.result()
    payload = {"accounts": accounts, "keys": keys, "account_policies": policies,
               "project_policy": project_policy}
    return payload, findings, len(pages)


def policy_or_finding(client: GcpClient, call: str, resource: str,
                      findings: list[CollectFinding]) -> dict[str, Any] | None:
    """A policy we may not read is reported, not fatal: the rest of the graph still stands,
    but the finding says edges through it may be missing."""
    try:
        policy = client.call(call, resource, {"resource": resource, "options": {"requested_policy_version": 3}},
                             read=True)
    except ConnectorError as err:
        if err.code not in ("PERMISSION_DENIED", "NOT_FOUND"):
            raise
        findings.append(CollectFinding("gcp.policy_unreadable", f"{call} on {resource}: {err}",
                                       severity="error", source=resource))
        return None
    return policy_dict(policy)


def policy_dict(policy: Any) -> dict[str, Any]:
    return {
        "etag": bytes(policy.etag).hex(),
        "bindings": [
            {"role": b.role, "members": list(b.members),
             "condition": {"title": b.condition.title, "expression": b.condition.expression}
             if b.HasField("condition") else None}
            for b in policy.bindings
        ],
    }


def account_dict(msg: Any) -> dict[str, Any]:
    return {"name": msg.name, "email": msg.email, "unique_id": msg.unique_id,
            "display_name": msg.display_name, "disabled": bool(msg.disabled)}


def key_dict(msg: Any) -> dict[str, Any]:
    """Public key metadata only: `private_key_data` is never copied."""
    return {"name": msg.name, "key_algorithm": msg.key_algorithm.name, "key_origin": msg.key_origin.name,
            "valid_after": msg.valid_after_time, "valid_before": msg.valid_before_time,
            "disabled": bool(msg.disabled)}


class KeyNames:
    """Key id -> full resource name (`projects/P/serviceAccounts/E/keys/K`).

    Filled by collect, by `siblings` and by new replacements; a key known only by its id (a
    resumed run) is found from its node's attrs or owner, else by a search of the projects.
    """

    def __init__(self, client: GcpClient, projects: list[str], concurrency: int) -> None:
        self.client = client
        self.projects = projects
        self.concurrency = concurrency
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def remember(self, names: list[str]) -> None:
        with self._lock:
            for name in names:
                self._names[key_id_from_name(name)] = name

    def remember_payload(self, payload: Payload) -> None:
        self.remember([k["name"] for keys in payload["keys"].values() for k in keys])

    def name(self, node: Node) -> str:
        name = self.locate(node)
        if name is None:
            raise ConnectorError(PROVIDER, "locate_key", f"key is in none of the projects {self.projects}",
                                 node=node.id)
        return name

    def locate(self, node: Node) -> str | None:
        """The key's resource name from the cache, the node's attrs or its owner's email; else a
        search of the configured projects; None if it exists nowhere."""
        key_id = node.id.removeprefix(key_node_id(""))
        with self._lock:
            cached = self._names.get(key_id)
        if cached:
            return cached
        resource = str(node.attrs.get("resource") or "")
        if resource.endswith(f"/keys/{key_id}"):
            return resource
        email = node.owner or node.attrs.get("service_account") or node.attrs.get("client_email")
        if email:
            return f"{account_resource(str(email))}/keys/{key_id}"
        return self._search(key_id)

    def _search(self, key_id: str) -> str | None:
        """Search the configured projects (a node known only by id, e.g. after a restart)."""
        for project in self.projects:
            payload, _, _ = get_project(self.client, project, self.concurrency)
            self.remember_payload(payload)
            for keys in payload["keys"].values():
                for k in keys:
                    if key_id_from_name(k["name"]) == key_id:
                        return str(k["name"])
        return None
