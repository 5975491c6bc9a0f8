"""Lab AWS: a moto server on loopback, and the demo's AWS part.

`MotoServer` runs moto in this process (fast to start, for tests); `examples/lab/aws_process.py`
runs it in a child process, for benchmarks and the demo, since an in-process server shares the
GIL with the client and threads barely help.

Credentials for the lab are moto's `testing` pair. They are handed out in `server.env` (a
mapping for a child process or `monkeypatch`) rather than written into `os.environ`.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
LAB_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
IOT_POLICY = "device-telemetry"
# endpoints served by a MotoServer of this process: their IoT fleet can be seeded in memory
_IN_PROCESS: set[str] = set()


class LabError(RuntimeError):
    """The lab server could not start or be seeded. Never carries secret values."""


def speed_up_moto_dispatch() -> None:
    """moto's server lists its own package directory (os.listdir + an isdir per entry) on every
    request to route it, about a third of its time per call here. The listing cannot change
    while the process runs, so it is computed once. Likewise the method names of a response
    class, which it reads with `inspect.getmembers` on every request. Routing and behaviour are
    unchanged."""
    from moto import backends
    from moto.core import responses

    if getattr(backends.list_of_moto_modules, "_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def cached() -> Iterable[str]:
        return modules

    cached._cached = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = cached
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)


class MotoServer:
    """`with MotoServer() as aws:` a moto server at `aws.endpoint_url` (127.0.0.1, free port)."""

    def __init__(self) -> None:
        self.endpoint_url = ""
        self.env = dict(LAB_ENV)
        self._server: Any = None

    def __enter__(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        speed_up_moto_dispatch()
        # one line per request otherwise, and a traceback for each call moto does not implement
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        # moto keeps its state per process, not per server: start from an empty account
        self.reset()
        _IN_PROCESS.add(self.endpoint_url)
        return self

    def reset(self) -> None:
        """Drop every resource (moto's own reset endpoint)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            _IN_PROCESS.discard(self.endpoint_url)
            self._server.stop()
            self._server = None


def lab_client(service: str, endpoint_url: str, *, max_pool: int = 16) -> Any:
    """A boto3 client for the lab server with the lab credentials passed explicitly."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=LAB_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LAB_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(max_pool_connections=max_pool, retries={"mode": "standard", "max_attempts": 3}),
    )


def parallel(fn: Callable[[Any], Any], items: Iterable[Any], workers: int = 8) -> list[Any]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def policy_json(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _key_pair(resp: dict[str, Any]) -> dict[str, str]:
    key = resp["AccessKey"]
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def _iot_device(iot: Any, ca_pem: str, i: int, cert_pem: str) -> tuple[str, str]:
    cert_id = iot.register_certificate(certificatePem=cert_pem, caCertificatePem=ca_pem, setAsActive=True)[
        "certificateId"]
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT_ID}:cert/{cert_id}"
    thing = f"device-{i:04d}"
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=arn)
    iot.attach_policy(policyName=IOT_POLICY, target=arn)
    return cert_id, cert_pem


def _iot_fleet_in_memory(certs: list[str], ca_pem: str) -> list[tuple[str, str]]:
    """The same four calls per device, made on moto's backend of this process instead of over
    HTTP (800 HTTP calls cost seconds; this costs milliseconds). The CA and the policy were
    created through the API, so only the fleet skips it."""
    from moto.iot.models import iot_backends

    backend = iot_backends[ACCOUNT_ID][REGION]
    out = []
    for i, cert_pem in enumerate(certs):
        cert = backend.register_certificate(cert_pem, ca_pem, True, "ACTIVE")
        thing = f"device-{i:04d}"
        backend.create_thing(thing, None, None)  # type: ignore[arg-type]  # moto takes None: no type, no attributes
        backend.attach_thing_principal(thing, cert.arn)
        backend.attach_policy(IOT_POLICY, cert.arn)
        out.append((cert.certificate_id, cert_pem))
    return out


def seed_demo(
    endpoint_url: str,
    ca_cert_pem: bytes | str,
    ca_key_pem: bytes | str,
    devices: int = 200,
) -> dict[str, Any]:
    """Create the demo's AWS part on the lab server and return its identifiers.

    IAM users ci-deployer (1 key), app-backend (1 key), data-pipeline (2 keys, the second
    stored in the Secrets Manager secret `prod/pipeline` as JSON); role deploy-role trusted by
    ci-deployer's ARN (and allowed by ci-deployer's identity policy); an app-backend policy
    reading secrets under `prod/*`; an IoT CA registered from `ca_cert_pem` and `devices`
    P-256 device certificates it signed, each with a thing and the policy `device-telemetry`.

    Returns `{"account_id", "region", "endpoint_url", "users": {name: arn}, "role_arn",
    "secret_arn", "keys": {"ci-deployer": {...}, "app-backend": {...}, "data-pipeline":
    [{...}, {...}]}, "iot_ca_id", "iot_certificate_ids": [...], "iot_certificate_pems":
    {id: pem}, "things": [...], "iot_policy", "seconds"}`; each key is `{"access_key_id", "secret_access_key"}` (lab
    material, for planting into Vault and the runner environment).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from examples.lab.pki import make_leaf, pem

    started = time.perf_counter()
    ca_pem = ca_cert_pem.decode() if isinstance(ca_cert_pem, bytes) else ca_cert_pem
    key_pem = ca_key_pem.encode() if isinstance(ca_key_pem, str) else ca_key_pem
    ca_cert = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(key_pem, password=None)

    iam = lab_client("iam", endpoint_url)
    sm = lab_client("secretsmanager", endpoint_url)
    iot = lab_client("iot", endpoint_url)

    users = {}
    for name in ("ci-deployer", "app-backend", "data-pipeline"):
        users[name] = iam.create_user(UserName=name)["User"]["Arn"]
    keys: dict[str, Any] = {
        "ci-deployer": _key_pair(iam.create_access_key(UserName="ci-deployer")),
        "app-backend": _key_pair(iam.create_access_key(UserName="app-backend")),
        "data-pipeline": [_key_pair(iam.create_access_key(UserName="data-pipeline")) for _ in range(2)],
    }
    role_arn = iam.create_role(
        RoleName="deploy-role",
        AssumeRolePolicyDocument=policy_json(
            [{"Effect": "Allow", "Principal": {"AWS": users["ci-deployer"]}, "Action": "sts:AssumeRole"}]
        ),
    )["Role"]["Arn"]
    iam.put_user_policy(
        UserName="ci-deployer",
        PolicyName="assume-deploy",
        PolicyDocument=policy_json([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]),
    )
    iam.put_user_policy(
        UserName="app-backend",
        PolicyName="read-prod-secrets",
        PolicyDocument=policy_json(
            [
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:prod/*",
                }
            ]
        ),
    )
    pipeline_key = keys["data-pipeline"][1]
    secret_arn = sm.create_secret(
        Name="prod/pipeline",
        SecretString=json.dumps(
            {
                "aws_access_key_id": pipeline_key["access_key_id"],
                "aws_secret_access_key": pipeline_key["secret_access_key"],
                "bucket": "lab-pipeline-data",
            }
        ),
    )["ARN"]

    ca_id = iot.register_ca_certificate(
        caCertificate=ca_pem, setAsActive=True, allowAutoRegistration=False
    )["certificateId"]
    iot.create_policy(
        policyName=IOT_POLICY,
        policyDocument=policy_json([{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}]),
    )

    certs = [pem(make_leaf(ca_cert, ca_key, f"device-{i:04d}")[0]) for i in range(devices)]  # type: ignore[arg-type]
    # device keys would stay on the devices: the lab keeps none
    if endpoint_url in _IN_PROCESS:
        made = _iot_fleet_in_memory(certs, ca_pem)
    else:
        made = parallel(lambda item: _iot_device(iot, ca_pem, *item), enumerate(certs), workers=4)
    return {
        "account_id": ACCOUNT_ID,
        "region": REGION,
        "endpoint_url": endpoint_url,
        "users": users,
        "role_arn": role_arn,
        "secret_arn": secret_arn,
        "keys": keys,
        "iot_ca_id": ca_id,
        "iot_certificate_ids": [cert_id for cert_id, _pem in made],
        "iot_certificate_pems": dict(made),
        "things": [f"device-{i:04d}" for i in range(devices)],
        "iot_policy": IOT_POLICY,
        "seconds": round(time.perf_counter() - started, 3),
    }
