"""The GitHub double behaves as GitHub's REST description says: checked over HTTP with httpx (the
client githubkit itself uses), and every body it sent is parsed with githubkit's models at the
end of the session (tests/github/conftest.py)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
from nacl.public import PublicKey, SealedBox

from examples.lab.github_double import GithubDouble
from examples.lab.github_double_routes import ROUTES
from tests.github.github_testlib import validate_responses


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": "application/vnd.github+json"}


def test_every_route_cites_its_rest_docs_and_names_a_model() -> None:
    for r in ROUTES:
        assert r.docs.startswith("https://docs.github.com/rest/") and "#" in r.docs, r.pattern.pattern
        assert r.model is not None or r.method in ("DELETE", "POST", "PATCH"), r.pattern.pattern


def test_revoked_token_answers_401_on_get_user(gh: GithubDouble) -> None:
    token = gh.add_token("maintainer")
    assert httpx.get(f"{gh.url}/user", headers=_auth(token)).json()["login"] == "maintainer"
    # the credential revocation API is unauthenticated
    resp = httpx.post(f"{gh.url}/credentials/revoke", json={"credentials": [token, "ghp_unknownvalue"]})
    assert resp.status_code == 202
    after = httpx.get(f"{gh.url}/user", headers=_auth(token))
    assert after.status_code == 401 and after.json()["message"] == "Bad credentials"
    assert not gh.token_live(token)
    too_many = httpx.post(f"{gh.url}/credentials/revoke", json={"credentials": ["x"] * 1001})
    assert too_many.status_code == 422


def test_lists_paginate_with_link_headers_and_rate_limit_headers(gh: GithubDouble,
                                                                 new_org: Callable[[], str]) -> None:
    org, token = new_org(), gh.add_token("admin")
    for i in range(5):
        gh.add_repo(org, f"r{i}")
    seen: list[str] = []
    url: str | None = f"{gh.url}/orgs/{org}/repos?per_page=2"
    pages = 0
    while url:
        resp = httpx.get(url, headers=_auth(token))
        assert int(resp.headers["x-ratelimit-remaining"]) < int(resp.headers["x-ratelimit-limit"])
        assert resp.headers["x-ratelimit-resource"] == "core"
        seen += [r["full_name"] for r in resp.json()]
        url = resp.links.get("next", {}).get("url")
        pages += 1
    assert pages == 3 and sorted(seen) == sorted(f"{org}/r{i}" for i in range(5))


def test_secondary_rate_limit_on_demand(gh: GithubDouble) -> None:
    token = gh.add_token("admin")
    gh.secondary_limit(1)
    limited = httpx.get(f"{gh.url}/user", headers=_auth(token))
    assert limited.status_code == 403 and "secondary rate limit" in limited.json()["message"]
    assert limited.headers["retry-after"] == "1"
    assert httpx.get(f"{gh.url}/user", headers=_auth(token)).status_code == 200


def test_secret_put_is_a_sealed_box_for_the_current_key(gh: GithubDouble, new_org: Callable[[], str]) -> None:
    org, token = new_org(), gh.add_token("admin")
    gh.add_repo(org, "app")
    key = httpx.get(f"{gh.url}/repos/{org}/app/actions/secrets/public-key", headers=_auth(token)).json()
    box = SealedBox(PublicKey(base64.b64decode(key["key"]))).encrypt(b"lab-value-1")
    put = httpx.put(f"{gh.url}/repos/{org}/app/actions/secrets/DEPLOY",
                    json={"encrypted_value": base64.b64encode(box).decode(), "key_id": key["key_id"]},
                    headers=_auth(token))
    assert put.status_code == 201
    assert gh.secret_value(f"{org}/app", "DEPLOY") == "lab-value-1"  # opened with the private half
    wrong_key = httpx.put(f"{gh.url}/repos/{org}/app/actions/secrets/DEPLOY",
                          json={"encrypted_value": base64.b64encode(box).decode(), "key_id": "stale"},
                          headers=_auth(token))
    assert wrong_key.status_code == 422
    listed = httpx.get(f"{gh.url}/repos/{org}/app/actions/secrets", headers=_auth(token)).json()
    assert listed["total_count"] == 1 and "encrypted_value" not in str(listed)


def test_revoked_pat_grant_loses_the_org(gh: GithubDouble, new_org: Callable[[], str]) -> None:
    org = new_org()
    admin = gh.add_installation_token(org)  # the org's PAT routes answer GitHub Apps only
    gh.add_repo(org, "app")
    grant, pat = gh.add_grant(org, "dev", [f"{org}/app"], {"repository": {"contents": "write"}})
    assert httpx.get(f"{gh.url}/repos/{org}/app", headers=_auth(pat)).status_code == 200
    resp = httpx.post(f"{gh.url}/orgs/{org}/personal-access-tokens/{grant}", json={"action": "revoke"},
                      headers=_auth(admin))
    assert resp.status_code == 204
    assert httpx.get(f"{gh.url}/repos/{org}/app", headers=_auth(pat)).status_code == 403
    assert httpx.get(f"{gh.url}/user", headers=_auth(pat)).status_code == 200  # the token itself lives on


def test_model_validation_catches_a_drifted_shape(gh: GithubDouble) -> None:
    """The session-end check is not vacuous: a body missing a required field fails it."""
    route = next(r for r in ROUTES if r.model == "DeployKey")
    assert validate_responses([(route, 200, {"id": 1, "key": "ssh-ed25519 AAAA", "title": "t"})])
    assert not validate_responses([(route, 200, {"id": 1, "key": "ssh-ed25519 AAAA", "title": "t", "url": "u",
                                                 "verified": True, "created_at": "2024-01-01T00:00:00Z",
                                                 "read_only": True})])
