"""The AWS connector: IAM users, keys, roles; STS; Secrets Manager; IoT Core certificates.

Config (`type: aws`): `region`, `profile`, `endpoint_url`, optional `accounts: [{profile |
endpoint_url | region}, ...]` (each inherits the top-level values), `access_key_id_env` /
`secret_access_key_env` (names of environment variables, never values), `max_workers`,
`max_attempts`, `iot_ca_ids` (CA ids to look at when ListCACertificates is unavailable),
`probe_sts` (default true).

Collection is in `aws_collect` / `aws_iot` (get -> pure transform), policy evaluation in
`aws_policy`; actions in the mixins of `aws_actions` (keys, roles, secrets) and
`aws_iot_actions` (IoT certificates and CAs). The dispatchers below pick one by node kind.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import structlog
from pydantic import ConfigDict

from connectors import aws_collect as col
from connectors.aws_actions import AccessKeyActions, RoleActions, SecretStoreActions
from connectors.aws_iot_actions import IotActions
from revoke.connector import (
    ActionContext,
    ActionResult,
    BaseConnector,
    Collected,
    CollectFinding,
    ConnectorError,
    ConnectorOptions,
    ProbeResult,
    Replacement,
)
from revoke.model import Edge, Node, NodeKind, Relation

PROVIDER = "aws"
THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
     "SlowDown", "RequestThrottled", "ServiceUnavailable", "InternalFailure", "InternalError"}
)
log = structlog.get_logger()


class _DropDebug(logging.Filter):
    """botocore logs whole request and response bodies at DEBUG: GetSecretValue values,
    PutSecretValue and CreateAccessKey secrets included. Those records never pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_DROP_DEBUG = _DropDebug()


def quiet_sdk_bodies() -> None:
    for name in ("botocore.parsers", "botocore.endpoint", "botocore.hooks", "botocore.retryhandler"):
        logger = logging.getLogger(name)
        if _DROP_DEBUG not in logger.filters:
            logger.addFilter(_DROP_DEBUG)


def wrap_error(exc: BaseException, call: str, node: str | None) -> ConnectorError:
    """A boto3/botocore exception as a ConnectorError (message: AWS error code and text only)."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )
    from botocore.parsers import ResponseParserError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        retryable = status == 429 or status >= 500 or code in THROTTLING
        text = str(err.get("Message", "")).splitlines()[0][:200] if err.get("Message") else ""
        if text.lstrip().startswith("<"):
            text = "HTML error page"
        return ConnectorError(PROVIDER, call, f"{code or status}: {text}".rstrip(": "), node=node,
                              retryable=retryable)
    retryable = isinstance(
        exc, EndpointConnectionError | ConnectionClosedError | ConnectTimeoutError | ReadTimeoutError
        | ResponseParserError
    )
    return ConnectorError(PROVIDER, call, type(exc).__name__, node=node, retryable=retryable)


def error_code(exc: ConnectorError) -> str:
    from botocore.exceptions import ClientError

    cause = exc.__cause__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", ""))
    return ""


class Account:
    """One configured account: a boto3 session and its clients, created lazily, thread-safe."""

    def __init__(self, settings: dict[str, Any], max_attempts: int, pool_size: int) -> None:
        self.settings = settings
        self.max_attempts = max_attempts
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, int], Any] = {}
        self._session: Any = None
        self._account_id: str | None = None

    def client(self, service: str, *, attempts: int | None = None) -> Any:
        attempts = attempts or self.max_attempts
        with self._lock:
            if (service, attempts) not in self._clients:
                import boto3
                from botocore.config import Config

                if self._session is None:
                    creds: dict[str, str] = {}
                    for key in ("access_key_id", "secret_access_key", "session_token"):
                        env = self.settings.get(f"{key}_env")
                        if env:
                            creds[f"aws_{key}"] = os.environ.get(env, "")
                    self._session = boto3.session.Session(
                        profile_name=self.settings.get("profile"), region_name=self.region, **creds
                    )
                self._clients[(service, attempts)] = self._session.client(
                    service,
                    endpoint_url=self.settings.get("endpoint_url"),
                    config=Config(
                        # standard, not adaptive: adaptive also throttles the whole client after
                        # one throttle, which measured 2.4x slower here in the hour that matters
                        retries={"mode": str(self.settings.get("retry_mode") or "standard"), "max_attempts": attempts},
                        max_pool_connections=self.pool_size,
                    ),
                )
            return self._clients[(service, attempts)]

    def probe_client(self, service: str, key_id: str) -> Any:
        """A client signing as `key_id` with a deliberately wrong secret (see key_probe)."""
        from botocore.config import Config

        self.client("sts")  # makes the session
        with self._lock:
            return self._session.client(
                service,
                endpoint_url=self.settings.get("endpoint_url"),
                aws_access_key_id=key_id,
                aws_secret_access_key="0" * 40,
                config=Config(retries={"mode": "standard", "max_attempts": 1}),
            )

    @property
    def region(self) -> str:
        return str(self.settings.get("region") or "us-east-1")

    def account_id(self, call: Callable[..., Any]) -> str:
        if self._account_id is None:
            sts = self.client("sts")
            self._account_id = str(call(sts.get_caller_identity, "get_caller_identity")["Account"])
        return self._account_id


class PendingOptions(ConnectorOptions):
    model_config = ConfigDict(extra="allow")


class AwsConnector(AccessKeyActions, RoleActions, SecretStoreActions, IotActions, BaseConnector):
    options_model = PendingOptions  # replaced by a declared model with the package split
    actions: ClassVar[dict[NodeKind, frozenset[str]]] = {
        NodeKind.ACCESS_KEY: frozenset({"disable", "revoke", "rotate", "finalize", "rollback"}),
        NodeKind.ROLE: frozenset({"revoke_sessions", "rollback"}),
        NodeKind.CERTIFICATE: frozenset({"revoke", "reissue", "finalize", "rollback"}),
        NodeKind.CA: frozenset({"revoke", "reissue", "finalize", "rollback"}),
    }
    permissions: ClassVar[dict[str, list[str]]] = {
        "collect": [
            "iam:GetAccountAuthorizationDetails", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed",
            "iam:GenerateCredentialReport", "iam:GetCredentialReport", "sts:GetCallerIdentity",
            "secretsmanager:ListSecrets", "secretsmanager:GetSecretValue",
            "iot:ListCertificates", "iot:DescribeCertificate", "iot:ListCACertificates",
            "iot:DescribeCACertificate", "iot:ListCertificatesByCA", "iot:ListThings",
            "iot:ListThingPrincipals", "iot:ListPolicies", "iot:ListTargetsForPolicy",
        ],
        "disable": ["iam:UpdateAccessKey", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed"],
        "revoke": ["iam:UpdateAccessKey", "iam:ListAccessKeys", "iot:UpdateCertificate",
                   "iot:UpdateCACertificate", "iot:DescribeCertificate", "iot:DescribeCACertificate"],
        "finalize": ["iam:DeleteAccessKey", "iot:DeleteCertificate", "iot:DeleteCACertificate",
                     "iot:DetachPolicy", "iot:DetachThingPrincipal", "iot:ListCertificatesByCA"],
        "rollback": ["iam:UpdateAccessKey", "iam:DeleteRolePolicy", "iot:UpdateCertificate",
                     "iot:UpdateCACertificate"],
        "rotate": ["iam:CreateAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey", "iam:DeleteAccessKey"],
        "discard_replacement": ["iam:UpdateAccessKey", "iam:DeleteAccessKey", "iot:UpdateCertificate",
                                "iot:DeleteCertificate", "iot:UpdateCACertificate", "iot:DeleteCACertificate"],
        "revoke_sessions": ["iam:PutRolePolicy", "iam:GetRolePolicy"],
        "reissue": ["iot:RegisterCertificate", "iot:CreateKeysAndCertificate", "iot:RegisterCACertificate",
                    "iot:AttachPolicy", "iot:AttachThingPrincipal", "iot:ListPrincipalThings",
                    "iot:ListAttachedPolicies", "iot:DescribeCACertificate"],
        "write_store": ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
        "probe": ["iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "sts:GetCallerIdentity", "iot:ListCertificates",
                  "iot:DescribeCertificate", "iot:DescribeCACertificate"],
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        quiet_sdk_bodies()
        base = {k: config[k] for k in ("region", "profile", "endpoint_url", "access_key_id_env",
                                       "secret_access_key_env", "session_token_env", "retry_mode") if config.get(k)}
        entries = config.get("accounts") or [{}]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConnectorError(PROVIDER, "config", "accounts must be a list of mappings")
        self.max_workers = max(4, int(config.get("max_workers", 16)))
        attempts = int(config.get("max_attempts", 5))
        self.accounts = [Account({**base, **e}, attempts, self.max_workers + 4) for e in entries]
        self.iot_ca_ids = [str(c) for c in config.get("iot_ca_ids", [])]
        self.probe_sts = bool(config.get("probe_sts", True))
        self._ca_keys: dict[str, str] = {}  # new IoT CA id -> key PEM, in memory for this run only
        self._ca_pems: dict[str, str] = {}  # CA node id -> PEM, read once per run
        self._ca_lock = threading.Lock()

    # -- plumbing -----------------------------------------------------------------------------

    def call(self, fn: Callable[[], Any], call: str, node: str | None = None) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError
        from botocore.parsers import ResponseParserError

        try:
            return fn()
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            raise wrap_error(exc, call, node) from exc

    def account_for(self, node: Node) -> Account:
        """The configured account owning a node (by attrs.account or the ARN in its id)."""
        wanted = str(node.attrs.get("account") or "")
        if not wanted:
            native = node.id.split(":", 2)[2] if node.id.count(":") >= 2 else ""
            parts = native.split(":")
            wanted = parts[4] if native.startswith("arn:") and len(parts) > 4 else ""
            if not wanted and node.owner.startswith("aws:user:arn:"):
                wanted = node.owner.split(":")[6] if len(node.owner.split(":")) > 6 else ""
        if len(self.accounts) == 1 or not wanted:
            return self.accounts[0]
        for account in self.accounts:
            if account.account_id(self.call) == wanted:
                return account
        raise ConnectorError(PROVIDER, "account", f"no configured account is {wanted}", node=node.id)

    # -- collect ------------------------------------------------------------------------------

    def collect(self) -> Collected:
        with ThreadPoolExecutor(max_workers=max(1, len(self.accounts))) as outer:
            datas = list(outer.map(self._collect_account, self.accounts))
        out = Collected(meta={"accounts": [d.account_id for d in datas]})
        principals: list[col.Principal] = []
        for data in datas:
            out.findings.extend(data.findings)
            principals.extend(col.principals(data, out.findings))
            out.meta[data.account_id] = data.meta
            out.nodes.append(Node(id=f"aws:account:{data.account_id}", kind=NodeKind.USER, provider=PROVIDER,
                                  name="root", attrs={"account": data.account_id, "root": True}))
            for user in data.users:
                out.nodes.append(Node(id=col.user_id(user["Arn"]), kind=NodeKind.USER, provider=PROVIDER,
                                      name=user["UserName"], created=col._dt(user.get("CreateDate")),
                                      attrs={"account": data.account_id, "groups": list(user.get("GroupList", []))}))
            for role in data.roles:
                trusted = sorted({v for s in _trust(role) for t, v in s.principals if t != "AWS"})
                out.nodes.append(Node(id=col.role_id(role["Arn"]), kind=NodeKind.ROLE, provider=PROVIDER,
                                      name=role["RoleName"], created=col._dt(role.get("CreateDate")),
                                      attrs={"account": data.account_id,
                                             **({"trusted_services": trusted} if trusted else {})}))
            key_nodes, key_edges = col.transform_keys(data)
            out.nodes.extend(key_nodes)
            out.edges.extend(Edge(s, d, Relation(r)) for s, r, d in key_edges)
            secret_nodes, secret_edges = col.transform_secrets(data)
            out.nodes.extend(secret_nodes)
            out.edges.extend(Edge(s, d, Relation(r), attrs=a) for s, r, d, a in secret_edges)
            if data.iot:
                from connectors.aws_iot import transform_iot

                iot_nodes, iot_edges, iot_findings = transform_iot(data.iot, data.account_id, data.region)
                out.nodes.extend(iot_nodes)
                out.edges.extend(Edge(s, d, Relation(r), attrs=a) for s, r, d, a in iot_edges)
                out.findings.extend(iot_findings)
        self._access_edges(datas, principals, out)
        log.info("aws.collect", accounts=len(datas), nodes=len(out.nodes), edges=len(out.edges),
                 findings=len(out.findings))
        return out

    def _access_edges(self, datas: list[col.AccountData], principals: list[col.Principal], out: Collected) -> None:
        from connectors.aws_policy import access_edges

        roles = [(col.role_id(r["Arn"]), r["Arn"], _trust(r)) for d in datas for r in d.roles]
        users = [(col.user_id(u["Arn"]), u["Arn"]) for d in datas for u in d.users]
        secrets = [(f"aws:secret:{s['arn']}", s["arn"]) for d in datas for s in d.secrets]
        edges, notes = access_edges(principals, roles, users, secrets)
        out.edges.extend(Edge(s, d, Relation(r), attrs=a) for s, r, d, a in edges)
        out.findings.extend(CollectFinding("aws.iam.trust_any", n, node=n.split(": ")[0], source=PROVIDER) for n in notes)

    def _collect_account(self, account: Account) -> col.AccountData:
        from connectors.aws_iot import get_iot

        data = col.AccountData(account_id=account.account_id(self.call), region=account.region)
        iam = account.client("iam")
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            details = col.get_authorization_details(iam, self.call)
            data.users, data.groups = details["users"], details["groups"]
            data.roles, data.policies = details["roles"], details["policies"]
            secrets_future = pool.submit(col.get_secrets, account.client("secretsmanager"), self.call, pool)
            iot_future = pool.submit(get_iot, account.client("iot"), account.client("iot", attempts=1),
                                     self.call, pool, self.iot_ca_ids)
            data.keys, source = col.get_access_keys(iam, [u["UserName"] for u in data.users], self.call, pool)
            data.meta["last_used_source"] = source
            data.secrets, findings = secrets_future.result()
            data.findings.extend(findings)
            data.iot, iot_findings = iot_future.result()
            data.findings.extend(iot_findings)
            data.meta["iot_ca_discovery"] = data.iot.get("ca_discovery", "")
        if not data.users and not data.roles:
            data.findings.append(CollectFinding("aws.empty", "no IAM users or roles returned: check credentials",
                                         severity="error", source=PROVIDER))
        return data

    # -- dispatch -----------------------------------------------------------------------------

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        if action not in self.actions.get(node.kind, frozenset()):
            raise self._unsupported(action, node.id)
        if ctx.dry_run:
            return ActionResult(node.id, action, ok=True, changed=False, detail=f"dry run: would {action}")
        if node.kind is NodeKind.ACCESS_KEY:
            result = self.key_action(action, node, ctx)
        elif node.kind is NodeKind.ROLE:
            result = self.role_action(action, node, ctx)
        elif node.id.startswith(("aws:iot_certificate:", "aws:iot_ca:")):
            result = self.iot_action(action, node, ctx)
        else:
            raise self._unsupported(action, node.id)
        log.info("aws.action", node=node.id, action=action, changed=result.changed, ok=result.ok,
                 incident=ctx.incident)
        return result

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        if ctx.dry_run:
            raise ConnectorError(PROVIDER, "create_replacement", "dry run: nothing created", node=node.id)
        if node.kind is NodeKind.ACCESS_KEY:
            return self.key_create_replacement(node, ctx)
        if node.id.startswith("aws:iot_certificate:"):
            return self.cert_create_replacement(node, ctx)
        if node.id.startswith("aws:iot_ca:"):
            return self.ca_create_replacement(node, ctx)
        raise self._unsupported("create_replacement", node.id)

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult:
        if ctx.dry_run:
            return ActionResult(new_id, "discard_replacement", changed=False, detail="dry run: would delete")
        if new_id.startswith("aws:access_key:"):
            return self.key_discard(new_id, ctx)
        if new_id.startswith(("aws:iot_certificate:", "aws:iot_ca:")):
            return self.iot_discard(new_id, ctx)
        raise self._unsupported("discard_replacement", new_id)

    def siblings(self, node: Node) -> set[str]:
        if node.kind is NodeKind.ACCESS_KEY:
            return self.key_siblings(node)
        if node.id.startswith("aws:iot_certificate:"):
            return self.cert_siblings(node)
        return set()

    def probe_many(self, nodes: list[Node]) -> list[ProbeResult]:
        certs = [n for n in nodes if n.id.startswith("aws:iot_certificate:")]
        batch = self.iot_probe_many(certs) if len(certs) > 1 else {}
        rest = [n for n in nodes if n.id not in batch]
        with ThreadPoolExecutor(max_workers=8) as pool:
            singles = dict(zip([n.id for n in rest], pool.map(self.probe, rest), strict=True))
        return [batch.get(n.id) or singles[n.id] for n in nodes]

    def probe(self, node: Node) -> ProbeResult:
        if node.kind is NodeKind.ACCESS_KEY:
            return self.key_probe(node)
        if node.id.startswith(("aws:iot_certificate:", "aws:iot_ca:")):
            return self.iot_probe(node)
        return ProbeResult(node.id, None, "no probe for this kind")


def _trust(role: dict[str, Any]) -> tuple[Any, ...]:
    from connectors.aws_policy import parse_policy

    return parse_policy(role.get("AssumeRolePolicyDocument"))
