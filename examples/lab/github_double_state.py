"""In-memory state of the GitHub REST double (`github_double.py`), and the JSON shapes it sends.

Every shape below follows GitHub's REST description (the tests parse each response the double
sends with githubkit's own models, so a drifting field fails them). Secrets are kept the way
GitHub keeps them: as the sealed box the client sent, encrypted to the repository's (or the
organisation's, or the environment's) Curve25519 public key; the lab keeps the private half so
tests can open the box and prove a rotation wrote the right value.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nacl.public import PrivateKey, SealedBox

_ids = itertools.count(1000)
EPOCH = "2024-01-01T00:00:00Z"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SealKey:
    """An Actions public key (`GET .../actions/secrets/public-key`) and its private half."""

    private: PrivateKey = field(default_factory=PrivateKey.generate)

    @property
    def key_id(self) -> str:
        return hashlib.sha256(bytes(self.private.public_key)).hexdigest()[:20]

    @property
    def public_b64(self) -> str:
        return base64.b64encode(bytes(self.private.public_key)).decode()

    def open(self, encrypted_value_b64: str) -> str:
        return SealedBox(self.private).decrypt(base64.b64decode(encrypted_value_b64)).decode()


@dataclass
class StoredSecret:
    name: str
    created_at: str
    updated_at: str
    encrypted_value: str = ""
    key_id: str = ""
    visibility: str = "private"  # org secrets: all / private / selected
    selected: list[str] = field(default_factory=list)  # org secrets with visibility "selected": repo full names


@dataclass
class Variable:
    name: str
    value: str
    created_at: str
    updated_at: str
    visibility: str = "private"


@dataclass
class DeployKey:
    id: int
    key: str
    title: str
    read_only: bool
    created_at: str
    added_by: str = "lab-admin"


@dataclass
class Repo:
    owner: str
    name: str
    id: int = field(default_factory=lambda: next(_ids))
    private: bool = True
    seal: SealKey = field(default_factory=SealKey)
    secrets: dict[str, StoredSecret] = field(default_factory=dict)
    variables: dict[str, Variable] = field(default_factory=dict)
    env_variables: dict[str, dict[str, Variable]] = field(default_factory=dict)
    environments: dict[str, dict[str, StoredSecret]] = field(default_factory=dict)
    env_seals: dict[str, SealKey] = field(default_factory=dict)
    deploy_keys: dict[int, DeployKey] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Token:
    """A token the double accepts: `live` turns False on `/credentials/revoke`."""

    login: str
    live: bool = True
    kind: str = "classic"
    org: str = ""  # an installation token's organisation


@dataclass
class PatGrant:
    """A fine-grained PAT granted access to an organisation."""

    id: int
    token_id: int
    token_name: str
    owner: str
    repositories: list[str]
    permissions: dict[str, dict[str, str]]
    expires_at: str | None
    granted_at: str = EPOCH
    last_used_at: str | None = None
    token: str = ""  # the value, so the double can refuse it in the org once revoked


@dataclass
class Org:
    login: str
    id: int = field(default_factory=lambda: next(_ids))
    seal: SealKey = field(default_factory=SealKey)
    secrets: dict[str, StoredSecret] = field(default_factory=dict)
    variables: dict[str, Variable] = field(default_factory=dict)
    grants: dict[int, PatGrant] = field(default_factory=dict)
    installations: list[dict[str, Any]] = field(default_factory=list)  # {id, app_id, app_slug, permissions, ...}


class State:
    """Everything the double holds; one lock, since the HTTP server is threaded."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.orgs: dict[str, Org] = {}
        self.repos: dict[str, Repo] = {}
        self.tokens: dict[str, Token] = {}
        self.apps: dict[int, str] = {}  # GitHub App id -> the public half (PEM) its JWTs are checked with
        self.revoked_batches: list[int] = []  # sizes of each /credentials/revoke call
        self.secondary_limited = 0  # answer this many next requests with a 403 secondary limit
        self.rate_limit = 5000
        self.used = 0
        self.page_size_cap = 100


# -- JSON shapes (GitHub's REST description) ----------------------------------------------------------

def _user(base: str, login: str, uid: int) -> dict[str, Any]:
    api = f"{base}/users/{login}"
    return {
        "login": login, "id": uid, "node_id": f"U_{uid}", "avatar_url": f"{base}/avatars/{login}",
        "gravatar_id": "", "url": api, "html_url": f"{base}/{login}",
        "followers_url": f"{api}/followers", "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}", "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions", "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events", "type": "User", "site_admin": False,
    }


def private_user(base: str, login: str) -> dict[str, Any]:
    """`GET /user` (PrivateUser)."""
    uid = int(hashlib.sha256(login.encode()).hexdigest()[:6], 16)
    return {**_user(base, login, uid), "name": login, "company": None, "blog": "", "location": None,
            "email": None, "hireable": None, "bio": None, "public_repos": 0, "public_gists": 0,
            "followers": 0, "following": 0, "created_at": EPOCH, "updated_at": EPOCH, "private_gists": 0,
            "total_private_repos": 0, "owned_private_repos": 0, "disk_usage": 0, "collaborators": 0,
            "two_factor_authentication": True}


_REPO_URLS = ("archive_url", "assignees_url", "blobs_url", "branches_url", "collaborators_url", "comments_url",
              "commits_url", "compare_url", "contents_url", "contributors_url", "deployments_url",
              "downloads_url", "events_url", "forks_url", "git_commits_url", "git_refs_url", "git_tags_url",
              "issue_comment_url", "issue_events_url", "issues_url", "keys_url", "labels_url", "languages_url",
              "merges_url", "milestones_url", "notifications_url", "pulls_url", "releases_url",
              "stargazers_url", "statuses_url", "subscribers_url", "subscription_url", "tags_url", "teams_url",
              "trees_url", "hooks_url")


def repo_json(base: str, repo: Repo, *, full: bool = False) -> dict[str, Any]:
    """MinimalRepository (lists) or FullRepository (`GET /repos/{owner}/{repo}`)."""
    api = f"{base}/repos/{repo.full_name}"
    out: dict[str, Any] = {
        "id": repo.id, "node_id": f"R_{repo.id}", "name": repo.name, "full_name": repo.full_name,
        "owner": _user(base, repo.owner, 1), "private": repo.private, "html_url": f"{base}/{repo.full_name}",
        "description": None, "fork": False, "url": api, "visibility": "private" if repo.private else "public",
        **{name: f"{api}/{name.removesuffix('_url')}" for name in _REPO_URLS},
    }
    if full:
        out.update({
            "git_url": f"git://lab/{repo.full_name}.git", "ssh_url": f"git@lab:{repo.full_name}.git",
            "clone_url": f"{base}/{repo.full_name}.git", "mirror_url": None, "svn_url": f"{base}/{repo.full_name}",
            "homepage": None, "language": None, "forks_count": 0, "stargazers_count": 0, "watchers_count": 0,
            "size": 0, "default_branch": "main", "open_issues_count": 0, "has_issues": True,
            "has_projects": False, "has_wiki": False, "has_pages": False, "has_discussions": False,
            "archived": False, "disabled": False, "pushed_at": EPOCH, "created_at": EPOCH, "updated_at": EPOCH,
            "subscribers_count": 0, "network_count": 0, "license": None, "forks": 0, "open_issues": 0,
            "watchers": 0,
        })
    return out


def secret_json(s: StoredSecret, *, org: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": s.name, "created_at": s.created_at, "updated_at": s.updated_at}
    if org:
        out["visibility"] = s.visibility
    return out


def variable_json(v: Variable, *, org: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": v.name, "value": v.value, "created_at": v.created_at, "updated_at": v.updated_at}
    if org:
        out["visibility"] = v.visibility
    return out


def deploy_key_json(base: str, repo: Repo, k: DeployKey) -> dict[str, Any]:
    return {"id": k.id, "key": k.key, "url": f"{base}/repos/{repo.full_name}/keys/{k.id}", "title": k.title,
            "verified": True, "created_at": k.created_at, "read_only": k.read_only, "added_by": k.added_by,
            "last_used": None, "enabled": True}


def content_item(base: str, repo: Repo, path: str, *, with_content: bool) -> dict[str, Any]:
    text = repo.files.get(path, "")
    sha = hashlib.sha1(f"blob {len(text.encode())}\0{text}".encode()).hexdigest()
    api = f"{base}/repos/{repo.full_name}/contents/{path}"
    html = f"{base}/{repo.full_name}/blob/main/{path}"
    git = f"{base}/repos/{repo.full_name}/git/blobs/{sha}"
    out: dict[str, Any] = {"type": "file", "size": len(text.encode()), "name": path.rsplit("/", 1)[-1],
                           "path": path, "sha": sha, "url": api, "git_url": git, "html_url": html,
                           "download_url": f"{base}/raw/{repo.full_name}/main/{path}",
                           "_links": {"git": git, "html": html, "self": api}}
    if with_content:
        out.update({"encoding": "base64", "content": base64.b64encode(text.encode()).decode()})
    return out


def grant_json(base: str, org: Org, g: PatGrant) -> dict[str, Any]:
    return {"id": g.id, "owner": _user(base, g.owner, 2), "repository_selection": "subset",
            "repositories_url": f"{base}/orgs/{org.login}/personal-access-tokens/{g.id}/repositories",
            "permissions": {"organization": g.permissions.get("organization", {}),
                            "repository": g.permissions.get("repository", {}),
                            "other": g.permissions.get("other", {})},
            "access_granted_at": g.granted_at, "token_id": g.token_id, "token_name": g.token_name,
            "token_expired": False, "token_expires_at": g.expires_at, "token_last_used_at": g.last_used_at}


def installation_json(base: str, org: Org, inst: dict[str, Any]) -> dict[str, Any]:
    """Installation (`GET /orgs/{org}/installations`)."""
    return {"id": inst["id"], "account": _user(base, org.login, org.id), "repository_selection": inst["repository_selection"],
            "access_tokens_url": f"{base}/app/installations/{inst['id']}/access_tokens",
            "repositories_url": f"{base}/installation/repositories",
            "html_url": f"{base}/organizations/{org.login}/settings/installations/{inst['id']}",
            "app_id": inst["app_id"], "target_id": org.id, "target_type": "Organization",
            "permissions": inst["permissions"], "events": [], "created_at": EPOCH, "updated_at": EPOCH,
            "single_file_name": None, "app_slug": inst["app_slug"], "suspended_by": None, "suspended_at": None}
