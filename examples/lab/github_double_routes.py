"""The routes of the GitHub REST double: one function per endpoint, each citing the section of
GitHub's REST documentation (https://docs.github.com/en/rest) it follows, and naming the
githubkit response model its body must parse as (the tests check every response sent).

A handler gets (state, base url, path params, query, json body, token login) and returns
(status, body); `Fail` raised anywhere becomes GitHub's error body.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from examples.lab.github_double_state import (
    DeployKey,
    Org,
    State,
    Token,
    _ids,
    content_item,
    deploy_key_json,
    grant_json,
    installation_json,
    now_iso,
    private_user,
    repo_json,
)

DOCS = "https://docs.github.com/rest"


class Fail(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., tuple[int, Any]]
    model: str | None  # githubkit model the body parses as; "list[X]" for arrays; None: no body
    docs: str
    paginated: bool = False
    wrapped: str = ""  # a paginated list inside an object: its key (`secrets`, `repositories`)
    public: bool = False  # needs no token
    app: bool = False  # authenticated as the GitHub App itself (a JWT); the handler's login is `app:<id>`


ROUTES: list[Route] = []


def route(method: str, path: str, model: str | None, docs: str, *, paginated: bool = False, wrapped: str = "",
          public: bool = False, app: bool = False) -> Callable[[Callable[..., tuple[int, Any]]], Callable[..., tuple[int, Any]]]:
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>[^/]+)" if m.group(1) != "path"
                                    else "(?P<path>.+)", path) + "$")

    def deco(fn: Callable[..., tuple[int, Any]]) -> Callable[..., tuple[int, Any]]:
        ROUTES.append(Route(method, regex, fn, model, f"{DOCS}/{docs}", paginated, wrapped, public, app))
        return fn

    return deco


def _repo(st: State, p: dict[str, str]) -> Any:
    repo = st.repos.get(f"{p['owner']}/{p['repo']}")
    if repo is None:
        raise Fail(404, "Not Found")
    return repo


def _org(st: State, p: dict[str, str]) -> Any:
    org = st.orgs.get(p["org"])
    if org is None:
        raise Fail(404, "Not Found")
    return org


# -- users and credentials ---------------------------------------------------------------------------

@route("GET", "/user", "PrivateUser", "users/users#get-the-authenticated-user")
def get_user(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any, login: str) -> tuple[int, Any]:
    return 200, private_user(base, login)


@route("POST", "/credentials/revoke", "AppHookDeliveriesDeliveryIdAttemptsPostResponse202",
       "credentials/revoke#revoke-a-list-of-credentials", public=True)
def revoke_credentials(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                       login: str) -> tuple[int, Any]:
    creds = (body or {}).get("credentials")
    if not isinstance(creds, list) or not 1 <= len(creds) <= 1000:
        raise Fail(422, "credentials must be a list of 1 to 1000 tokens")
    for value in creds:
        token = st.tokens.get(str(value))
        if token is not None and token.kind != "installation":  # installation tokens are not accepted here
            token.live = False
    st.revoked_batches.append(len(creds))
    return 202, {}


# -- GitHub App installation tokens (the handler's `login` is the token itself) ---------------------------

@route("GET", "/installation/repositories", "InstallationRepositoriesGetResponse200",
       "apps/installations#list-repositories-accessible-to-the-app-installation", paginated=True,
       wrapped="repositories")
def installation_repos(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                       login: str) -> tuple[int, Any]:
    token = st.tokens.get(login)
    if token is None or token.kind != "installation":
        raise Fail(403, "This endpoint requires an installation token")
    return 200, [repo_json(base, r, full=True) for r in st.repos.values() if r.owner == token.org]


@route("DELETE", "/installation/token", None, "apps/installations#revoke-an-installation-access-token")
def revoke_installation_token(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                              login: str) -> tuple[int, Any]:
    token = st.tokens.get(login)
    if token is None or token.kind != "installation":
        raise Fail(403, "This endpoint requires an installation token")
    token.live = False
    return 204, None


# -- GitHub App authentication: the App's JWT buys installation tokens ---------------------------------

def _app_installation(st: State, login: str, pick: Callable[[Org, dict[str, Any]], bool]) -> tuple[Org, dict[str, Any]]:
    app_id = int(login.removeprefix("app:"))
    for org in st.orgs.values():
        for inst in org.installations:
            if inst["app_id"] == app_id and pick(org, inst):
                return org, inst
    raise Fail(404, "Not Found")


@route("POST", "/app/installations/{installation_id}/access_tokens", "InstallationToken",
       "apps/apps#create-an-installation-access-token-for-an-app", app=True)
def create_installation_token(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                              login: str) -> tuple[int, Any]:
    org, inst = _app_installation(st, login, lambda o, i: str(i["id"]) == p["installation_id"])
    value = "ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36]
    st.tokens[value] = Token(f"{inst['app_slug']}[bot]", kind="installation", org=org.login)
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return 201, {"token": value, "expires_at": expires, "permissions": inst["permissions"],
                 "repository_selection": inst["repository_selection"]}


@route("GET", "/orgs/{org}/installation", "Installation", "apps/apps#get-an-organization-installation-for-the-authenticated-app",
       app=True)
def get_org_installation(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                         login: str) -> tuple[int, Any]:
    org, inst = _app_installation(st, login, lambda o, i: o.login == p["org"])
    return 200, installation_json(base, org, inst)


def _app_only(st: State, login: str) -> None:
    """The org's fine-grained PAT routes answer GitHub Apps only (an installation token)."""
    token = st.tokens.get(login)
    if token is None or token.kind != "installation":
        raise Fail(403, "Resource not accessible by personal access token")


# -- repositories ----------------------------------------------------------------------------------------

@route("GET", "/orgs/{org}/repos", "list[MinimalRepository]", "repos/repos#list-organization-repositories",
       paginated=True)
def list_org_repos(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                   login: str) -> tuple[int, Any]:
    _org(st, p)
    return 200, [repo_json(base, r) for r in st.repos.values() if r.owner == p["org"]]


@route("GET", "/repos/{owner}/{repo}", "FullRepository", "repos/repos#get-a-repository")
def get_repo(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any, login: str) -> tuple[int, Any]:
    return 200, repo_json(base, _repo(st, p), full=True)


# -- deploy keys -----------------------------------------------------------------------------------------

@route("GET", "/repos/{owner}/{repo}/keys", "list[DeployKey]", "deploy-keys/deploy-keys#list-deploy-keys",
       paginated=True)
def list_keys(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any, login: str) -> tuple[int, Any]:
    repo = _repo(st, p)
    return 200, [deploy_key_json(base, repo, k) for k in repo.deploy_keys.values()]


@route("GET", "/repos/{owner}/{repo}/keys/{key_id}", "DeployKey", "deploy-keys/deploy-keys#get-a-deploy-key")
def get_key(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any, login: str) -> tuple[int, Any]:
    repo = _repo(st, p)
    key = repo.deploy_keys.get(int(p["key_id"]))
    if key is None:
        raise Fail(404, "Not Found")
    return 200, deploy_key_json(base, repo, key)


@route("POST", "/repos/{owner}/{repo}/keys", "DeployKey", "deploy-keys/deploy-keys#create-a-deploy-key")
def create_key(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
               login: str) -> tuple[int, Any]:
    repo = _repo(st, p)
    text = str((body or {}).get("key", ""))
    if not text.startswith(("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-")):
        raise Fail(422, "key is invalid. It must begin with 'ssh-ed25519', 'ssh-rsa' or 'ecdsa-sha2-'")
    if any(k.key.split()[:2] == text.split()[:2] for k in repo.deploy_keys.values()):
        raise Fail(422, "key is already in use")
    key = DeployKey(next(_ids), " ".join(text.split()[:2]), str(body.get("title", "")),
                    bool(body.get("read_only", False)), now_iso())
    repo.deploy_keys[key.id] = key
    return 201, deploy_key_json(base, repo, key)


@route("DELETE", "/repos/{owner}/{repo}/keys/{key_id}", None, "deploy-keys/deploy-keys#delete-a-deploy-key")
def delete_key(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
               login: str) -> tuple[int, Any]:
    repo = _repo(st, p)
    if repo.deploy_keys.pop(int(p["key_id"]), None) is None:
        raise Fail(404, "Not Found")
    return 204, None


# -- contents (workflow files) --------------------------------------------------------------------------

@route("GET", "/repos/{owner}/{repo}/contents/{path}", "ContentFile|list[ContentDirectoryItems]",
       "repos/contents#get-repository-content")
def get_content(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                login: str) -> tuple[int, Any]:
    repo = _repo(st, p)
    path = p["path"].strip("/")
    if path in repo.files:
        return 200, content_item(base, repo, path, with_content=True)
    under = sorted(f for f in repo.files if f.startswith(path + "/") and "/" not in f[len(path) + 1:])
    if not under:
        raise Fail(404, "Not Found")
    return 200, [content_item(base, repo, f, with_content=False) for f in under]


# -- fine-grained PATs granted to an organisation -------------------------------------------------------

@route("GET", "/orgs/{org}/personal-access-tokens", "list[OrganizationProgrammaticAccessGrant]",
       "orgs/personal-access-tokens#list-fine-grained-personal-access-tokens-with-access-to-organization-resources",
       paginated=True)
def list_grants(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                login: str) -> tuple[int, Any]:
    _app_only(st, login)
    org = _org(st, p)
    return 200, [grant_json(base, org, g) for g in org.grants.values()]


@route("GET", "/orgs/{org}/personal-access-tokens/{pat_id}/repositories", "list[MinimalRepository]",
       "orgs/personal-access-tokens#list-repositories-a-fine-grained-personal-access-token-has-access-to",
       paginated=True)
def grant_repos(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                login: str) -> tuple[int, Any]:
    _app_only(st, login)
    grant = _org(st, p).grants.get(int(p["pat_id"]))
    if grant is None:
        raise Fail(404, "Not Found")
    return 200, [repo_json(base, st.repos[n]) for n in grant.repositories if n in st.repos]


@route("POST", "/orgs/{org}/personal-access-tokens/{pat_id}", None,
       "orgs/personal-access-tokens#update-the-access-a-fine-grained-personal-access-token-has-to-organization-resources")
def update_grant(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                 login: str) -> tuple[int, Any]:
    _app_only(st, login)
    org = _org(st, p)
    if (body or {}).get("action") != "revoke":
        raise Fail(422, "action must be 'revoke'")
    if org.grants.pop(int(p["pat_id"]), None) is None:
        raise Fail(404, "Not Found")
    return 204, None


@route("GET", "/orgs/{org}/installations", "OrgsOrgInstallationsGetResponse200",
       "orgs/orgs#list-app-installations-for-an-organization", paginated=True, wrapped="installations")
def list_installations(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                       login: str) -> tuple[int, Any]:
    org = _org(st, p)
    return 200, [installation_json(base, org, i) for i in org.installations]


# -- rate limit --------------------------------------------------------------------------------------

@route("GET", "/rate_limit", "RateLimitOverview", "rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user")
def rate_limit(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
               login: str) -> tuple[int, Any]:
    core = {"limit": st.rate_limit, "remaining": max(0, st.rate_limit - st.used), "reset": 4102444800,
            "used": st.used}
    return 200, {"resources": {"core": core, "search": core}, "rate": core}
