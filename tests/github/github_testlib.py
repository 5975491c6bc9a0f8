"""Helpers of the GitHub tests: workflow texts, PyPI tokens, SSH keys, response validation."""

from __future__ import annotations

from functools import cache
from typing import Any

RELEASE_WORKFLOW = """\
name: release
on:
  push:
    tags: ['v*']
env:
  REGISTRY: ghcr.io
jobs:
  scan:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: scanner-org/scan-action@v0.28.0
  publish:
    runs-on: ubuntu-latest
    environment: release
    steps:
      - uses: actions/checkout@b4ffde65f46336ab88eb53be808477a3936bae11
      - uses: scanner-org/scan-action@v0.28.0
      - uses: pinned-org/setup-tool@0123456789abcdef0123456789abcdef01234567
      - run: twine upload dist/*
        env:
          TWINE_PASSWORD: ${{ secrets.PYPI_TOKEN }}
          AWS_KEY: ${{ secrets['AWS_DEPLOY_KEY'] }}
"""


def pypi_token(projects: list[str] | None, identifier: str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0") -> str:
    import pypitoken

    token = pypitoken.Token.create(domain="pypi.org", identifier=identifier, key="lab-key-not-pypis", prefix="pypi")
    if projects:
        token.restrict(project_names=projects)
    return token.dump()


def ssh_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pub = Ed25519PrivateKey.generate().public_key()
    return pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " lab"


@cache
def _adapter(spec: str) -> Any:
    import githubkit_schemas.latest.models as models
    from pydantic import TypeAdapter

    types = []
    for part in spec.split("|"):
        if part.startswith("list["):
            types.append(list[getattr(models, part[5:-1])])  # type: ignore[misc]
        else:
            types.append(getattr(models, part))
    union: Any = types[0] if len(types) == 1 else types[0] | types[1]
    return TypeAdapter(union)


def validate_responses(responses: list[tuple[Any, int, Any]]) -> list[str]:
    """Parse each body with the githubkit model its route names; the failures, as text."""
    bad = []
    for route, status, body in responses:
        if route.model is None or body is None:
            continue
        try:
            _adapter(route.model).validate_python(body)
        except Exception as exc:  # pydantic's ValidationError: report the route and the first error
            bad.append(f"{route.method} {route.pattern.pattern} {status}: {str(exc).splitlines()[:3]}")
    return bad
