"""GitHub App authentication against the double: the App's JWT (RS256) buys an installation token,
and the org's fine-grained PAT routes, which answer GitHub Apps only, work through the connector."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from connectors.github.transform import pat_id
from examples.lab.github_double import GithubDouble
from revoke.connector import ActionContext, ConnectorError


def _installation_tokens(gh: GithubDouble, org: str) -> list[str]:
    with gh.state.lock:
        return [v for v, t in gh.state.tokens.items() if t.kind == "installation" and t.org == org and t.live]


def test_app_lists_and_revokes_pat_grants(gh: GithubDouble, new_org: Callable[[], str],
                                          app_connector: Callable[..., Any], ctx: ActionContext) -> None:
    org = new_org()
    gh.add_repo(org, "app")
    grant, _ = gh.add_grant(org, "dev", [f"{org}/app"], {"repository": {"contents": "write"}})
    conn = app_connector(org)
    out = conn.collect()
    nodes = {n.id: n for n in out.nodes}
    pat = pat_id(org, grant)
    assert pat in nodes and nodes[pat].attrs["writes"] == ["contents"]
    assert not any("personal-access-tokens" in f.message for f in out.findings)
    assert _installation_tokens(gh, org)  # the App's JWT was traded for an installation token
    assert conn.probe(nodes[pat]).live is True
    assert conn.act("revoke", nodes[pat], ctx).changed
    assert grant not in gh.state.orgs[org].grants
    assert conn.probe(nodes[pat]).live is False


def test_explicit_installation_id(gh: GithubDouble, new_org: Callable[[], str], tmp_path: Any) -> None:
    from connectors.github import GithubConnector

    org = new_org()
    grant, _ = gh.add_grant(org, "dev", [], {"repository": {"contents": "read"}})
    app_id, installation, pem = gh.add_app(org, "pinned", {"organization_personal_access_tokens": "read"})
    (tmp_path / "k.pem").write_text(pem)
    conn = GithubConnector({"type": "github", "base_url": gh.url, "app_id": app_id, "installation_id": installation,
                            "app_private_key_path": str(tmp_path / "k.pem"), "repos": [f"{org}/none"]})
    assert conn.client.rest.orgs.list_pat_grants(org).parsed_data[0].id == grant


def test_pat_caller_gets_a_finding(gh: GithubDouble, new_org: Callable[[], str],
                                   make_connector: Callable[..., Any]) -> None:
    org = new_org()
    gh.add_repo(org, "app")
    grant, _ = gh.add_grant(org, "dev", [f"{org}/app"], {"repository": {"contents": "write"}})
    out = make_connector(orgs=[org]).collect()
    assert pat_id(org, grant) not in {n.id for n in out.nodes}
    assert any(f.code == "github.unreadable" and "personal-access-tokens" in f.message for f in out.findings)


def test_double_checks_the_app_jwt(gh: GithubDouble, new_org: Callable[[], str]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    org = new_org()
    app_id, installation, pem = gh.add_app(org, "checked", {"metadata": "read"})
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    now = int(time.time())
    url = f"{gh.url}/app/installations/{installation}/access_tokens"

    def post(key: Any, claims: dict[str, Any]) -> httpx.Response:
        return httpx.post(url, headers={"authorization": f"Bearer {jwt.encode(claims, key, algorithm='RS256')}"})

    good = {"iss": str(app_id), "iat": now - 60, "exp": now + 540}
    assert post(other, good).status_code == 401  # signed by another key
    assert post(pem, {**good, "exp": now - 1}).status_code == 401  # expired
    assert post(pem, {**good, "iss": str(app_id + 1000)}).status_code == 401  # another App
    ok = post(pem, good)
    assert ok.status_code == 201 and ok.json()["token"].startswith("ghs_") and ok.json()["expires_at"]
    assert gh.token_live(ok.json()["token"])
    # a token is not an App JWT
    assert httpx.post(url, headers={"authorization": f"Bearer {ok.json()['token']}"}).status_code == 401


def test_private_key_by_reference_only(gh: GithubDouble, tmp_path: Any) -> None:
    from connectors.github import GithubConnector

    base = {"type": "github", "base_url": gh.url, "app_id": 1, "orgs": ["acme"]}
    with pytest.raises(ConnectorError, match=r"app_private_key_path.*file path"):
        GithubConnector({**base, "app_private_key_path": "-----BEGIN PRIVATE KEY-----\nMII..."})
    with pytest.raises(ConnectorError, match="app_private_key_path: cannot read"):
        GithubConnector({**base, "app_private_key_path": str(tmp_path / "absent.pem")})
    with pytest.raises(ConnectorError, match="go together"):
        GithubConnector({"type": "github", "app_id": 1, "orgs": ["acme"]})
