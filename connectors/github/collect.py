"""Get: one owner's raw state as the plain-dict payload `transform.transform_owner` reads.

githubkit's parsed models are read field by field into dicts here and go no further. Secret
values never travel: GitHub returns names and timestamps only. An endpoint the credential may
not read (403/404: no admin on the repo, PAT listing without App auth) becomes a finding, never a
silent gap.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from connectors.github.transform import HOLDS_PREFIX
from revoke.connector import CollectFinding, ConnectorError

if TYPE_CHECKING:
    from connectors.github.client import GithubClient

WORKFLOW_DIR = ".github/workflows"
DENIED = ("401", "403", "404")


def env_path(name: str) -> str:
    """An environment's name as a path segment: GitHub wants it URL-encoded (`/` as `%2F`)."""
    return quote(name, safe="")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _secret(s: Any) -> dict[str, Any]:
    return {"name": str(s.name), "created_at": _iso(s.created_at), "updated_at": _iso(s.updated_at)}


class Reader:
    def __init__(self, client: GithubClient) -> None:
        self.client = client
        self.rest = client.rest
        self.findings: list[CollectFinding] = []

    def _soft(self, call: str, fn: Any, default: Any, source: str, *, absent_ok: bool = False) -> Any:
        try:
            return fn()
        except ConnectorError as err:
            if err.code not in DENIED:
                raise
            if absent_ok and err.code == "404":
                return default  # most repositories have no workflows directory
            self.findings.append(CollectFinding("github.unreadable", f"{call} on {source}: {err}", source=source,
                                                severity="warning" if err.code == "404" else "error"))
            return default

    def repo_summary(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/", 1)
        repo = self.client.call("GET /repos/{owner}/{repo}",
                                lambda: self.rest.repos.get(owner, name).parsed_data, read=True)
        return {"full_name": str(repo.full_name), "private": bool(repo.private)}

    def owner(self, owner: str, repos: list[dict[str, Any]], *, is_org: bool) -> dict[str, Any]:
        rest = self.rest
        payload: dict[str, Any] = {"owner": owner, "repos": repos, "deploy_keys": {}, "secrets": {},
                                   "env_secrets": {}, "org_secrets": [], "workflows": {}, "grants": [],
                                   "variables": {}, "env_variables": {}, "org_variables": {}}
        if is_org:
            org_secrets = self._soft("GET /orgs/{org}/actions/secrets", lambda: self.client.pages(
                "GET /orgs/{org}/actions/secrets", rest.actions.list_org_secrets, wrapped="secrets", org=owner),
                [], f"orgs/{owner}")
            for s in org_secrets:
                item = {**_secret(s), "visibility": str(s.visibility), "selected": []}
                if item["visibility"] == "selected":
                    chosen = self._soft("GET /orgs/{org}/actions/secrets/{name}/repositories", lambda n=s.name:
                                        self.client.pages("GET /orgs/{org}/actions/secrets/{name}/repositories",
                                                          rest.actions.list_selected_repos_for_org_secret,
                                                          wrapped="repositories", org=owner, secret_name=n),
                                        [], f"orgs/{owner}/actions/secrets/{s.name}")
                    item["selected"] = [str(r.full_name) for r in chosen]
                payload["org_secrets"].append(item)
            payload["grants"] = self.grants(owner)
            payload["installations"] = [
                {"id": int(i.id), "app_slug": str(i.app_slug), "app_id": int(i.app_id),
                 "repository_selection": str(i.repository_selection),
                 "permissions": i.permissions.model_dump(exclude_unset=True, exclude_none=True)}
                for i in self._soft("GET /orgs/{org}/installations", lambda: self.client.pages(
                    "GET /orgs/{org}/installations", rest.orgs.list_app_installations, wrapped="installations",
                    org=owner), [], f"orgs/{owner}")]
            payload["org_variables"] = self._holds("GET /orgs/{org}/actions/variables", rest.actions.list_org_variables,
                                                   f"orgs/{owner}", org=owner)
        for repo in repos:
            self.repo(payload, repo["full_name"])
        return payload

    def repo(self, payload: dict[str, Any], full: str) -> None:
        rest, owner, name = self.rest, *full.split("/", 1)
        keys = self._soft("GET /repos/{owner}/{repo}/keys", lambda: self.client.pages(
            "GET /repos/{owner}/{repo}/keys", rest.repos.list_deploy_keys, owner=owner, repo=name), [], full)
        payload["deploy_keys"][full] = [{"id": int(k.id), "title": str(k.title), "read_only": bool(k.read_only),
                                         "created_at": str(k.created_at), "key": str(k.key)} for k in keys]
        secrets = self._soft("GET /repos/{owner}/{repo}/actions/secrets", lambda: self.client.pages(
            "GET /repos/{owner}/{repo}/actions/secrets", rest.actions.list_repo_secrets, wrapped="secrets",
            owner=owner, repo=name), [], full)
        payload["secrets"][full] = [_secret(s) for s in secrets]
        envs = self._soft("GET /repos/{owner}/{repo}/environments", lambda: self.client.pages(
            "GET /repos/{owner}/{repo}/environments", rest.repos.get_all_environments, wrapped="environments",
            owner=owner, repo=name), [], full)
        payload["env_secrets"][full] = {}
        for env in envs:
            listed = self._soft("GET /repos/{owner}/{repo}/environments/{env}/secrets", lambda e=env.name:
                                self.client.pages("GET /repos/{owner}/{repo}/environments/{env}/secrets",
                                                  rest.actions.list_environment_secrets, wrapped="secrets",
                                                  owner=owner, repo=name, environment_name=env_path(e)), [], full)
            payload["env_secrets"][full][str(env.name)] = [_secret(s) for s in listed]
            payload["env_variables"].setdefault(full, {})[str(env.name)] = self._holds(
                "GET /repos/{owner}/{repo}/environments/{env}/variables", rest.actions.list_environment_variables,
                full, owner=owner, repo=name, environment_name=env_path(str(env.name)))
        payload["variables"][full] = self._holds("GET /repos/{owner}/{repo}/actions/variables",
                                                 rest.actions.list_repo_variables, full, owner=owner, repo=name)
        payload["workflows"][full] = self.workflows(owner, name)

    def _holds(self, call: str, method: Any, source: str, **kwargs: Any) -> dict[str, str]:
        """revoke's own `REVOKE_HOLDS_*` records of what it wrote into a secret (ids and times)."""
        listed = self._soft(call, lambda: self.client.pages(call, method, wrapped="variables", **kwargs), [], source)
        return {str(v.name): str(v.value) for v in listed if str(v.name).startswith(HOLDS_PREFIX)}

    def workflows(self, owner: str, name: str) -> dict[str, str]:
        """`.github/workflows/*.yml` through the contents API (a directory listing, then each file)."""
        rest = self.rest
        listing = self._soft("GET /repos/{owner}/{repo}/contents/{path}", lambda: self.client.call(
            "GET /repos/{owner}/{repo}/contents/{path}",
            lambda: rest.repos.get_content(owner, name, WORKFLOW_DIR).parsed_data, read=True), [],
            f"{owner}/{name}/{WORKFLOW_DIR}", absent_ok=True)
        out: dict[str, str] = {}
        for item in listing if isinstance(listing, list) else []:
            path = str(item.path)
            if item.type != "file" or not path.endswith((".yml", ".yaml")):
                continue

            def read(p: str = path) -> Any:
                return rest.repos.get_content(owner, name, p).parsed_data

            got = self.client.call("GET /repos/{owner}/{repo}/contents/{path}", read, read=True)
            out[path] = base64.b64decode(str(got.content)).decode("utf-8", errors="replace")
        return out

    def grants(self, org: str) -> list[dict[str, Any]]:
        rest = self.rest
        listed = self._soft("GET /orgs/{org}/personal-access-tokens", lambda: self.client.pages(
            "GET /orgs/{org}/personal-access-tokens", rest.orgs.list_pat_grants, org=org), [], f"orgs/{org}")
        out = []
        for g in listed:
            repos = self.client.pages("GET /orgs/{org}/personal-access-tokens/{pat_id}/repositories",
                                      rest.orgs.list_pat_grant_repositories, org=org, pat_id=g.id)
            perms = g.permissions.model_dump(exclude_unset=True) if g.permissions is not None else {}
            out.append({"id": int(g.id), "token_id": int(g.token_id), "token_name": str(g.token_name),
                        "owner": str(g.owner.login), "repositories": [str(r.full_name) for r in repos],
                        "permissions": perms, "expires_at": _iso(g.token_expires_at),
                        "last_used_at": _iso(g.token_last_used_at)})
        return out

    def org_repos(self, org: str) -> list[dict[str, Any]]:
        listed = self.client.pages("GET /orgs/{org}/repos", self.rest.repos.list_for_org, org=org)
        return [{"full_name": str(r.full_name), "private": bool(r.private)} for r in listed]
