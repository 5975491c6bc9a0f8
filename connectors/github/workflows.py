"""Pure parsing of GitHub Actions workflow files: per job, the secrets it can read and the actions
it runs, with whether each action is pinned to a full commit SHA.

What a job "can read": every secret its definition names (`secrets.X` or `secrets['X']` anywhere
in the job, in the workflow's top-level `env`, or passed on with `secrets: inherit`, which hands a
called workflow all of them). The runner process holds every secret of the job in memory, so any
step of the job (a third-party action included) can read them all, not only the one it is given:
that is how a poisoned action exfiltrates a whole job's secrets.

An action reference is `owner/repo[/path]@ref`; `./local` and `docker://` references are not
repositories. `actions/*` and `github/*` are GitHub's own and counted as first-party.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

SECRET_REF_RE = re.compile(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)|secrets\[\s*['\"]([^'\"]+)['\"]\s*\]")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
FIRST_PARTY_OWNERS = frozenset({"actions", "github"})
MAX_WORKFLOW_CHARS = 1 << 20  # the contents API serves files up to 1 MB


@dataclass(frozen=True)
class ActionRef:
    uses: str  # as written
    owner: str
    repo: str
    ref: str
    pinned: bool  # pinned to a full commit SHA

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.repo}"

    def third_party(self, own_owner: str) -> bool:
        return self.owner.lower() != own_owner.lower() and self.owner.lower() not in FIRST_PARTY_OWNERS


@dataclass
class Job:
    name: str
    secrets: set[str] = field(default_factory=set)
    inherits_all: bool = False  # `secrets: inherit`
    environment: str = ""
    uses: list[ActionRef] = field(default_factory=list)
    line: int = 0


class WorkflowError(ValueError):
    pass


def parse_uses(text: str) -> ActionRef | None:
    text = text.strip()
    if not text or text.startswith(("./", "docker://")) or "@" not in text:
        return None
    target, _, ref = text.rpartition("@")
    parts = target.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    return ActionRef(text, parts[0], parts[1], ref, bool(SHA_RE.match(ref)))


def _strings(value: Any) -> list[str]:
    """Every string in a parsed document, each container visited once: YAML aliases are shared
    objects, so a "billion laughs" file costs its own size here, not its expansion."""
    out: list[str] = []
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict | list) and id(item) not in seen:
            seen.add(id(item))
            stack.extend([*item.keys(), *item.values()] if isinstance(item, dict) else item)
    return out


def _refs(value: Any) -> set[str]:
    return {a or b for text in _strings(value) for a, b in SECRET_REF_RE.findall(text)} - {""}


def _uses_in(job: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if isinstance(job.get("uses"), str):
        found.append(job["uses"])  # a reusable workflow called as the whole job
    for step in job.get("steps") or []:
        if isinstance(step, dict) and isinstance(step.get("uses"), str):
            found.append(step["uses"])
    return found


def parse_workflow(text: str) -> list[Job]:
    """The jobs of one workflow file; a file that is not a workflow raises WorkflowError."""
    if len(text) > MAX_WORKFLOW_CHARS:
        raise WorkflowError(f"larger than {MAX_WORKFLOW_CHARS} characters")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkflowError(f"not YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # nesting deeper than the parser's stack: no workflow looks like that
        raise WorkflowError("nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict):
        raise WorkflowError("no 'jobs' mapping")
    top = _refs(doc.get("env") or {})
    lines = {m.group(1): i + 1 for i, line in enumerate(text.splitlines())
             for m in [re.match(r"^\s{2}([A-Za-z_][A-Za-z0-9_-]*):\s*$", line)] if m}
    jobs: list[Job] = []
    for name, body in doc["jobs"].items():
        if not isinstance(body, dict):
            continue
        env = body.get("environment")
        env_name = env.get("name", "") if isinstance(env, dict) else str(env or "")
        job = Job(str(name), secrets=_refs(body) | top, inherits_all=body.get("secrets") == "inherit",
                  environment=env_name, line=lines.get(str(name), 0))
        job.uses = [ref for ref in (parse_uses(u) for u in _uses_in(body)) if ref is not None]
        jobs.append(job)
    return jobs
