"""Routes of the GitHub REST double for Actions secrets and variables (repository, environment and
organisation scope), each citing its REST documentation section; registered in the same table as
`github_double_routes.py`'s. Secrets are stored as the sealed box the client sent."""

from __future__ import annotations

import re
from typing import Any

from examples.lab.github_double_routes import Fail, _org, _repo, route
from examples.lab.github_double_state import (
    SealKey,
    State,
    StoredSecret,
    Variable,
    now_iso,
    repo_json,
    secret_json,
    variable_json,
)


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


# -- Actions secrets and variables ------------------------------------------------------------------

def _secrets(st: State, p: dict[str, str]) -> tuple[dict[str, StoredSecret], SealKey, bool]:
    """The secrets of the scope a path names, with its sealing key: an org's, an environment's or
    a repository's."""
    if "org" in p:
        org = _org(st, p)
        return org.secrets, org.seal, True
    repo = _repo(st, p)
    if "env" in p:
        if p["env"] not in repo.environments:
            raise Fail(404, "Not Found")
        return repo.environments[p["env"]], repo.env_seals.setdefault(p["env"], SealKey()), False
    return repo.secrets, repo.seal, False


def _public_key(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                login: str) -> tuple[int, Any]:
    _, seal, _ = _secrets(st, p)
    return 200, {"key_id": seal.key_id, "key": seal.public_b64}


def _list_secrets(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                  login: str) -> tuple[int, Any]:
    store, _, org = _secrets(st, p)
    return 200, [secret_json(s, org=org) for s in store.values()]


def _get_secret(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                login: str) -> tuple[int, Any]:
    store, _, org = _secrets(st, p)
    if p["name"] not in store:
        raise Fail(404, "Not Found")
    return 200, secret_json(store[p["name"]], org=org)


def _put_scoped_secret(st: State, base: str, p: dict[str, str], q: dict[str, str], body: Any,
                       login: str) -> tuple[int, Any]:
    store, seal, org = _secrets(st, p)
    if org and not (body or {}).get("visibility") and p["name"] not in store:
        raise Fail(422, "visibility is required for a new organization secret")
    return _put_secret(store, seal, p["name"], body or {})


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


for _prefix, _list_model, _one_model, _doc in (
        ("/repos/{owner}/{repo}/actions/secrets", "ReposOwnerRepoActionsSecretsGetResponse200", "ActionsSecret",
         "repository"),
        ("/repos/{owner}/{repo}/environments/{env}/secrets",
         "ReposOwnerRepoEnvironmentsEnvironmentNameSecretsGetResponse200", "ActionsSecret", "environment"),
        ("/orgs/{org}/actions/secrets", "OrgsOrgActionsSecretsGetResponse200", "OrganizationActionsSecret",
         "organization")):
    _a = "an" if _doc[0] in "aeiou" else "a"
    # public-key before {name}, which would match it too
    route("GET", _prefix + "/public-key", "ActionsPublicKey", f"actions/secrets#get-{_a}-{_doc}-public-key")(_public_key)
    route("GET", _prefix, _list_model, f"actions/secrets#list-{_doc}-secrets", paginated=True,
          wrapped="secrets")(_list_secrets)
    route("GET", _prefix + "/{name}", _one_model, f"actions/secrets#get-{_a}-{_doc}-secret")(_get_secret)
    route("PUT", _prefix + "/{name}", "EmptyObject",
          f"actions/secrets#create-or-update-{_a}-{_doc}-secret")(_put_scoped_secret)


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
    _a = "an" if _doc[0] in "aeiou" else "a"
    route("GET", _prefix, _wrapped_model, f"actions/variables#list-{_doc}-variables", paginated=True,
          wrapped="variables")(_list_vars)
    route("GET", _prefix + "/{name}", _one_model, f"actions/variables#get-{_a}-{_doc}-variable")(_get_var)
    route("POST", _prefix, "EmptyObject", f"actions/variables#create-{_a}-{_doc}-variable")(_create_var)
    route("PATCH", _prefix + "/{name}", None, f"actions/variables#update-{_a}-{_doc}-variable")(_update_var)
