"""Actions, rotation helpers and probes of the GitHub connector: plain functions over the client.

Each action reads the current state first, so a repeat reports `changed=False`; with
`ctx.dry_run` nothing changes. What GitHub cannot undo is declared irreversible in the connector's
table: a revoked token, a revoked fine-grained PAT grant, a deleted deploy key.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.github.collect import env_path
from connectors.github.transform import (
    PROVIDER,
    deploy_key_id,
    holds_variable,
    parse_holds,
    secret_scope,
    time_of,
)
from revoke.connector import ActionContext, ActionResult, ConnectorError, ProbeResult, Replacement, Secret
from revoke.model import Node, NodeKind

if TYPE_CHECKING:
    from connectors.github.client import GithubClient


def _result(node: Node, action: str, changed: bool, detail: str, ctx: ActionContext, **data: Any) -> ActionResult:
    if ctx.dry_run and changed:
        return ActionResult(node.id, action, ok=True, changed=False, detail=f"dry run: would {detail}",
                            data={"dry_run": True, **data})
    return ActionResult(node.id, action, ok=True, changed=changed, detail=detail, data=dict(data))


def _missing(err: ConnectorError) -> bool:
    return err.code == "404"


# -- tokens known by value ----------------------------------------------------------------------------

INSTALLATION_PREFIX = "ghs_"


def _token_live(client: GithubClient, value: str, node: str) -> tuple[bool, str]:
    """(live, signal): `GET /user` for user tokens, `GET /installation/repositories` for an App
    installation token (which `GET /user` refuses)."""
    if value.startswith(INSTALLATION_PREFIX):
        live = client.installation_token_live(value, node)
        return live, "GET /installation/repositories: " + ("200" if live else "401 Bad credentials")
    login = client.token_login(value, node)
    return login is not None, f"GET /user: 200 as {login}" if login else "GET /user: 401 Bad credentials"


def revoke_token(client: GithubClient, node: Node, value: str | None, ctx: ActionContext) -> ActionResult:
    """Irreversible: `POST /credentials/revoke` with the token's value, or, for an App installation
    token, `DELETE /installation/token` as itself. The value comes from `leaked_tokens_env`; revoke
    keeps only its fingerprint."""
    if value is None:
        raise ConnectorError(PROVIDER, "revoke token", "the token's value is not available: name the "
                             "variable holding it in leaked_tokens_env", node=node.id, code="no_value")
    live, signal = _token_live(client, value, node.id)
    if not live:
        return _result(node, "revoke", False, f"token already dead ({signal})", ctx)
    how = "DELETE /installation/token" if value.startswith(INSTALLATION_PREFIX) else "POST /credentials/revoke"
    if ctx.dry_run:
        return _result(node, "revoke", True, f"revoke the token ({how})", ctx)
    if value.startswith(INSTALLATION_PREFIX):
        client.revoke_installation_token(value, node.id)
    else:
        client.revoke_credentials([value], node.id)
    return _result(node, "revoke", True, f"token revoked ({how})", ctx)


def probe_token(client: GithubClient, node: Node, value: str | None) -> ProbeResult:
    if value is None:
        return ProbeResult(node.id, None, "token value not available (leaked_tokens_env)")
    live, signal = _token_live(client, value, node.id)
    return ProbeResult(node.id, live, signal)


# -- fine-grained PAT grants ----------------------------------------------------------------------------

def _grant_ids(client: GithubClient, org: str) -> set[int]:
    listed = client.pages("GET /orgs/{org}/personal-access-tokens", client.rest.orgs.list_pat_grants, org=org)
    return {int(g.id) for g in listed}


def _grant_of(node: Node) -> tuple[str, int]:
    org, _, grant = node.id.split(":", 2)[2].partition("/")
    return org, int(grant)


def revoke_grant(client: GithubClient, node: Node, ctx: ActionContext) -> ActionResult:
    """`POST /orgs/{org}/personal-access-tokens/{pat_id}` `{"action": "revoke"}`: the PAT loses
    the org (the owner's token itself lives on; GitHub offers no way for an org to kill it)."""
    org, grant = _grant_of(node)
    if grant not in _grant_ids(client, org):
        return _result(node, "revoke", False, "grant already revoked", ctx, org=org, grant=grant)
    if ctx.dry_run:
        return _result(node, "revoke", True, f"revoke the PAT's access to {org}", ctx, org=org, grant=grant)
    try:
        client.call("POST /orgs/{org}/personal-access-tokens/{pat_id}",
                    lambda: client.rest.orgs.update_pat_access(org, grant, data={"action": "revoke"}), read=False,
                    node=node.id)
    except ConnectorError as err:
        if not _missing(err):
            raise
        return _result(node, "revoke", False, "grant already revoked", ctx, org=org, grant=grant)
    return _result(node, "revoke", True, f"PAT access to {org} revoked", ctx, org=org, grant=grant)


def probe_grant(client: GithubClient, node: Node) -> ProbeResult:
    org, grant = _grant_of(node)
    if grant in _grant_ids(client, org):
        return ProbeResult(node.id, True, f"GET /orgs/{org}/personal-access-tokens: grant {grant} listed")
    return ProbeResult(node.id, False, f"GET /orgs/{org}/personal-access-tokens: grant {grant} gone")


# -- deploy keys ----------------------------------------------------------------------------------------

def _key_of(node: Node) -> tuple[str, str, int]:
    native = node.id.split(":", 2)[2]
    full, _, key = native.rpartition("/")
    owner, _, repo = full.partition("/")
    return owner, repo, int(key)


def _get_key(client: GithubClient, owner: str, repo: str, key: int, node: str) -> Any | None:
    try:
        return client.call("GET /repos/{owner}/{repo}/keys/{key_id}",
                           lambda: client.rest.repos.get_deploy_key(owner, repo, key).parsed_data, read=True, node=node)
    except ConnectorError as err:
        if _missing(err):
            return None
        raise


def delete_deploy_key(client: GithubClient, node: Node, ctx: ActionContext, *, action: str) -> ActionResult:
    """Deploy keys cannot be disabled: containing one deletes it (irreversible)."""
    owner, repo, key = _key_of(node)
    if _get_key(client, owner, repo, key, node.id) is None:
        return _result(node, action, False, "deploy key already deleted", ctx, repo=f"{owner}/{repo}", key_id=key)
    if ctx.dry_run:
        return _result(node, action, True, "delete the deploy key", ctx, repo=f"{owner}/{repo}", key_id=key)
    try:
        client.call("DELETE /repos/{owner}/{repo}/keys/{key_id}",
                    lambda: client.rest.repos.delete_deploy_key(owner, repo, key), read=False, node=node.id)
    except ConnectorError as err:
        if not _missing(err):
            raise
        return _result(node, action, False, "deploy key already deleted", ctx, repo=f"{owner}/{repo}", key_id=key)
    return _result(node, action, True, "deploy key deleted", ctx, repo=f"{owner}/{repo}", key_id=key)


def create_deploy_key(client: GithubClient, node: Node, ctx: ActionContext) -> Replacement:
    """A new Ed25519 key pair; the public half is registered with the old key's title and access,
    the private half leaves only inside the `Replacement` (to the stores or the escrow)."""
    from connectors.github.client import new_ssh_key_pair

    if ctx.dry_run:
        raise ConnectorError(PROVIDER, "create_replacement", "dry run: no key created", node=node.id)
    owner, repo, key = _key_of(node)
    old = _get_key(client, owner, repo, key, node.id)
    read_only = bool(old.read_only) if old is not None else bool(node.attrs.get("read_only", True))
    title = (str(old.title) if old is not None else node.name or "deploy") + f" (revoke {ctx.incident})"
    public, private = new_ssh_key_pair(f"revoke-{ctx.incident}")
    created = client.call("POST /repos/{owner}/{repo}/keys", lambda: client.rest.repos.create_deploy_key(
        owner, repo, data={"title": title[:100], "key": public, "read_only": read_only}).parsed_data,
        read=False, node=node.id)
    return Replacement(old_id=node.id, new_id=deploy_key_id(f"{owner}/{repo}", int(created.id)),
                       kind=NodeKind.SSH_KEY, material=Secret({"private_key_pem": private, "public_key": public}),
                       attrs={"repo": f"{owner}/{repo}", "read_only": read_only})


def sibling_keys(client: GithubClient, node: Node) -> set[str]:
    owner, repo, _ = _key_of(node)
    keys = client.pages("GET /repos/{owner}/{repo}/keys", client.rest.repos.list_deploy_keys, owner=owner, repo=repo)
    return {deploy_key_id(f"{owner}/{repo}", int(k.id)) for k in keys} - {node.id}


def probe_deploy_key(client: GithubClient, node: Node) -> ProbeResult:
    owner, repo, key = _key_of(node)
    if _get_key(client, owner, repo, key, node.id) is None:
        return ProbeResult(node.id, False, "GET /repos/{owner}/{repo}/keys/{key_id}: 404 (deleted)")
    return ProbeResult(node.id, True, "GET /repos/{owner}/{repo}/keys/{key_id}: 200")


# -- Actions secrets as stores --------------------------------------------------------------------------

SECRET_FIELDS = {  # which field of a replacement an Actions secret holds, by credential kind
    NodeKind.TOKEN: ("token",), NodeKind.PASSWORD: ("password",), NodeKind.API_KEY: ("api_key",),
    NodeKind.SSH_KEY: ("private_key_pem",), NodeKind.PRIVATE_KEY: ("private_key_pem",),
    NodeKind.SERVICE_ACCOUNT_KEY: ("key_json",),
}


def secret_value(store: Node, replacement: Replacement) -> str:
    """The text an Actions secret gets: a single-value credential as itself; an AWS key pair as
    `access_key_id:secret_access_key`, unless the secret's name says which half it holds."""
    fields = replacement.material.reveal()
    name = secret_scope(store.id)["name"]
    if replacement.kind is NodeKind.ACCESS_KEY:
        if "SECRET" in name.upper():
            return fields["secret_access_key"]
        if name.upper().endswith(("KEY_ID", "ACCESS_KEY")):
            return fields["access_key_id"]
        return f"{fields['access_key_id']}:{fields['secret_access_key']}"
    for f in SECRET_FIELDS.get(replacement.kind, ()):
        if f in fields:
            return fields[f]
    raise ConnectorError(PROVIDER, "write_store", f"no field of a {replacement.kind.value} fits an Actions secret",
                         node=store.id, code="unsupported")


# -- what an Actions secret holds, recorded beside it (see `transform.holds_variable`) ---------------------
def _variable_calls(client: GithubClient, scope: dict[str, str]) -> tuple[Any, Any, Any]:
    """(get(name), create(body), update(name, body)) for the variables of the secret's scope."""
    rest = client.rest.actions
    if "org" in scope:
        org = scope["org"]
        return (lambda n: rest.get_org_variable(org, n).parsed_data,
                lambda b: rest.create_org_variable(org, data={**b, "visibility": "private"}),
                lambda n, b: rest.update_org_variable(org, n, data=b))
    owner, repo = scope["repo"].split("/", 1)
    if "env" in scope:
        env = env_path(scope["env"])
        return (lambda n: rest.get_environment_variable(owner, repo, env, n).parsed_data,
                lambda b: rest.create_environment_variable(owner, repo, env, data=b),
                lambda n, b: rest.update_environment_variable(owner, repo, n, env, data=b))
    return (lambda n: rest.get_repo_variable(owner, repo, n).parsed_data,
            lambda b: rest.create_repo_variable(owner, repo, data=b),
            lambda n, b: rest.update_repo_variable(owner, repo, n, data=b))


def _record_holds(client: GithubClient, store: Node, scope: dict[str, str], credential: str, updated: str) -> None:
    get, create, update = _variable_calls(client, scope)
    name = holds_variable(scope["name"])
    text = json.dumps({"credential": credential, "secret_updated_at": updated}, sort_keys=True)
    try:
        client.call("GET variable", lambda: get(name), read=True, node=store.id)
    except ConnectorError as err:
        if not _missing(err):
            raise
        client.call("POST variable", lambda: create({"name": name, "value": text}), read=False, node=store.id)
        return
    client.call("PATCH variable", lambda: update(name, {"name": name, "value": text}), read=False, node=store.id)


def _secret_updated_at(client: GithubClient, store: Node, scope: dict[str, str]) -> datetime | None:
    rest, name = client.rest.actions, scope["name"]
    if "org" in scope:
        got = client.call("GET org secret", lambda: rest.get_org_secret(scope["org"], name).parsed_data, read=True,
                          node=store.id)
    else:
        owner, repo = scope["repo"].split("/", 1)
        if "env" in scope:
            got = client.call("GET environment secret", lambda: rest.get_environment_secret(
                owner, repo, env_path(scope["env"]), name).parsed_data, read=True, node=store.id)
        else:
            got = client.call("GET repo secret", lambda: rest.get_repo_secret(owner, repo, name).parsed_data,
                              read=True, node=store.id)
    return time_of(got.updated_at)


def secret_holds(client: GithubClient, store: Node) -> set[str]:
    """What revoke's own record says the secret holds, while the secret is unchanged since."""
    scope = secret_scope(store.id)
    get, _, _ = _variable_calls(client, scope)
    try:
        updated = _secret_updated_at(client, store, scope)
        var = client.call("GET variable", lambda: get(holds_variable(scope["name"])), read=True, node=store.id)
    except ConnectorError as err:
        if _missing(err):
            return set()
        raise
    held = parse_holds(str(var.value), updated)
    return {held} if held else set()


def write_secret(client: GithubClient, store: Node, value: str, ctx: ActionContext,
                 credential: str = "") -> ActionResult:
    """Sealed-box PUT to the secret's scope, then read its `updated_at` back (the readback probe)
    and record which credential it now holds."""
    from connectors.github.client import seal

    scope = secret_scope(store.id)
    rest, name = client.rest, scope["name"]
    if ctx.dry_run:
        return _result(store, "write_store", True, f"write Actions secret {name}", ctx)
    before = datetime.now(UTC).replace(microsecond=0)
    if "org" in scope:
        key = client.call("GET public-key", lambda: rest.actions.get_org_public_key(scope["org"]).parsed_data,
                          read=True, node=store.id)
        body = {"encrypted_value": seal(str(key.key), value), "key_id": str(key.key_id),
                "visibility": str(store.attrs.get("visibility") or "private")}
        client.call("PUT org secret", lambda: rest.actions.create_or_update_org_secret(scope["org"], name, data=body),
                    read=False, node=store.id)
        got = client.call("GET org secret", lambda: rest.actions.get_org_secret(scope["org"], name).parsed_data,
                          read=True, node=store.id)
    else:
        owner, repo = scope["repo"].split("/", 1)
        if "env" in scope:
            env = env_path(scope["env"])
            key = client.call("GET public-key", lambda: rest.actions.get_environment_public_key(
                owner, repo, env).parsed_data, read=True, node=store.id)
            body = {"encrypted_value": seal(str(key.key), value), "key_id": str(key.key_id)}
            client.call("PUT environment secret", lambda: rest.actions.create_or_update_environment_secret(
                owner, repo, env, name, data=body), read=False, node=store.id)
            got = client.call("GET environment secret", lambda: rest.actions.get_environment_secret(
                owner, repo, env, name).parsed_data, read=True, node=store.id)
        else:
            key = client.call("GET public-key", lambda: rest.actions.get_repo_public_key(owner, repo).parsed_data,
                              read=True, node=store.id)
            body = {"encrypted_value": seal(str(key.key), value), "key_id": str(key.key_id)}
            client.call("PUT repo secret", lambda: rest.actions.create_or_update_repo_secret(
                owner, repo, name, data=body), read=False, node=store.id)
            got = client.call("GET repo secret", lambda: rest.actions.get_repo_secret(owner, repo, name).parsed_data,
                              read=True, node=store.id)
    updated = time_of(got.updated_at)
    if updated is None or updated < before:
        raise ConnectorError(PROVIDER, "write_store", f"updated_at {updated} is not after the write", node=store.id,
                             code="readback")
    if credential:
        _record_holds(client, store, scope, credential, str(got.updated_at.isoformat()))
    return _result(store, "write_store", True, f"Actions secret {name} written (sealed box)", ctx,
                   updated_at=updated.isoformat(), key_id=str(key.key_id))
