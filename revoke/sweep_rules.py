"""Built-in hygiene rules: keys, Vault tokens, storage. Certificates and blast radius are in
`revoke.sweep_rules_pki`. Each rule skips dead credentials (revoked, disabled, expired) and
stub nodes (known only by reference, so without attributes to judge) unless it says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from revoke.model import CREDENTIAL_KINDS, Node, NodeKind, Relation
from revoke.sweep import Hit, Severity, SweepContext, rule

KEY_KINDS = ["access_key", "service_account_key"]
# certificates and CAs are public material: copies of them are not leaks
STORED_KINDS = ["access_key", "service_account_key", "token", "api_key", "password", "secret", "private_key", "ssh_key"]


def when(node: Node, *names: str) -> dict[str, Any]:
    """The node's timestamps (and chosen attrs) as evidence."""
    out: dict[str, Any] = {}
    for name in ("created", "expires", "last_used"):
        value = getattr(node, name)
        if value is not None:
            out[name] = value.isoformat()
    out["status"] = node.status
    for name in names:
        if name in node.attrs:
            out[name] = node.attrs[name]
    return out


def span(seconds: float) -> str:
    """A duration for a reason line: hours under two days, else days."""
    hours = max(0, round(seconds / 3600))
    return f"{hours} hours" if hours < 48 else f"{round(hours / 24)} days"


def principal_of(ctx: SweepContext, node: Node) -> str:
    for e in ctx.outgoing(node.id, Relation.AUTHENTICATES_AS):
        return e.dst
    return node.owner


# ---------------------------------------------------------------------------------------------------
# Keys


@rule("key-unused", Severity.MEDIUM, "access / service-account keys not used for `days` days",
      days=90, kinds=KEY_KINDS)
def key_unused(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind(*p["kinds"]):
        if not ctx.is_live(node) or node.last_used is None:
            continue
        idle = ctx.days_since(node.last_used)
        if idle >= p["days"]:
            yield Hit(node.id, f"{node.kind.value} last used {idle} days ago (limit {p['days']})",
                      {**when(node), "idle_days": idle, "principal": principal_of(ctx, node)})


@rule("key-never-used", Severity.MEDIUM,
      "keys older than `grace_days` that were never used, where the provider reports use (`providers`)",
      grace_days=7, kinds=KEY_KINDS, providers=["aws"])
def key_never_used(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    # Only providers whose collector reports last use: elsewhere (GCP keys without Policy
    # Intelligence) a missing last_used means "unknown", not "never".
    for node in ctx.of_kind(*p["kinds"]):
        if not ctx.is_live(node) or node.last_used is not None or node.provider not in p["providers"]:
            continue
        if node.created is None or ctx.days_since(node.created) < p["grace_days"]:
            continue
        age = ctx.days_since(node.created)
        yield Hit(node.id, f"{node.kind.value} created {age} days ago and never used",
                  {**when(node), "age_days": age, "principal": principal_of(ctx, node)})


@rule("key-rotation-overdue", Severity.MEDIUM, "keys older than the rotation period `max_age_days`",
      max_age_days=90, kinds=[*KEY_KINDS, "ssh_key", "api_key"])
def key_rotation_overdue(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind(*p["kinds"]):
        if not ctx.is_live(node) or node.created is None:
            continue
        age = ctx.days_since(node.created)
        if age >= p["max_age_days"]:
            yield Hit(node.id, f"{node.kind.value} is {age} days old (rotation period {p['max_age_days']} days)",
                      {**when(node), "age_days": age, "principal": principal_of(ctx, node)})


@rule("multiple-active-keys", Severity.LOW, "principals with more than `max_active` active keys",
      max_active=1, kinds=KEY_KINDS)
def multiple_active_keys(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    by_principal: dict[str, list[Node]] = {}
    for node in ctx.of_kind(*p["kinds"]):
        if ctx.is_live(node):
            for e in ctx.outgoing(node.id, Relation.AUTHENTICATES_AS):
                by_principal.setdefault(e.dst, []).append(node)
    for principal, keys in sorted(by_principal.items()):
        if len(keys) > p["max_active"]:
            keys.sort(key=lambda n: n.id)
            # no targets: rotating either key keeps two; a person decides which one to delete
            yield Hit(principal, f"{len(keys)} active keys (limit {p['max_active']})",
                      {"keys": [{"id": k.id, **when(k)} for k in keys]}, targets=[])


# ---------------------------------------------------------------------------------------------------
# Vault tokens


def _vault_tokens(ctx: SweepContext) -> Iterator[Node]:
    for node in ctx.of_kind(NodeKind.TOKEN):
        if node.provider == "vault" and ctx.is_live(node):
            yield node


def _token_hit(node: Node, reason: str, **extra: Any) -> Hit:
    evidence = {**when(node, "policies", "orphan", "ttl", "path", "type"), **extra}
    # the collector's own token: flag it, but never hand it to a rotation that would cut the collector off
    if node.attrs.get("collector"):
        return Hit(node.id, reason + " (the collector's own token)", {**evidence, "collector": True}, targets=[])
    return Hit(node.id, reason, evidence)


@rule("vault-token-no-expiry", Severity.HIGH, "Vault tokens / secret-ids with no TTL and no expiry time")
def vault_token_no_expiry(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in _vault_tokens(ctx):
        if node.expires is None and not node.attrs.get("ttl"):
            yield _token_hit(node, "Vault token never expires (ttl 0, no expire_time)")


@rule("vault-token-orphan", Severity.LOW,
      "orphan Vault tokens (they survive revocation of their creator), created under `paths` ([] = any path)",
      paths=["auth/token/"])
def vault_token_orphan(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    # login methods such as AppRole issue orphans by design; explicit token creation is the smell
    for node in _vault_tokens(ctx):
        if not node.attrs.get("orphan"):
            continue
        path = str(node.attrs.get("path") or "")
        if p["paths"] and not any(path.startswith(prefix) for prefix in p["paths"]):
            continue
        yield _token_hit(node, f"orphan Vault token (created via {path or 'unknown path'})")


@rule("vault-token-root", Severity.CRITICAL, "Vault tokens carrying the root policy")
def vault_token_root(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in _vault_tokens(ctx):
        if "root" in (node.attrs.get("policies") or []):
            yield _token_hit(node, "Vault token has the root policy")


# ---------------------------------------------------------------------------------------------------
# Storage: copies and holders


@rule("secret-duplicated", Severity.MEDIUM,
      "the same secret material (fingerprint) under more than one node: every copy is a leak path",
      kinds=STORED_KINDS)
def secret_duplicated(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    alias = _alias_components(ctx)
    groups: dict[str, list[Node]] = {}
    for node in ctx.of_kind(*p["kinds"]):
        if node.fingerprint and ctx.is_live(node):
            groups.setdefault(node.fingerprint, []).append(node)
    for fp, members in groups.items():
        # one real credential seen by two providers (alias edges) is one copy, not two
        if len({alias.get(n.id, n.id) for n in members}) < 2:
            continue
        members.sort(key=lambda n: n.id)
        ids = [n.id for n in members]
        holders = sorted({e.src for n in members for e in ctx.incoming(n.id, Relation.STORES)})
        yield Hit(ids[0], f"same secret material found in {len(ids)} places",
                  {"fingerprint": fp, "copies": ids, "holders": holders}, targets=ids)


def _alias_components(ctx: SweepContext) -> dict[str, str]:
    """node id -> representative of its alias group (union-find over `derives {alias: true}`)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for e in ctx.edges:
        if e.rel == Relation.DERIVES and e.attrs.get("alias"):
            a, b = find(e.src), find(e.dst)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in list(parent)}


@rule("credential-multiple-holders", Severity.LOW, "credentials stored by more than `max_holders` holders",
      max_holders=1, kinds=STORED_KINDS)
def credential_multiple_holders(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind(*p["kinds"]):
        if not ctx.is_live(node):
            continue
        holders = sorted({e.src for e in ctx.incoming(node.id, Relation.STORES)})
        if len(holders) > p["max_holders"]:
            yield Hit(node.id, f"stored by {len(holders)} holders (limit {p['max_holders']})",
                      {**when(node), "holders": holders})


@rule("holder-long-lived-credential", Severity.MEDIUM,
      "hosts, repos and workloads storing credentials that never expire",
      holder_kinds=["host", "repo", "workload"],
      kinds=["access_key", "service_account_key", "token", "api_key", "password", "ssh_key"])
def holder_long_lived(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    wanted = {NodeKind(k) for k in p["kinds"]} & CREDENTIAL_KINDS
    for holder in ctx.of_kind(*p["holder_kinds"]):
        for e in ctx.outgoing(holder.id, Relation.STORES):
            cred = ctx.nodes.get(e.dst)
            if cred is None or cred.kind not in wanted or not ctx.is_live(cred) or cred.expires is not None:
                continue
            yield Hit(cred.id, f"{holder.id} stores a credential that never expires ({cred.kind.value})",
                      {**when(cred), "holder": holder.id, "holder_kind": holder.kind.value}, path=[holder.id, cred.id])


@rule("unused-by-observed-data", Severity.MEDIUM,
      "keys and tokens with no observed use (audit logs, CloudTrail, last-used data) for `days` days, "
      "where their provider reports observed use", days=90, kinds=[*KEY_KINDS, "token"])
def unused_by_observed_data(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    from revoke.observed import ObservedEdges, coverage_start, last_observed

    obs = ObservedEdges.of(ctx.edges)
    covered = coverage_start(obs, ctx.nodes)  # provider -> its earliest observed event
    last = last_observed(obs)
    for node in ctx.of_kind(*p["kinds"]):
        if not ctx.is_live(node) or node.provider not in covered or node.attrs.get("collector"):
            continue  # revoke's own collector token reads everything: its reads are never use
        seen = last.get(node.id)
        since = seen or max(covered[node.provider], node.created or covered[node.provider])
        idle = ctx.days_since(since)
        if idle >= p["days"]:
            what = f"last observed use {idle} days ago" if seen else f"no observed use in {idle} days of observed data"
            yield Hit(node.id, f"{node.kind.value}: {what} (limit {p['days']})",
                      {**when(node), "idle_days": idle, "last_observed": seen.isoformat() if seen else None,
                       "observed_since": covered[node.provider].isoformat()})
