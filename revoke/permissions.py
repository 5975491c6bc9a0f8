"""Least privilege of revoke itself: what a playbook needs from each provider.

Derived from the connectors' declared `permissions` class vars (action -> provider permissions)
and their `actions` tables (kind -> verbs), the same way the planner picks verbs: a playbook's
action for a kind falls back along `plan.FALLBACKS` to what the owning connector supports. On top
of the chosen verbs, everything the incident loop calls around them is added: `collect` and
`probe` (collect, verify, resume), the rotation helpers (`create_replacement`, `siblings`,
`discard_replacement`, the retire verb), store writes and read-backs for connectors that own
stores, and `finalize` where the connector supports it. Only connector classes are imported, never
a provider SDK or client.

Where a connector declares no entry for a verb the loop uses, the verb is reported as a gap (and
a declared verb that covers the same calls is used, when there is one), so the printed policy is
never silently short.

The escrow (revoke.yaml `escrow:`) is written and read back by the connector it names, with that
connector's credentials: when the playbook can make replacements, its declared `escrow`
permissions are added for the configured location (a Vault KV v2 path: `create,update,read` on
`<mount>/data/<path>/*`; a Secrets Manager prefix: the secret calls on
`arn:aws:secretsmanager:<region>:*:secret:<prefix>*`) and shown in a section of their own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from revoke.config import EscrowConfig
from revoke.connector import connector_class, known_connectors, writes_stores
from revoke.model import CREDENTIAL_KINDS, NodeKind
from revoke.playbook import Playbook

# parts of a declared verb: the executor calls them as separate steps, connectors declare them
# under the verb they belong to (no gap is reported for these)
PART_OF: dict[str, tuple[str, ...]] = {
    "create_ca": ("reissue",),
    "retire_ca": ("revoke",),
    "create_replacement": ("rotate", "reissue"),
    "siblings": ("rotate", "reissue"),
}
# interface methods with calls of their own: used if declared, else covered by the union of these
# verbs' declarations, and reported as a gap
COVERED_BY: dict[str, tuple[str, ...]] = {
    "discard_replacement": ("revoke", "rotate", "reissue"),
    "write_store": ("rotate",),
    "store_holds": ("write_store", "collect"),
    "probe": ("collect",),
}
# placeholders in Vault declarations, filled from `--vault-mount kv=secret` style options
VAULT_MOUNTS = {"kv": "secret", "pki": "pki", "approle": "approle"}
# predefined GCP roles and the subset of their permissions that revoke uses (broader than needed)
GCP_PREDEFINED: dict[str, frozenset[str]] = {
    "roles/iam.serviceAccountKeyAdmin": frozenset({
        "iam.serviceAccountKeys.create", "iam.serviceAccountKeys.delete", "iam.serviceAccountKeys.disable",
        "iam.serviceAccountKeys.enable", "iam.serviceAccountKeys.get", "iam.serviceAccountKeys.list",
        "iam.serviceAccounts.get", "iam.serviceAccounts.list"}),
    "roles/iam.serviceAccountAdmin": frozenset({
        "iam.serviceAccounts.disable", "iam.serviceAccounts.enable", "iam.serviceAccounts.get",
        "iam.serviceAccounts.getIamPolicy", "iam.serviceAccounts.list"}),
    "roles/iam.securityReviewer": frozenset({
        "resourcemanager.projects.getIamPolicy", "iam.serviceAccounts.getIamPolicy", "iam.serviceAccounts.list",
        "iam.serviceAccountKeys.list"}),
}


@dataclass
class ConnectorNeeds:
    type: str
    verbs: dict[str, str] = field(default_factory=dict)  # verb -> why
    permissions: dict[str, list[str]] = field(default_factory=dict)  # verb -> declared permissions used
    gaps: list[str] = field(default_factory=list)

    def all_permissions(self) -> list[str]:
        return sorted({p for perms in self.permissions.values() for p in perms})


def _chosen_verb(cls: type, kind: NodeKind, action: str) -> str | None:
    from revoke.plan import FALLBACKS

    supported = cls.actions.get(kind, frozenset())  # type: ignore[attr-defined]
    return next((v for v in FALLBACKS.get(action, (action,)) if v in supported), None)


def connector_needs(pb: Playbook, ctype: str, *, rollback: bool = False) -> ConnectorNeeds:
    cls = connector_class(ctype)
    need = ConnectorNeeds(ctype)
    need.verbs["collect"] = "collect, and verify's re-collection"
    for kind, supported in cls.actions.items():
        spec = pb.action_for(kind)
        if spec.action in ("skip", "manual", "none"):
            continue
        if kind not in CREDENTIAL_KINDS:
            if spec.action in supported:
                need.verbs[spec.action] = f"holders: {kind.value}"
            continue
        verb = _chosen_verb(cls, kind, spec.action)
        if verb is None:
            continue
        need.verbs.setdefault("probe", "verify, and a resumed action's check")
        why = f"{kind.value}: {spec.action}" + ("" if verb == spec.action else f" (as {verb})")
        if kind is NodeKind.CA and verb in ("reissue", "rotate"):
            need.verbs["create_ca"], need.verbs["retire_ca"] = why, why
            continue
        need.verbs[verb] = why
        if verb in ("rotate", "reissue"):
            retire = pb.model.rotate_retire if verb == "rotate" else "revoke"
            need.verbs[retire] = f"{kind.value}: retire the old credential after {verb}"
            for helper in ("create_replacement", "siblings", "discard_replacement"):
                need.verbs[helper] = f"{kind.value}: {verb} (crash recovery included)"
        if "untrust" in supported and kind is NodeKind.CA:
            # a retired CA leaves the trust stores this connector reads (and verify reads them back)
            need.verbs["untrust"] = f"{kind.value}: remove it from trust stores"
            need.verbs["confirm"] = "verify: read the trust stores back"
        if "finalize" in supported:
            need.verbs["finalize"] = f"{kind.value}: `run --finalize` after a clean verify"
        if rollback and "rollback" in supported:
            need.verbs["rollback"] = f"{kind.value}: `revoke rollback`"
    if writes_stores(cls) and _rotating(pb):
        # any provider's replacement may land in a store this connector owns
        need.verbs["write_store"] = "write replacements into stores this connector owns"
        need.verbs["store_holds"] = "read stores back (resume, verify)"
    declared: dict[str, list[str]] = dict(cls.permissions)
    for verb in sorted(need.verbs):
        if verb in declared:
            need.permissions[verb] = list(declared[verb])
            continue
        part = [f for f in PART_OF.get(verb, ()) if f in declared]
        if part:
            need.permissions[verb] = list(declared[part[0]])
            continue
        cover = [f for f in COVERED_BY.get(verb, ()) if f in declared]
        if cover:
            need.permissions[verb] = sorted({p for f in cover for p in declared[f]})
            need.gaps.append(f"{ctype}: no `permissions` entry for {verb!r}; assumed covered by "
                             + " + ".join(repr(f) for f in cover))
        elif ctype != "inventory":  # reading its own file needs no provider permission
            need.gaps.append(f"{ctype}: no `permissions` entry for {verb!r} ({need.verbs[verb]}); nothing printed for it")
    return need


def _rotating(pb: Playbook) -> list[str]:
    return [k for k, v in pb.model.actions.items()
            if (v if isinstance(v, str) else v.action) in ("rotate", "reissue")]


# -- rendering per provider ---------------------------------------------------------------------
def aws_policy(need: ConnectorNeeds) -> dict[str, Any]:
    """Read-only calls and changing calls in separate statements, so they can be granted apart."""
    perms = need.all_permissions()
    # what collect and probe declare is read-only by contract (GenerateCredentialReport included)
    reading = set(need.permissions.get("collect", [])) | set(need.permissions.get("probe", []))
    read = [p for p in perms if p in reading or p.split(":", 1)[-1].startswith(("Get", "List", "Describe"))]
    act = [p for p in perms if p not in read]
    statements = [{"Sid": "RevokeCollectVerify", "Effect": "Allow", "Action": read, "Resource": "*"}]
    if act:
        statements.append({"Sid": "RevokeActions", "Effect": "Allow", "Action": act, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


_VAULT_DECL = re.compile(r"^([a-z]+(?:,[a-z]+)*)\s+(.+)$")


def vault_policy(need: ConnectorNeeds, mounts: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """(HCL policy, declarations that are not `caps path[, path]` and so are left as comments)."""
    fill = {**VAULT_MOUNTS, **(mounts or {})}
    paths: dict[str, set[str]] = {}
    loose: list[str] = []
    for decl in need.all_permissions():
        m = _VAULT_DECL.match(decl.strip())
        if not m:
            loose.append(decl)
            continue
        caps = set(m.group(1).split(","))
        for raw in m.group(2).split(","):
            path = re.sub(r"<(\w+)>", lambda g: fill.get(g.group(1), g.group(0)), raw.strip())
            if path:
                paths.setdefault(path, set()).update(caps)
    order = ["create", "read", "update", "delete", "list", "sudo"]
    lines = ["# revoke: least-privilege policy (generated by `revoke permissions`)"]
    lines += [f"# not expressible as a path rule: {d}" for d in loose]
    for path in sorted(paths):
        ordered = sorted(paths[path], key=lambda c: order.index(c) if c in order else len(order))
        lines.append(f'path "{path}" {{\n  capabilities = [{", ".join(json.dumps(c) for c in ordered)}]\n}}')
    return "\n".join(lines) + "\n", loose


def gcp_roles(need: ConnectorNeeds, role_id: str) -> dict[str, Any]:
    perms = need.all_permissions()
    left, cover = set(perms), []
    for role, covers in sorted(GCP_PREDEFINED.items(), key=lambda kv: -len(kv[1] & set(perms))):
        if left & covers:
            cover.append(role)
            left -= covers
    return {"custom_role": {"title": role_id, "stage": "GA", "includedPermissions": perms,
                            "description": "revoke: least privilege for this playbook"},
            "predefined_roles": cover, "not_in_predefined_table": sorted(left)}


def kubernetes_cluster_role(need: ConnectorNeeds, name: str) -> dict[str, Any]:
    """One ClusterRole from declarations of the form `<verb> <resource>[.<API group>]`."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for perm in need.all_permissions():
        verb, _, target = perm.partition(" ")
        resource, _, group = target.partition(".")
        verbs.setdefault((group, resource), set()).add(verb)
    rules = [{"apiGroups": [group], "resources": [resource], "verbs": sorted(v)}
             for (group, resource), v in sorted(verbs.items())]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
            "rules": rules}


def escrow_needs(pb: Playbook, escrow: EscrowConfig, region: str | None = None,
                 vault_mounts: dict[str, str] | None = None) -> dict[str, Any] | None:
    """What the escrow's connector needs to write and read the configured escrow, from its
    declaration (`permissions["escrow"]`), with the location filled in; None when the playbook
    makes no replacement (nothing is escrowed)."""
    if not _rotating(pb):
        return None
    declared = list(connector_class(escrow.type).permissions.get("escrow", []))
    out: dict[str, Any] = {"type": escrow.type, "connector": escrow.connector, "location": escrow.location,
                           "where": escrow.where("*"), "why": "replacements no store may receive, written "
                           "and read back (run, resume, verify)"}
    if escrow.type == "vault":
        location = escrow.location.strip("/")
        kv = ((vault_mounts or {}).get("kv") or "").strip("/")
        if kv and location.startswith(kv + "/"):  # a KV mount whose path has slashes
            mount, rest = kv, location[len(kv) + 1:]
        else:
            mount, _, rest = location.partition("/")
        data_path = f"{mount}/data/{rest}/*" if rest else f"{mount}/data/*"
        out["permissions"] = [d.replace("<escrow path>/*", data_path) for d in declared]
    elif escrow.type == "aws":
        out["permissions"] = declared
        out["resource"] = f"arn:aws:secretsmanager:{region or '*'}:*:secret:{escrow.location}*"
    else:
        out["permissions"] = declared
    return out


def permissions_report(pb: Playbook, types: list[str] | None = None, *, rollback: bool = False,
                       vault_mounts: dict[str, str] | None = None, escrow: EscrowConfig | None = None,
                       aws_region: str | None = None) -> dict[str, Any]:
    known = known_connectors()
    wanted = [t for t in (types or known) if t in known]
    needs = {t: connector_needs(pb, t, rollback=rollback) for t in wanted}
    out: dict[str, Any] = {"playbook": pb.name, "connectors": {}, "gaps": []}
    for t, need in needs.items():
        out["connectors"][t] = {"verbs": need.verbs, "permissions": need.permissions}
        out["gaps"] += need.gaps
    esc = escrow_needs(pb, escrow, aws_region, vault_mounts) if escrow is not None else None
    if esc is not None:
        out["escrow"] = esc
        if esc["type"] == "vault" and "vault" in needs:
            needs["vault"].permissions["escrow"] = list(esc["permissions"])
    if "aws" in needs:
        out["aws"] = {"iam_policy": aws_policy(needs["aws"])}
        if esc is not None and esc["type"] == "aws":
            out["aws"]["iam_policy"]["Statement"].append(
                {"Sid": "RevokeEscrow", "Effect": "Allow", "Action": sorted(esc["permissions"]),
                 "Resource": esc["resource"]})
    if "vault" in needs:
        hcl, loose = vault_policy(needs["vault"], vault_mounts)
        out["vault"] = {"policy_hcl": hcl, "unparsed": loose}
    if "gcp" in needs:
        out["gcp"] = gcp_roles(needs["gcp"], f"revoke_{re.sub(r'[^A-Za-z0-9_]', '_', pb.name)}")
    if "kubernetes" in needs:
        role = f"revoke-{re.sub(r'[^a-z0-9-]', '-', pb.name.lower())}"
        out["kubernetes"] = {"cluster_role": kubernetes_cluster_role(needs["kubernetes"], role)}
    for t in ("x509", "inventory"):
        if t in needs:
            out[t] = {"needs": needs[t].all_permissions() or ["read access to the configured files"]}
    return out


def render_text(report: dict[str, Any]) -> str:
    parts = [f"# Permissions revoke needs to run playbook {report['playbook']!r}", ""]
    if "aws" in report:
        parts += ["## AWS: IAM policy", json.dumps(report["aws"]["iam_policy"], indent=2), ""]
    if "vault" in report:
        parts += ["## Vault: policy (HCL)", report["vault"]["policy_hcl"]]
    if "gcp" in report:
        g = report["gcp"]
        parts += ["## GCP: custom role (exact)", json.dumps(g["custom_role"], indent=2),
                  "coarser predefined roles covering it: " + (", ".join(g["predefined_roles"]) or "none"), ""]
    if "kubernetes" in report:
        parts += ["## Kubernetes: ClusterRole (JSON, accepted by kubectl apply -f)",
                  json.dumps(report["kubernetes"]["cluster_role"], indent=2), ""]
    for t in ("x509", "inventory"):
        if t in report:
            parts += [f"## {t}", *[f"- {n}" for n in report[t]["needs"]], ""]
    for t, need in sorted(report["connectors"].items()):  # connectors without a policy format of their own
        if t not in ("aws", "vault", "gcp", "x509", "inventory"):
            perms = sorted({p for ps in need["permissions"].values() for p in ps})
            parts += [f"## {t}", *[f"- {p}" for p in perms], ""]
    esc = report.get("escrow")
    if esc:
        parts += [f"## Escrow: {esc['where']} (the {esc['connector']} connector's credentials)",
                  f"for {esc['why']}; included in the {esc['type']} policy above",
                  *[f"- {p}" + (f" on {esc['resource']}" if esc.get("resource") else "") for p in esc["permissions"]], ""]
    return "\n".join(parts).rstrip() + "\n"
