"""Benchmark: AwsConnector.collect() against a naive sequential listing, same server, same run.

    python bench/aws_collect.py [--users 2000] [--keys 2] [--roles 500] [--secrets 200] [--rounds 1]

moto runs in a child process (an in-process server shares the GIL with the client), with
the users, keys and roles created inside it before it serves. The naive baseline is what
a first collector would do: list users, then for each user list its keys, then ask each
key's last use, then list roles; one call at a time. The secrets (every other one with a
resource policy, every fourth one under a customer managed KMS key) are created through the API
before the timed rounds; the baseline does not read them, so they weigh on the connector only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.lab.aws_lab import LAB_ENV, lab_client
from examples.lab.aws_process import MotoProcess


def naive(endpoint_url: str) -> tuple[int, int, int]:
    iam = lab_client("iam", endpoint_url, max_pool=1)
    users = [u for p in iam.get_paginator("list_users").paginate() for u in p["Users"]]
    keys = 0
    for user in users:
        for page in iam.get_paginator("list_access_keys").paginate(UserName=user["UserName"]):
            for key in page["AccessKeyMetadata"]:
                iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
                keys += 1
    roles = [r for p in iam.get_paginator("list_roles").paginate() for r in p["Roles"]]
    return len(users), keys, len(roles)


def seed_secrets(endpoint_url: str, count: int) -> None:
    """`count` secrets, half with a resource policy, a quarter under a customer managed key."""
    sm = lab_client("secretsmanager", endpoint_url)
    key_id = lab_client("kms", endpoint_url).create_key()["KeyMetadata"]["KeyId"] if count else ""
    deny = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:DeleteSecret", "Resource": "*"}]})
    for i in range(count):
        extra = {"KmsKeyId": key_id} if i % 4 == 0 else {}
        arn = sm.create_secret(Name=f"bench-secret-{i:04d}", SecretString=f"value-{i}", **extra)["ARN"]
        if i % 2 == 0:
            sm.put_resource_policy(SecretId=arn, ResourcePolicy=deny)


def connector(endpoint_url: str) -> tuple[int, int, int]:
    from revoke.connector import connector_class

    got = connector_class("aws")({"endpoint_url": endpoint_url}).collect()
    kinds: dict[str, int] = {}
    for node in got.nodes:
        kinds[node.kind.value] = kinds.get(node.kind.value, 0) + 1
    return kinds.get("user", 0) - 1, kinds.get("access_key", 0), kinds.get("role", 0)  # minus the account root


def timed(fn: Any, url: str) -> tuple[float, tuple[int, int, int]]:
    start = time.perf_counter()
    result = fn(url)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=2)
    parser.add_argument("--roles", type=int, default=500)
    parser.add_argument("--secrets", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    for key, value in LAB_ENV.items():
        os.environ.setdefault(key, value)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # quiet info events
    started = time.perf_counter()
    bulk = {"users": args.users, "keys_per_user": args.keys, "roles": args.roles}
    with MotoProcess(bulk=bulk) as server:
        print(f"moto child process seeded and serving in {time.perf_counter() - started:.1f}s: "
              f"{args.users} users x {args.keys} keys, {args.roles} roles")
        seed_secrets(server.endpoint_url, args.secrets)
        for round_no in range(args.rounds):
            base_s, base = timed(naive, server.endpoint_url)
            ours_s, ours = timed(connector, server.endpoint_url)
            assert base == ours, f"naive saw {base}, connector saw {ours}"
            print(f"round {round_no + 1}: naive sequential {base_s:.2f}s, connector {ours_s:.2f}s "
                  f"(users, keys, roles = {ours}); speed-up x{base_s / ours_s:.1f}")


if __name__ == "__main__":
    main()
