"""The supply-chain entry point of the seed incident, seeded into the GitHub double.

`acme/ai-gateway`'s release workflow runs a third-party scanner action pinned to a tag
(`scanner-org/scan-action@v0.28.0`); its `publish` job reads `PYPI_TOKEN` (a token that can
publish `ai-gateway`), `AWS_DEPLOY_KEY` (an AWS access key that continues into the rest of the
demo's chain), `RELEASE_BOT_TOKEN` (a maintainer's classic PAT) and `DEPLOY_SSH_KEY` (the private
half of a deploy key with write access). Whoever can move the scanner's tag reads them all.

`seed(double)` returns what `revoke demo` needs: the connector block for `revoke.yaml`, the
environment variables it names (lab material only, generated here), the inventory edges that say
what each Actions secret holds (a secret's value can never be read back), and the compromised
source node.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from examples.lab.github_double import GithubDouble

ORG, REPO = "acme", "ai-gateway"
ACTION = "scanner-org/scan-action"
SOURCE = f"github:repo:{ACTION}"
ADMIN_ENV, LEAKED_ENV, PYPI_ENV = "REVOKE_LAB_GITHUB_TOKEN", "REVOKE_LAB_LEAKED_GITHUB", "REVOKE_LAB_PYPI_TOKENS"

RELEASE_WORKFLOW = """\
name: release
on:
  push:
    tags: ['v*']
jobs:
  publish:
    runs-on: ubuntu-latest
    environment: release
    steps:
      - uses: actions/checkout@b4ffde65f46336ab88eb53be808477a3936bae11
      - uses: scanner-org/scan-action@v0.28.0
      - run: python -m build && twine upload dist/*
        env:
          TWINE_PASSWORD: ${{ secrets.PYPI_TOKEN }}
          AWS_ACCESS: ${{ secrets.AWS_DEPLOY_KEY }}
          GH_TOKEN: ${{ secrets.RELEASE_BOT_TOKEN }}
          SSH_KEY: ${{ secrets.DEPLOY_SSH_KEY }}
"""


@dataclass
class GithubDemo:
    config: dict[str, Any]
    env: dict[str, str]
    inventory_edges: list[dict[str, str]] = field(default_factory=list)
    source: str = SOURCE
    facts: dict[str, Any] = field(default_factory=dict)  # ids only, for the tests and the demo's summary


def _ssh_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    return public.decode() + " release-push", private.decode()


def _pypi_token(project: str) -> str:
    import pypitoken

    token = pypitoken.Token.create(domain="pypi.org", identifier=secrets.token_hex(16), key=secrets.token_hex(16),
                                   prefix="pypi")
    token.restrict(project_names=[project])
    return token.dump()


def seed(double: GithubDouble, *, aws_key_id: str | None = None, aws_secret: str | None = None,
         project: str = REPO) -> GithubDemo:
    """Seed the double; `aws_key_id`/`aws_secret` are the demo's AWS key that the release job holds."""
    from connectors.github.transform import deploy_key_id, env_secret_id, job_id, repo_secret_id, token_id
    from connectors.pypi import token_node_id
    from revoke.model import fingerprint

    full = f"{ORG}/{REPO}"
    admin = double.add_token("acme-admin")
    bot = double.add_token("release-bot")
    pypi_value = _pypi_token(project)
    public, private = _ssh_pair()
    double.add_repo(ORG, REPO)
    double.add_environment(full, "release")
    double.add_workflow(full, "release.yml", RELEASE_WORKFLOW)
    key_id = double.add_deploy_key(full, public, title="release push", read_only=False)
    double.add_secret(full, "PYPI_TOKEN", pypi_value, env="release")
    double.add_secret(full, "RELEASE_BOT_TOKEN", bot)
    double.add_secret(full, "DEPLOY_SSH_KEY", private)
    aws_value = f"{aws_key_id}:{aws_secret}" if aws_key_id and aws_secret else "unset"
    double.add_secret(full, "AWS_DEPLOY_KEY", aws_value)
    edges = [
        {"from": env_secret_id(full, "release", "PYPI_TOKEN"), "to": token_node_id(pypi_value), "rel": "stores"},
        {"from": repo_secret_id(full, "RELEASE_BOT_TOKEN"), "to": token_id(fingerprint(bot)), "rel": "stores"},
        {"from": repo_secret_id(full, "DEPLOY_SSH_KEY"), "to": deploy_key_id(full, key_id), "rel": "stores"},
    ]
    if aws_key_id:
        edges.append({"from": repo_secret_id(full, "AWS_DEPLOY_KEY"), "to": f"aws:access_key:{aws_key_id}",
                      "rel": "stores"})
    config = {"type": "github", "orgs": [ORG], "base_url": double.url, "token_env": ADMIN_ENV,
              "leaked_tokens_env": LEAKED_ENV, "pypi_tokens_env": PYPI_ENV, "retry_seconds": 2}
    facts = {"repo": full, "deploy_key": deploy_key_id(full, key_id), "bot_token": token_id(fingerprint(bot)),
             "pypi_token": token_node_id(pypi_value), "package": f"pypi:package:{project}",
             "deploy_secret": repo_secret_id(full, "DEPLOY_SSH_KEY"),
             # the job the re-tagged action runs as: an inventory edge job -> the runner host joins the
             # rest of the chain (`{from: <job>, to: host:ci-runner-7, rel: can_assume}`)
             "job": job_id(full, ".github/workflows/release.yml", "publish")}
    env = {ADMIN_ENV: admin, LEAKED_ENV: bot, PYPI_ENV: pypi_value}
    return GithubDemo(config, env, edges, SOURCE, facts)


PINNED_SHA = "c" * 40  # the scanner's last reviewed commit, as a responder pins it


def pin_action(double: GithubDouble, repo: str = f"{ORG}/{REPO}") -> str:
    """Pin the scanner action to a commit in the release workflow, as a responder commits it: until
    then whoever moves the tag again reads every replacement written back into the job's secrets.
    Returns the `uses:` line now in the workflow."""
    pinned = f"{ACTION}@{PINNED_SHA}"
    double.add_workflow(repo, "release.yml", RELEASE_WORKFLOW.replace(f"{ACTION}@v0.28.0", pinned))
    return pinned
