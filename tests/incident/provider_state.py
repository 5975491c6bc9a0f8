"""Read the lab providers' own state: the judge of every incident test."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import hvac

from examples.lab.demo import VAULT_TOKEN_ENV, Lab

USERS = ("ci-deployer", "app-backend", "data-pipeline")


def aws_keys(lb: Lab) -> dict[str, dict[str, str]]:
    iam = boto3.client("iam", endpoint_url=lb.aws_endpoint, region_name="us-east-1")
    return {u: {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=u)["AccessKeyMetadata"]}
            for u in USERS}


def vault_kv(lb: Lab, path: str) -> dict[str, Any]:
    vault = hvac.Client(url=lb.vault_url, token=os.environ[VAULT_TOKEN_ENV])
    return vault.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"]["data"]


def sm_secret(lb: Lab, name: str) -> dict[str, Any]:
    sm = boto3.client("secretsmanager", endpoint_url=lb.aws_endpoint, region_name="us-east-1")
    return json.loads(sm.get_secret_value(SecretId=name)["SecretString"])


def gcp_keys(lb: Lab, email: str) -> dict[str, bool]:
    """key id -> enabled, from the double's own state."""
    keys = lb.gcp.account_info(email)["keys"]
    return {k: not lb.gcp.key_info(k)["disabled"] for k in keys}
