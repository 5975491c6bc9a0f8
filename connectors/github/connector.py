"""The GitHub connector class: its options, its action table, and collect/probe over the client.

Config (`revoke.yaml`):
    - type: github
      orgs: [acme]                  # every repository of each org, its org secrets and PAT grants
      repos: [someone/tool]         # and/or single repositories
      token_env: GITHUB_TOKEN       # env var holding the token revoke acts with, or a GitHub App:
      app_id: 123456                # the App's id
      app_private_key_path: /etc/revoke/github-app.pem   # its private key, by path (never inline)
      installation_id: 7890         # optional; else the installation on the first org is looked up
      base_url: https://ghe.example.com/api/v3/   # optional (GitHub Enterprise Server, the lab double);
                                                  # plain http only on loopback
      leaked_tokens_env: LEAKED_GITHUB_TOKENS     # optional: env var holding leaked token values
      pypi_tokens_env: LEAKED_PYPI_TOKENS         # optional: env var holding leaked PyPI tokens
      timeout: 30
      retry_seconds: 10

Tokens named by `leaked_tokens_env` become `github:token:<sha256>` nodes (status from `GET /user`);
their values stay in memory and are only ever sent to `POST /credentials/revoke` and `GET /user`.
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from pydantic import Field, field_validator, model_validator

from connectors import pypi
from connectors.github import actions
from connectors.github.collect import Reader
from connectors.github.transform import (
    DEPLOY_KEY_TYPE,
    PAT_TYPE,
    PROVIDER,
    SECRET_TYPE,
    TOKEN_TYPE,
    leaked_token_node,
    transform_owner,
)
from connectors.recognize import GITHUB_TOKEN_RE
from revoke.connector import (
    ActionContext,
    ActionResult,
    ActionTable,
    BaseConnector,
    Collected,
    ConnectorError,
    ConnectorOptions,
    ProbeResult,
    Replacement,
)
from revoke.model import Node, NodeKind, fingerprint

if TYPE_CHECKING:
    from connectors.github.client import AppCredentials, GithubClient

log = structlog.get_logger()

TOKENS, TOKEN_KINDS = (TOKEN_TYPE,), (NodeKind.TOKEN,)
PATS = (PAT_TYPE,)
KEYS, KEY_KINDS = (DEPLOY_KEY_TYPE,), (NodeKind.SSH_KEY,)


class GithubOptions(ConnectorOptions):
    orgs: list[str] = Field(default_factory=list)
    repos: list[str] = Field(default_factory=list)
    token_env: str = "GITHUB_TOKEN"
    app_id: int | None = Field(default=None, gt=0)
    app_private_key_path: str | None = None
    installation_id: int | None = Field(default=None, gt=0)
    base_url: str | None = None
    leaked_tokens_env: str | None = None
    pypi_tokens_env: str | None = None
    timeout: float = Field(default=30, gt=0)
    retry_seconds: float = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _something_to_collect(self) -> GithubOptions:
        if not (self.orgs or self.repos or self.leaked_tokens_env or self.pypi_tokens_env):
            raise ValueError("name at least one of orgs, repos, leaked_tokens_env, pypi_tokens_env")
        if (self.app_id is None) != (self.app_private_key_path is None):
            raise ValueError("app_id and app_private_key_path go together")
        if self.app_id is not None and self.installation_id is None and not self.orgs:
            raise ValueError("with app_id, name installation_id or an org to find the installation on")
        return self

    @field_validator("app_private_key_path")
    @classmethod
    def _key_by_reference(cls, value: str | None) -> str | None:
        if value is not None and ("-----BEGIN" in value or "\n" in value):
            raise ValueError("give the private key's file path, not the key itself")
        return value

    @field_validator("repos")
    @classmethod
    def _full_names(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", item):
                raise ValueError("each repo is 'owner/name'")
        return value

    @field_validator("base_url")
    @classmethod
    def _loopback_plaintext(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("plain http only on loopback; use https")
        return value


def env_values(name: str | None) -> list[str]:
    """The whitespace-separated values of the named variable (none when it is unset)."""
    return os.environ.get(name, "").split() if name else []


class GithubConnector(BaseConnector):
    name = PROVIDER
    options_model = GithubOptions
    # GitHub's fine-grained permission names (a GitHub App or a fine-grained PAT)
    operations = {
        "collect": ["metadata:read", "administration:read", "secrets:read", "variables:read", "environments:read",
                    "contents:read", "organization_secrets:read", "organization_variables:read",
                    "organization_personal_access_tokens:read"],
        "probe": ["administration:read", "organization_personal_access_tokens:read",
                  "none: a leaked token is probed with itself (GET /user)"],
        "write_store": ["secrets:write", "variables:write", "environments:write", "organization_secrets:write",
                        "organization_variables:write"],
        "store_holds": ["secrets:read", "variables:read", "organization_secrets:read", "organization_variables:read"],
    }
    table = ActionTable()

    def __init__(self, config: dict[str, Any]) -> None:
        from connectors.github.client import GithubClient

        super().__init__(config)
        self.opts = GithubOptions.parse(config, PROVIDER)
        token = os.environ.get(self.opts.token_env) or None
        self.client: GithubClient = GithubClient(token, self.opts.base_url, self.opts.timeout,
                                                 self.opts.retry_seconds, app=self._app())
        # leaked values by node id: memory only, never journaled or stored
        self._values: dict[str, str] = {}
        for value in env_values(self.opts.leaked_tokens_env):
            if GITHUB_TOKEN_RE.match(value):
                self._values[leaked_token_node(fingerprint(value), "", None, None).id] = value

    def _app(self) -> AppCredentials | None:
        from connectors.github.client import AppCredentials

        if self.opts.app_id is None or self.opts.app_private_key_path is None:
            return None
        try:
            with open(self.opts.app_private_key_path, encoding="ascii") as fh:
                pem = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConnectorError(PROVIDER, "config", f"field app_private_key_path: cannot read "
                                                     f"{self.opts.app_private_key_path} ({type(exc).__name__})") from None
        if "PRIVATE KEY-----" not in pem:
            raise ConnectorError(PROVIDER, "config", f"field app_private_key_path: "
                                                     f"{self.opts.app_private_key_path} holds no PEM private key")
        return AppCredentials(str(self.opts.app_id), pem, self.opts.installation_id,
                              self.opts.orgs[0] if self.opts.orgs else "")

    # -- collect ---------------------------------------------------------------------------------

    def collect(self) -> Collected:
        started = time.perf_counter()
        out = Collected()
        reader = Reader(self.client)
        owners: dict[str, list[dict[str, Any]]] = {org: reader.org_repos(org) for org in self.opts.orgs}
        singles: dict[str, list[dict[str, Any]]] = {}
        for full in self.opts.repos:
            owner = full.split("/", 1)[0]
            if owner not in owners:
                singles.setdefault(owner, []).append(reader.repo_summary(full))
        for owner, repos in [*owners.items(), *singles.items()]:
            part = transform_owner(reader.owner(owner, repos, is_org=owner in owners))
            out.nodes.extend(part.nodes)
            out.edges.extend(part.edges)
            out.findings.extend(part.findings)
        for node_id, value in sorted(self._values.items()):
            if value.startswith(actions.INSTALLATION_PREFIX):
                live = self.client.installation_token_live(value, node_id)
                out.nodes.append(leaked_token_node(fingerprint(value), value[:4], None, live))
            else:
                login = self.client.token_login(value, node_id)
                out.nodes.append(leaked_token_node(fingerprint(value), value[:4], login, login is not None))
        for value in env_values(self.opts.pypi_tokens_env):
            nodes, edges, findings = pypi.token_graph(value)
            out.nodes.extend(nodes)
            out.edges.extend(edges)
            out.findings.extend(findings)
        out.findings.extend(reader.findings)
        out.meta = {"orgs": list(self.opts.orgs), "repos": sum(len(r) for r in owners.values()) + len(self.opts.repos),
                    "leaked_tokens": len(self._values), "seconds": round(time.perf_counter() - started, 3)}
        log.info("github.collect", nodes=len(out.nodes), edges=len(out.edges), findings=len(out.findings))
        return out

    # -- actions -----------------------------------------------------------------------------------

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        result = self.spec_for(action, node).handler(self, node, ctx)
        log.info("github.action", node=node.id, action=action, changed=result.changed, dry_run=ctx.dry_run,
                 incident=ctx.incident)
        return result

    @table.action("revoke", types=TOKENS, kinds=TOKEN_KINDS, reversible=False,
                  permissions=["none: POST /credentials/revoke is unauthenticated (an installation token "
                               "revokes itself)"])
    def _revoke_token(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.revoke_token(self.client, node, self._values.get(node.id), ctx)

    @table.action("revoke", types=PATS, kinds=TOKEN_KINDS, reversible=False,
                  permissions=["organization_personal_access_tokens:write"])
    def _revoke_grant(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.revoke_grant(self.client, node, ctx)

    @table.action("revoke", types=KEYS, kinds=KEY_KINDS, reversible=False, permissions=["administration:write"])
    def _revoke_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.delete_deploy_key(self.client, node, ctx, action="revoke")

    # GitHub cannot disable a deploy key: containing it deletes it
    @table.action("disable", types=KEYS, kinds=KEY_KINDS, reversible=False, permissions=["administration:write"])
    def _disable_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.delete_deploy_key(self.client, node, ctx, action="disable")

    @table.action("rotate", types=KEYS, kinds=KEY_KINDS, reversible=False,
                  permissions=["administration:write", "administration:read"])
    def _rotate_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.delete_deploy_key(self.client, node, ctx, action="rotate")

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        if node.kind is not NodeKind.SSH_KEY or not node.id.startswith(f"{PROVIDER}:{DEPLOY_KEY_TYPE}:"):
            raise self._unsupported("create_replacement", node.id)
        return actions.create_deploy_key(self.client, node, ctx)

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult:
        node = Node(new_id, NodeKind.SSH_KEY, PROVIDER)
        return actions.delete_deploy_key(self.client, node, ctx, action="discard_replacement")

    def siblings(self, node: Node) -> set[str]:
        if not node.id.startswith(f"{PROVIDER}:{DEPLOY_KEY_TYPE}:"):
            return set()
        return actions.sibling_keys(self.client, node)

    # -- Actions secrets are stores ------------------------------------------------------------------

    def write_store(self, store: Node, old: Node, replacement: Replacement, ctx: ActionContext) -> ActionResult:
        if not store.id.startswith(f"{PROVIDER}:{SECRET_TYPE}:"):
            raise self._unsupported("write_store", store.id)
        return actions.write_secret(self.client, store, actions.secret_value(store, replacement), ctx,
                                    credential=replacement.new_id)

    def store_holds(self, store: Node) -> set[str]:
        """An Actions secret's value can never be read back: what revoke recorded beside it when it
        wrote it, while the secret's `updated_at` still matches the record (`actions.secret_holds`)."""
        if not store.id.startswith(f"{PROVIDER}:{SECRET_TYPE}:"):
            raise self._unsupported("store_holds", store.id)
        return actions.secret_holds(self.client, store)

    # -- probes ------------------------------------------------------------------------------------

    def probe(self, node: Node) -> ProbeResult:
        try:
            if node.id.startswith(f"{PROVIDER}:{TOKEN_TYPE}:"):
                return actions.probe_token(self.client, node, self._values.get(node.id))
            if node.id.startswith(f"{PROVIDER}:{PAT_TYPE}:"):
                return actions.probe_grant(self.client, node)
            if node.id.startswith(f"{PROVIDER}:{DEPLOY_KEY_TYPE}:"):
                return actions.probe_deploy_key(self.client, node)
        except ConnectorError as err:
            return ProbeResult(node.id, None, f"probe failed: {err}")
        return ProbeResult(node.id, None, f"no probe for {node.kind.value}")
