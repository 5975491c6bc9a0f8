"""PyPI API tokens: read offline, acted on by hand.

PyPI has no API to list or revoke API tokens (only its web UI; tokens leaked to public GitHub
repositories are revoked by secret scanning). A `pypi-` token is a macaroon whose caveats say
what it may do, and `pypitoken` reads them without the server's key: the projects it may upload
to and its validity window. So a token found anywhere becomes:

- `pypi:api_token:<sha256 of the value>` (token): `attrs.identifier` is the macaroon's identifier
  (what PyPI's token list shows), `expires` from a date caveat, `attrs.manual_hint` the exact
  page and what to look for;
- `can_publish` edges to `pypi:package:<normalised name>` (package) for each project it may
  upload to; a token without a project caveat is account-wide: its edge goes to
  `pypi:user:<identifier>` (user), the account that owns it, whose projects revoke cannot list.

Every project reached gets a finding recommending Trusted Publishing (OIDC from the CI
workflow: no long-lived token left to steal).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from revoke.connector import CollectFinding
from revoke.model import Edge, Node, NodeKind, Relation, fingerprint

PROVIDER = "pypi"
TOKEN_RE = re.compile(r"^pypi-[A-Za-z0-9_-]{50,}$")
TOKENS_PAGE = "https://pypi.org/manage/account/#api-tokens"


def normalise(project: str) -> str:
    """PEP 503 name normalisation: `AI_Gateway` and `ai-gateway` are one project."""
    return re.sub(r"[-_.]+", "-", project).lower()


def token_node_id(value: str) -> str:
    return f"{PROVIDER}:api_token:{fingerprint(value).removeprefix('sha256:')}"


def package_id(project: str) -> str:
    return f"{PROVIDER}:package:{normalise(project)}"


def token_graph(value: str) -> tuple[list[Node], list[Edge], list[CollectFinding]]:
    """Nodes, `can_publish` edges and findings for one token value (nothing of the value is kept
    but its fingerprint). A value that is not a readable PyPI token gives a finding only."""
    import pypitoken

    value = value.strip()
    nid = token_node_id(value)
    try:
        token = pypitoken.Token.load(value)
        caveats = token.restrictions
    except pypitoken.PyPITokenException as exc:
        return [], [], [CollectFinding("pypi.token_unreadable", f"a pypi- value could not be decoded: "
                                       f"{type(exc).__name__}", node=nid, source=PROVIDER)]
    projects: list[str] = []
    expires: datetime | None = None
    for r in caveats:
        if isinstance(r, pypitoken.ProjectNamesRestriction | pypitoken.LegacyProjectNamesRestriction):
            projects += [normalise(p) for p in r.project_names]
        elif isinstance(r, pypitoken.DateRestriction | pypitoken.LegacyDateRestriction):
            expires = datetime.fromtimestamp(r.not_after, UTC)
    identifier = str(token.identifier)
    scope = ", ".join(projects) if projects else "every project of the account"
    hint = (f"PyPI offers no API to revoke tokens: sign in as the owner of {scope}, open {TOKENS_PAGE}, find "
            f"the token whose identifier is {identifier} (its scope: {scope}) and remove it; then attest. "
            "Check the releases of each project uploaded since the exposure, and move publishing to "
            "Trusted Publishing so no long-lived token remains.")
    node = Node(nid, NodeKind.TOKEN, PROVIDER, name=f"PyPI token {identifier[:8]}", expires=expires,
                fingerprint=fingerprint(value),
                attrs={"identifier": identifier, "domain": str(token.domain), "projects": projects,
                       "scope": "project" if projects else "account", "manual_hint": hint})
    nodes, edges, findings = [node], [], []
    for project in projects:
        nodes.append(Node(package_id(project), NodeKind.PACKAGE, PROVIDER, name=project))
        edges.append(Edge(nid, package_id(project), Relation.CAN_PUBLISH))
        findings.append(CollectFinding("pypi.trusted_publishing", f"{project}: publishes with an API token; "
                                       "switch to Trusted Publishing (https://docs.pypi.org/trusted-publishers/)",
                                       node=package_id(project), severity="info", source=PROVIDER))
    if not projects:
        owner = f"{PROVIDER}:user:{identifier}"
        nodes.append(Node(owner, NodeKind.USER, PROVIDER, name=f"owner of PyPI token {identifier[:8]}"))
        edges.append(Edge(nid, owner, Relation.CAN_PUBLISH, attrs={"scope": "account"}))
        findings.append(CollectFinding("pypi.account_wide_token", f"PyPI token {identifier} can publish every "
                                       "project of its account", node=nid, severity="error", source=PROVIDER))
    return nodes, edges, findings


def links(ref: str, attrs: dict[str, Any], fp: str = "") -> tuple[Node | None, list[Edge]]:
    """For a store connector that recognised a PyPI token in a value (`recognize` puts the decoded
    caveats in `Found.attrs`): the token's node, with its manual task, and its `can_publish` edges."""
    if not ref.startswith(f"{PROVIDER}:api_token:") or "identifier" not in attrs:
        return None, []
    node = Node(ref, NodeKind.TOKEN, PROVIDER, name=f"PyPI token {str(attrs['identifier'])[:8]}", fingerprint=fp,
                attrs=dict(attrs))
    projects = list(attrs.get("projects") or [])
    dsts = [package_id(p) for p in projects] or [f"{PROVIDER}:user:{attrs['identifier']}"]
    return node, [Edge(ref, dst, Relation.CAN_PUBLISH) for dst in dsts]
