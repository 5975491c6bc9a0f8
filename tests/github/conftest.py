"""One GitHub REST double per test session; each test seeds its own org so tests stay independent.
At the end of the session every response the double sent is parsed with githubkit's own models."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from examples.lab.github_double import GithubDouble
from revoke.connector import ActionContext
from tests.github.github_testlib import validate_responses

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def gh() -> Iterator[GithubDouble]:
    with GithubDouble() as double:
        double.state.page_size_cap = 2  # every listing needs several pages
        yield double
        bad = validate_responses(double.responses)
        assert not bad, f"responses that githubkit's models reject: {bad[:5]}"


@pytest.fixture(autouse=True)
def _clear_faults(gh: GithubDouble) -> Iterator[None]:
    yield
    gh.secondary_limit(0)


@pytest.fixture
def new_org(gh: GithubDouble) -> Callable[[], str]:
    def make() -> str:
        org = f"org{next(_counter):03d}"
        gh.add_org(org)
        return org

    return make


@pytest.fixture
def admin_env(gh: GithubDouble, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GH_LAB_ADMIN", gh.add_token("lab-admin"))
    return "GH_LAB_ADMIN"


@pytest.fixture
def make_connector(gh: GithubDouble, admin_env: str) -> Callable[..., Any]:
    from connectors.github import GithubConnector

    def make(**options: Any) -> GithubConnector:
        return GithubConnector({"type": "github", "base_url": gh.url, "token_env": admin_env, "retry_seconds": 3,
                                **options})

    return make


@pytest.fixture
def ctx() -> ActionContext:
    return ActionContext(incident="inc-gh-test", dry_run=False)


@pytest.fixture
def env_values(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    def put(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        assert os.environ[name] == value

    return put


@pytest.fixture
def app_connector(gh: GithubDouble, tmp_path: Any) -> Callable[..., Any]:
    """A connector authenticated as a GitHub App installed on `org` (its private key in a file)."""
    from connectors.github import GithubConnector

    def make(org: str, **options: Any) -> GithubConnector:
        app_id, _, pem = gh.add_app(org, f"revoke-{org}", {"organization_personal_access_tokens": "write",
                                                          "administration": "write"})
        path = tmp_path / f"{org}-app.pem"
        path.write_text(pem)
        return GithubConnector({"type": "github", "base_url": gh.url, "app_id": app_id,
                                "app_private_key_path": str(path), "orgs": [org], "retry_seconds": 3, **options})

    return make
