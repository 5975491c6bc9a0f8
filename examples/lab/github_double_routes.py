"""The routes of the GitHub REST double: one function per endpoint, each citing the section of
GitHub's REST documentation (https://docs.github.com/en/rest) it follows, and naming the
githubkit response model its body must parse as (the tests check every response sent).

A handler gets (state, base url, path params, query, json body, token login) and returns
(status, body); `Fail` raised anywhere becomes GitHub's error body.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from examples.lab.github_double_state import (
    DeployKey,
    SealKey,
    State,
    StoredSecret,
    Variable,
    _ids,
    content_item,
    deploy_key_json,
    grant_json,
    now_iso,
    private_user,
    repo_json,
    secret_json,
    variable_json,
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


ROUTES: list[Route] = []


def route(method: str, path: str, model: str | None, docs: str, *, paginated: bool = False, wrapped: str = "",
          public: bool = False) -> Callable[[Callable[..., tuple[int, Any]]], Callable[..., tuple[int, Any]]]:
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>[^/]+)" if m.group(1) != "path"
                                    else "(?P<path>.+)", path) + "$")

    def deco(fn: Callable[..., tuple[int, Any]]) -> Callable[..., tuple[int, Any]]:
        ROUTES.append(Route(method, regex, fn, model, f"{DOCS}/{docs}", paginated, wrapped, public))
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


def _put_secret(store: dict[str, StoredSecret], seal: SealKey, name: str, body: dict[str, Any]) -> tuple[int, Any]:
    if body.get("key_id") != seal.key_id:
        raise Fail(422, "key_id does not match the current public key")
    try:
        seal.open(str(body.get("encrypted_value", "")))
    except Exception:
        raise Fail(422, "encrypted_value is not a sealed box for this key") from None
    existing = store.get(name)
    stamp = now_iso()
    if existing is None:
        store[name] = StoredSecret(name, stamp, stamp, body["encrypted_value"], body["key_id"],
                                   str(body.get("visibility", "private")))
        return 201, {}
    existing.updated_at, existing.encrypted_value, existing.key_id = stamp, body["encrypted_value"], body["key_id"]
    return 204, None


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


# -- Actions secrets and variables ------------------------------------------------------------------

@route("GET", "/repos/{owner}/{repo}/actions/secrets/public-key", "ActionsPublicKey",
       "actions/secrets#get-a-repository-public-key")
def repo_public_key(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                    login: str) -> tuple[int, Any]:
    seal = _repo(st, p).seal
    return 200, {"key_id": seal.key_id, "key": seal.public_b64}


@route("GET", "/repos/{owner}/{repo}/actions/secrets", "ReposOwnerRepoActionsSecretsGetResponse200",
       "actions/secrets#list-repository-secrets", paginated=True, wrapped="secrets")
def list_repo_secrets(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                      login: str) -> tuple[int, Any]:
    return 200, [secret_json(s) for s in _repo(st, p).secrets.values()]


@route("GET", "/repos/{owner}/{repo}/actions/secrets/{name}", "ActionsSecret",
       "actions/secrets#get-a-repository-secret")
def get_repo_secret(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                    login: str) -> tuple[int, Any]:
    s = _repo(st, p).secrets.get(p["name"])
    if s is None:
        raise Fail(404, "Not Found")
    return 200, secret_json(s)


@route("PUT", "/repos/{owner}/{repo}/actions/secrets/{name}", "EmptyObject",
       "actions/secrets#create-or-update-a-repository-secret")
def put_repo_secret(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                    login: str) -> tuple[int, Any]:
    repo = _repo(st, p)
    return _put_secret(repo.secrets, repo.seal, p["name"], body or {})


@route("GET", "/repos/{owner}/{repo}/environments", "ReposOwnerRepoEnvironmentsGetResponse200",
       "deployments/environments#list-environments", paginated=True, wrapped="environments")
def list_environments(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                      login: str) -> tuple[int, Any]:
    repo = _repo(st, p)
    return 200, [{"id": i + 1, "node_id": f"EN_{i + 1}", "name": name,
                  "url": f"{base}/repos/{repo.full_name}/environments/{name}",
                  "html_url": f"{base}/{repo.full_name}/deployments/activity_log?environments_filter={name}",
                  "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}
                 for i, name in enumerate(repo.environments)]


@route("GET", "/repos/{owner}/{repo}/environments/{env}/secrets/public-key", "ActionsPublicKey",
       "actions/secrets#get-an-environment-public-key")
def env_public_key(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                   login: str) -> tuple[int, Any]:
    repo = _repo(st, p)
    if p["env"] not in repo.environments:
        raise Fail(404, "Not Found")
    seal = repo.env_seals.setdefault(p["env"], SealKey())
    return 200, {"key_id": seal.key_id, "key": seal.public_b64}


@route("GET", "/repos/{owner}/{repo}/environments/{env}/secrets",
       "ReposOwnerRepoEnvironmentsEnvironmentNameSecretsGetResponse200",
       "actions/secrets#list-environment-secrets", paginated=True, wrapped="secrets")
def list_env_secrets(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                     login: str) -> tuple[int, Any]:
    env = _repo(st, p).environments.get(p["env"])
    if env is None:
        raise Fail(404, "Not Found")
    return 200, [secret_json(s) for s in env.values()]


@route("GET", "/repos/{owner}/{repo}/environments/{env}/secrets/{name}", "ActionsSecret",
       "actions/secrets#get-an-environment-secret")
def get_env_secret(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                   login: str) -> tuple[int, Any]:
    s = _repo(st, p).environments.get(p["env"], {}).get(p["name"])
    if s is None:
        raise Fail(404, "Not Found")
    return 200, secret_json(s)


@route("PUT", "/repos/{owner}/{repo}/environments/{env}/secrets/{name}", "EmptyObject",
       "actions/secrets#create-or-update-an-environment-secret")
def put_env_secret(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                   login: str) -> tuple[int, Any]:
    repo = _repo(st, p)
    if p["env"] not in repo.environments:
        raise Fail(404, "Not Found")
    seal = repo.env_seals.setdefault(p["env"], SealKey())
    return _put_secret(repo.environments[p["env"]], seal, p["name"], body or {})


def _variables(st: State, p: dict[str, str]) -> tuple[dict[str, Variable], bool]:
    """The variables of the scope a path names: an org's, an environment's or a repository's."""
    if "org" in p:
        return _org(st, p).variables, True
    repo = _repo(st, p)
    if "env" in p:
        if p["env"] not in repo.environments:
            raise Fail(404, "Not Found")
        return repo.env_variables.setdefault(p["env"], {}), False
    return repo.variables, False


def _list_vars(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
               login: str) -> tuple[int, Any]:
    store, org = _variables(st, p)
    return 200, [variable_json(v, org=org) for v in store.values()]


def _get_var(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
             login: str) -> tuple[int, Any]:
    store, org = _variables(st, p)
    if p["name"] not in store:
        raise Fail(404, "Not Found")
    return 200, variable_json(store[p["name"]], org=org)


def _create_var(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                login: str) -> tuple[int, Any]:
    store, org = _variables(st, p)
    name, value = str((body or {}).get("name", "")), (body or {}).get("value")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name.upper().startswith("GITHUB_") or not isinstance(value, str):
        raise Fail(422, "name and value are required; names are letters, digits and _ and may not start with GITHUB_")
    if name in store:
        raise Fail(409, "Already exists")
    if org and not body.get("visibility"):
        raise Fail(422, "visibility is required")
    stamp = now_iso()
    store[name] = Variable(name, value, stamp, stamp, str(body.get("visibility", "private")))
    return 201, {}


def _update_var(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                login: str) -> tuple[int, Any]:
    store, _ = _variables(st, p)
    var = store.get(p["name"])
    if var is None:
        raise Fail(404, "Not Found")
    if isinstance((body or {}).get("value"), str):
        var.value, var.updated_at = body["value"], now_iso()
    return 204, None


for _prefix, _wrapped_model, _one_model, _doc in (
        ("/repos/{owner}/{repo}/actions/variables", "ReposOwnerRepoActionsVariablesGetResponse200",
         "ActionsVariable", "repository"),
        ("/repos/{owner}/{repo}/environments/{env}/variables",
         "ReposOwnerRepoEnvironmentsEnvironmentNameVariablesGetResponse200", "ActionsVariable", "environment"),
        ("/orgs/{org}/actions/variables", "OrgsOrgActionsVariablesGetResponse200",
         "OrganizationActionsVariable", "organization")):
    route("GET", _prefix, _wrapped_model, f"actions/variables#list-{_doc}-variables", paginated=True,
          wrapped="variables")(_list_vars)
    route("GET", _prefix + "/{name}", _one_model, f"actions/variables#get-an-{_doc}-variable"
          if _doc[0] in "aeiou" else f"actions/variables#get-a-{_doc}-variable")(_get_var)
    route("POST", _prefix, "EmptyObject", f"actions/variables#create-an-{_doc}-variable"
          if _doc[0] in "aeiou" else f"actions/variables#create-a-{_doc}-variable")(_create_var)
    route("PATCH", _prefix + "/{name}", None, f"actions/variables#update-an-{_doc}-variable"
          if _doc[0] in "aeiou" else f"actions/variables#update-a-{_doc}-variable")(_update_var)


@route("GET", "/orgs/{org}/actions/secrets/public-key", "ActionsPublicKey",
       "actions/secrets#get-an-organization-public-key")
def org_public_key(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                   login: str) -> tuple[int, Any]:
    seal = _org(st, p).seal
    return 200, {"key_id": seal.key_id, "key": seal.public_b64}


@route("GET", "/orgs/{org}/actions/secrets", "OrgsOrgActionsSecretsGetResponse200",
       "actions/secrets#list-organization-secrets", paginated=True, wrapped="secrets")
def list_org_secrets(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                     login: str) -> tuple[int, Any]:
    return 200, [secret_json(s, org=True) for s in _org(st, p).secrets.values()]


@route("GET", "/orgs/{org}/actions/secrets/{name}/repositories",
       "OrgsOrgActionsSecretsSecretNameRepositoriesGetResponse200",
       "actions/secrets#list-selected-repositories-for-an-organization-secret", paginated=True,
       wrapped="repositories")
def org_secret_repos(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                     login: str) -> tuple[int, Any]:
    s = _org(st, p).secrets.get(p["name"])
    if s is None:
        raise Fail(404, "Not Found")
    return 200, [repo_json(base, st.repos[n]) for n in s.selected if n in st.repos]


@route("GET", "/orgs/{org}/actions/secrets/{name}", "OrganizationActionsSecret",
       "actions/secrets#get-an-organization-secret")
def get_org_secret(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                   login: str) -> tuple[int, Any]:
    s = _org(st, p).secrets.get(p["name"])
    if s is None:
        raise Fail(404, "Not Found")
    return 200, secret_json(s, org=True)


@route("PUT", "/orgs/{org}/actions/secrets/{name}", "EmptyObject",
       "actions/secrets#create-or-update-an-organization-secret")
def put_org_secret(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                   login: str) -> tuple[int, Any]:
    org = _org(st, p)
    if not (body or {}).get("visibility") and p["name"] not in org.secrets:
        raise Fail(422, "visibility is required for a new organization secret")
    return _put_secret(org.secrets, org.seal, p["name"], body or {})


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
    org = _org(st, p)
    return 200, [grant_json(base, org, g) for g in org.grants.values()]


@route("GET", "/orgs/{org}/personal-access-tokens/{pat_id}/repositories", "list[MinimalRepository]",
       "orgs/personal-access-tokens#list-repositories-a-fine-grained-personal-access-token-has-access-to",
       paginated=True)
def grant_repos(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                login: str) -> tuple[int, Any]:
    grant = _org(st, p).grants.get(int(p["pat_id"]))
    if grant is None:
        raise Fail(404, "Not Found")
    return 200, [repo_json(base, st.repos[n]) for n in grant.repositories if n in st.repos]


@route("POST", "/orgs/{org}/personal-access-tokens/{pat_id}", None,
       "orgs/personal-access-tokens#update-the-access-a-fine-grained-personal-access-token-has-to-organization-resources")
def update_grant(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                 login: str) -> tuple[int, Any]:
    org = _org(st, p)
    if (body or {}).get("action") != "revoke":
        raise Fail(422, "action must be 'revoke'")
    if org.grants.pop(int(p["pat_id"]), None) is None:
        raise Fail(404, "Not Found")
    return 204, None


# -- rate limit --------------------------------------------------------------------------------------

@route("GET", "/rate_limit", "RateLimitOverview", "rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user")
def rate_limit(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
               login: str) -> tuple[int, Any]:
    core = {"limit": st.rate_limit, "remaining": max(0, st.rate_limit - st.used), "reset": 4102444800,
            "used": st.used}
    return 200, {"resources": {"core": core, "search": core}, "rate": core}
