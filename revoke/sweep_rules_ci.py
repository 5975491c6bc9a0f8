"""Built-in hygiene rules for CI and source hosting: unpinned third-party actions in jobs that can
read secrets, deploy keys with write access, CI secrets not rotated, broad fine-grained PATs.

They read the attributes the GitHub connector records (a job's `uses` and `secrets`, a deploy
key's `read_only`, a secret's `updated_at`, a PAT grant's `writes` and `repositories`), so an
inventory file can describe the same facts for any other CI system.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from revoke.model import Relation, parse_time
from revoke.sweep import Hit, Severity, SweepContext, rule
from revoke.sweep_rules import when


@rule("ci-action-unpinned", Severity.HIGH,
      "workflow jobs that can read secrets and run a third-party action from a tag or branch, not a commit SHA")
def ci_action_unpinned(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for job in ctx.of_kind("workload"):
        secrets = list(job.attrs.get("secrets") or [])
        uses = [u for u in job.attrs.get("uses") or [] if isinstance(u, dict)]
        loose = [u for u in uses if u.get("third_party") and not u.get("pinned")]
        if not secrets or not loose:
            continue
        names = ", ".join(str(u.get("uses")) for u in loose)
        # whoever can move the tag runs code with the job's secrets: each secret's holdings are at stake
        yield Hit(job.id, f"runs {names} (not pinned to a commit SHA) and can read {len(secrets)} secret(s); "
                          "pin each to a full commit SHA",
                  {"uses": [u.get("uses") for u in loose], "secrets": secrets,
                   "workflow": job.attrs.get("workflow"), "line": job.attrs.get("line")}, targets=[])


@rule("deploy-key-write", Severity.MEDIUM, "deploy keys with write access (a leaked one pushes code, and so runs "
      "workflows with the repository's secrets)")
def deploy_key_write(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind("ssh_key"):
        if not ctx.is_live(node) or node.attrs.get("read_only", True) is not False:
            continue
        yield Hit(node.id, f"deploy key of {node.attrs.get('repo', '?')} has write access; make it read-only "
                           "unless it must push", {**when(node, "repo", "read_only")})


@rule("ci-secret-not-rotated", Severity.MEDIUM, "CI secrets whose value was last written more than `days` days ago",
      days=180)
def ci_secret_not_rotated(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind("secret"):
        updated = parse_time(node.attrs.get("updated_at")) if node.attrs.get("updated_at") else None
        if updated is None or not ctx.is_live(node):
            continue
        age = ctx.days_since(updated)
        if age > p["days"]:
            yield Hit(node.id, f"secret last written {age} days ago (limit {p['days']})",
                      {"updated_at": updated.isoformat(), "age_days": age, "scope": node.attrs.get("scope")},
                      # rotating what the secret holds writes a new value into it
                      targets=[e.dst for e in ctx.outgoing(node.id, Relation.STORES)])


@rule("pat-broad-write", Severity.MEDIUM, "fine-grained PATs with write access to at least `repos` repositories",
      repos=5)
def pat_broad_write(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind("token"):
        writes = node.attrs.get("writes") or []
        repos = node.attrs.get("repositories") or []
        if not ctx.is_live(node) or not node.attrs.get("fine_grained") or not writes or len(repos) < p["repos"]:
            continue
        yield Hit(node.id, f"PAT of {node.owner or '?'} can write ({', '.join(writes)}) to {len(repos)} "
                           "repositories", {**when(node), "writes": writes, "repositories": len(repos)})
