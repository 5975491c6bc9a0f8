"""Pure transforms for the GitHub connector: API payloads (plain dicts) -> nodes, edges, findings,
and the id formulas every module of the package uses.

Payload of one owner (an org or a user), built by `collect`:
    {"owner": "acme",
     "repos": [{"full_name", "private"}],
     "deploy_keys": {full_name: [{"id", "title", "read_only", "created_at"}]},
     "secrets": {full_name: [{"name", "created_at", "updated_at"}]},
     "env_secrets": {full_name: {env: [{"name", "created_at", "updated_at"}]}},
     "org_secrets": [{"name", "created_at", "updated_at", "visibility", "selected": [full_name]}],
     "workflows": {full_name: {path: text}},
     "variables": {full_name: {name: value}}, "env_variables": {full_name: {env: {name: value}}},
     "org_variables": {name: value},        # revoke's own REVOKE_HOLDS_* records only
     "grants": [{"id", "token_id", "token_name", "owner", "repositories": [full_name],
                 "permissions": {"repository": {...}, "organization": {...}}, "expires_at", "last_used_at"}],
     "installations": [{"id", "app_slug", "app_id", "repository_selection", "permissions": {name: level}}]}

Ids: `github:repo:<owner>/<name>`, `github:deploy_key:<owner>/<name>/<id>`,
`github:secret:<owner>/<name>/<SECRET>` (repo), `github:secret:<owner>/<name>/env:<env>/<SECRET>`
(environment), `github:secret:org:<org>/<SECRET>` (organisation), `github:workflow_job:<owner>/<name>/
<workflow path>#<job>`, `github:pat:<org>/<grant id>` (a fine-grained PAT's org grant),
`github:user:<login>`, `github:token:<sha256 hex of the value>` (a token known by value only),
`github:installation:<org>/<id>` (a GitHub App installed on an org).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from connectors.github.workflows import Job, WorkflowError, parse_workflow
from revoke.connector import Collected, CollectFinding
from revoke.model import Edge, Node, NodeKind, Relation

PROVIDER = "github"
REPO_TYPE, DEPLOY_KEY_TYPE, SECRET_TYPE, JOB_TYPE, PAT_TYPE, TOKEN_TYPE, INSTALLATION_TYPE = (
    "repo", "deploy_key", "secret", "workflow_job", "pat", "token", "installation")
# permissions of a fine-grained PAT that let its holder change what a repository runs or holds
WRITE_PERMISSIONS = ("contents", "workflows", "secrets", "administration", "actions")


def id_part(text: str, *, keep: str = "") -> str:
    """A name from a workflow file or an environment, safe inside a node id: whitespace, control
    characters, `%`, `#` and `/` (unless kept) are percent-encoded, so an id stays one token and
    splits back into its parts."""
    return quote(text, safe="-._~@+=,:!$&'()*;[]" + keep)


def repo_id(full_name: str) -> str:
    return f"{PROVIDER}:{REPO_TYPE}:{full_name}"


def deploy_key_id(full_name: str, key_id: int | str) -> str:
    return f"{PROVIDER}:{DEPLOY_KEY_TYPE}:{full_name}/{key_id}"


def repo_secret_id(full_name: str, name: str) -> str:
    return f"{PROVIDER}:{SECRET_TYPE}:{full_name}/{name}"


def env_secret_id(full_name: str, env: str, name: str) -> str:
    return f"{PROVIDER}:{SECRET_TYPE}:{full_name}/env:{id_part(env)}/{name}"


def org_secret_id(org: str, name: str) -> str:
    return f"{PROVIDER}:{SECRET_TYPE}:org:{org}/{name}"


def job_id(full_name: str, path: str, job: str) -> str:
    return f"{PROVIDER}:{JOB_TYPE}:{full_name}/{id_part(path, keep='/')}#{id_part(job)}"


def pat_id(org: str, grant_id: int | str) -> str:
    return f"{PROVIDER}:{PAT_TYPE}:{org}/{grant_id}"


def token_id(fingerprint: str) -> str:
    return f"{PROVIDER}:{TOKEN_TYPE}:{fingerprint.removeprefix('sha256:')}"


def secret_scope(node_id: str) -> dict[str, str]:
    """Where an Actions secret lives, from its id: {"org"} or {"repo"} (+ {"env"}), and {"name"}."""
    native = node_id.split(":", 2)[2]
    if native.startswith("org:"):
        org, _, name = native[4:].partition("/")
        return {"org": org, "name": name}
    owner, repo, rest = native.split("/", 2)
    if rest.startswith("env:"):
        env, _, name = rest[4:].partition("/")
        return {"repo": f"{owner}/{repo}", "env": unquote(env), "name": name}
    return {"repo": f"{owner}/{repo}", "name": rest}


def time_of(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


# A secret's value can never be read back, so when revoke writes one it records, in a plain Actions
# variable of the same scope, which credential it wrote and the secret's `updated_at` right after the
# write (ids and times only). The record is believed only while the secret's `updated_at` still
# equals it: anyone who rewrites the secret afterwards makes it stale.
HOLDS_PREFIX = "REVOKE_HOLDS_"


def holds_variable(secret_name: str) -> str:
    return HOLDS_PREFIX + secret_name


def parse_holds(value: str, secret_updated_at: datetime | None) -> str | None:
    """The credential a record names, if the secret was not rewritten since the record."""
    try:
        record = json.loads(value)
        recorded = time_of(record["secret_updated_at"])
    except (ValueError, KeyError, TypeError):
        return None
    if recorded is None or secret_updated_at is None or recorded != secret_updated_at:
        return None
    return str(record.get("credential") or "") or None



def _secret_node(sid: str, s: dict[str, Any], scope: str, **attrs: Any) -> Node:
    updated = time_of(s.get("updated_at"))
    return Node(sid, NodeKind.SECRET, PROVIDER, name=f"{scope}:{s['name']}", created=time_of(s.get("created_at")),
                attrs={"scope": scope, "secret_name": s["name"],
                       "updated_at": updated.isoformat() if updated else None, **attrs})


def _holds_edge(g: _Graph, sid: str, s: dict[str, Any], variables: dict[str, str]) -> None:
    held = parse_holds(variables.get(holds_variable(s["name"]), ""), time_of(s.get("updated_at")))
    if held:
        g.edge(sid, Relation.STORES, held, recorded_by="revoke")


class _Graph:
    def __init__(self) -> None:
        self.out = Collected()
        self.ids: set[str] = set()
        self.edges: dict[tuple[str, str, str], Edge] = {}

    def node(self, node: Node) -> None:
        if node.id not in self.ids:
            self.ids.add(node.id)
            self.out.nodes.append(node)

    def edge(self, src: str, rel: Relation, dst: str, **attrs: Any) -> None:
        key = (src, rel.value, dst)
        if key in self.edges:
            via = self.edges[key].attrs.setdefault("via", [])
            for v in attrs.get("via", []):
                if v not in via:
                    via.append(v)
            return
        self.edges[key] = Edge(src, dst, rel, attrs=attrs)

    def done(self) -> Collected:
        self.out.edges = [self.edges[k] for k in sorted(self.edges)]
        return self.out


def visible_org_secrets(org_secrets: list[dict[str, Any]], full_name: str, private: bool) -> list[dict[str, Any]]:
    out = []
    for s in org_secrets:
        vis = s.get("visibility", "all")
        if vis == "all" or (vis == "private" and private) or (vis == "selected" and full_name in s.get("selected", [])):
            out.append(s)
    return out


def transform_owner(payload: dict[str, Any]) -> Collected:
    g = _Graph()
    owner = payload["owner"]
    org_secrets = payload.get("org_secrets") or []
    for s in org_secrets:
        g.node(_secret_node(org_secret_id(owner, s["name"]), s, f"org:{owner}", visibility=s.get("visibility", "")))
        _holds_edge(g, org_secret_id(owner, s["name"]), s, payload.get("org_variables") or {})
    for repo in payload.get("repos", []):
        full = repo["full_name"]
        rid = repo_id(full)
        g.node(Node(rid, NodeKind.REPO, PROVIDER, name=full, attrs={"private": bool(repo.get("private", True))}))
        # push access to a repository runs any workflow with any of its secrets
        readable: dict[str, str] = {}  # secret name -> node id, environment secrets per job below
        for s in visible_org_secrets(org_secrets, full, bool(repo.get("private", True))):
            readable[s["name"]] = org_secret_id(owner, s["name"])
            g.edge(rid, Relation.CAN_READ, org_secret_id(owner, s["name"]), via=[rid])
        for s in payload.get("secrets", {}).get(full, []):
            sid = repo_secret_id(full, s["name"])
            g.node(_secret_node(sid, s, full))
            _holds_edge(g, sid, s, payload.get("variables", {}).get(full, {}))
            readable[s["name"]] = sid
            g.edge(rid, Relation.CAN_READ, sid, via=[rid])
        envs = payload.get("env_secrets", {}).get(full, {})
        for env, secrets in sorted(envs.items()):
            for s in secrets:
                sid = env_secret_id(full, env, s["name"])
                g.node(_secret_node(sid, s, f"{full}/env:{env}", environment=env))
                _holds_edge(g, sid, s, payload.get("env_variables", {}).get(full, {}).get(env, {}))
                g.edge(rid, Relation.CAN_READ, sid, via=[rid])
        for k in payload.get("deploy_keys", {}).get(full, []):
            kid = deploy_key_id(full, k["id"])
            g.node(Node(kid, NodeKind.SSH_KEY, PROVIDER, name=str(k.get("title", "")),
                        created=time_of(k.get("created_at")),
                        attrs={"repo": full, "key_id": k["id"], "read_only": bool(k["read_only"]),
                               "public_key": str(k.get("key", ""))}))
            # a write key pushes (so runs workflows with the repo's secrets); a read-only one clones
            g.edge(kid, Relation.CAN_READ if k["read_only"] else Relation.AUTHENTICATES_AS, rid)
        for path, text in sorted(payload.get("workflows", {}).get(full, {}).items()):
            try:
                jobs = parse_workflow(text)
            except WorkflowError as err:
                g.out.findings.append(CollectFinding("github.workflow_unreadable", f"{full}/{path}: {err}",
                                                     node=rid, source=f"{full}/{path}"))
                continue
            for job in jobs:
                _job(g, full, owner, path, job, readable, envs)
    for grant in payload.get("grants", []):
        _grant(g, owner, grant)
    for inst in payload.get("installations", []):
        _installation(g, owner, inst, [r["full_name"] for r in payload.get("repos", [])])
    return g.done()


def _installation(g: _Graph, org: str, inst: dict[str, Any], repos: list[str]) -> None:
    """An App installed on the org: whoever holds the App's private key mints installation tokens
    with its permissions (`can_mint`-like, so the node stands for the App's reach)."""
    iid = f"{PROVIDER}:{INSTALLATION_TYPE}:{org}/{inst['id']}"
    perms = inst.get("permissions") or {}
    writes = sorted(p for p in WRITE_PERMISSIONS if perms.get(p) in ("write", "admin"))
    g.node(Node(iid, NodeKind.WORKLOAD, PROVIDER, name=f"{inst.get('app_slug', '?')} on {org}",
                attrs={"org": org, "app_slug": inst.get("app_slug"), "app_id": inst.get("app_id"),
                       "permissions": perms, "writes": writes,
                       "repository_selection": inst.get("repository_selection")}))
    if inst.get("repository_selection") != "all":
        g.out.findings.append(CollectFinding(
            "github.installation_repositories_unlisted", f"{inst.get('app_slug')} on {org} reaches selected "
            "repositories, which only the App itself can list: its edges are missing", node=iid, source=f"orgs/{org}"))
        return
    for full in repos:
        g.edge(iid, Relation.AUTHENTICATES_AS if writes else Relation.CAN_READ, repo_id(full))


def _job(g: _Graph, full: str, owner: str, path: str, job: Job, readable: dict[str, str],
         envs: dict[str, list[dict[str, Any]]]) -> None:
    jid = job_id(full, path, job.name)
    env_names = {s["name"] for s in envs.get(job.environment, [])} if job.environment else set()
    names = set(readable) | env_names if job.inherits_all else job.secrets
    targets = sorted(env_secret_id(full, job.environment, n) if n in env_names else readable[n]
                     for n in names if n in env_names or n in readable)
    uses = [{"uses": u.uses, "repository": u.repository, "ref": u.ref, "pinned": u.pinned,
             "third_party": u.third_party(owner)} for u in job.uses]
    g.node(Node(jid, NodeKind.WORKLOAD, PROVIDER, name=f"{full} {path}#{job.name}",
                attrs={"repo": full, "workflow": path, "job": job.name, "line": job.line,
                       "environment": job.environment, "secrets": targets, "uses": uses}))
    g.edge(repo_id(full), Relation.CAN_ASSUME, jid)
    for sid in targets:
        g.edge(jid, Relation.CAN_READ, sid, via=[jid])
    for u in job.uses:
        if not u.third_party(owner):
            continue
        action = repo_id(u.repository)
        g.node(Node(action, NodeKind.REPO, PROVIDER, name=u.repository, attrs={"external": True}))
        if u.pinned:
            continue  # a commit SHA cannot be moved: the action's owner cannot change what runs
        # whoever can move this tag or branch decides what runs inside the job, with its secrets
        g.edge(action, Relation.CAN_ASSUME, jid, ref=u.ref, uses=u.uses)
        for sid in targets:
            g.edge(action, Relation.CAN_READ, sid, via=[jid], ref=u.ref, uses=u.uses)


def _grant(g: _Graph, org: str, grant: dict[str, Any]) -> None:
    pid = pat_id(org, grant["id"])
    repo_perms = (grant.get("permissions") or {}).get("repository") or {}
    writes = sorted(p for p in WRITE_PERMISSIONS if repo_perms.get(p) in ("write", "admin"))
    expires = time_of(grant.get("expires_at"))
    g.node(Node(pid, NodeKind.TOKEN, PROVIDER, name=str(grant.get("token_name", "")), owner=str(grant["owner"]),
                expires=expires, last_used=time_of(grant.get("last_used_at")),
                attrs={"org": org, "grant_id": grant["id"], "token_id": grant.get("token_id"),
                       "permissions": grant.get("permissions") or {}, "writes": writes,
                       "repositories": list(grant.get("repositories", [])), "fine_grained": True}))
    user = f"{PROVIDER}:user:{grant['owner']}"
    g.node(Node(user, NodeKind.USER, PROVIDER, name=str(grant["owner"])))
    g.edge(user, Relation.STORES, pid)  # the PAT belongs to (and sits with) its owner
    for full in grant.get("repositories", []):
        g.edge(pid, Relation.AUTHENTICATES_AS if writes else Relation.CAN_READ, repo_id(full))


def leaked_token_node(fingerprint: str, prefix: str, login: str | None, live: bool | None) -> Node:
    """A token known by value only (handed in through `leaked_tokens_env`), probed with `GET /user`."""
    status = "active" if live else ("revoked" if live is False else "unknown")
    return Node(token_id(fingerprint), NodeKind.TOKEN, PROVIDER, name=f"{prefix}…", fingerprint=fingerprint,
                status=status, owner=login or "", attrs={"token_prefix": prefix, "by_value": True})
