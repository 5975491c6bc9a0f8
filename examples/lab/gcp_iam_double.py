"""A gRPC double of the GCP IAM Admin API and Resource Manager's project IAM policy.

No IAM emulator exists and `google-cloud-iam`'s `IAMClient` speaks gRPC only, so this serves
`google.iam.admin.v1.IAM` and `google.cloud.resourcemanager.v3.Projects` on 127.0.0.1 from
in-memory state (`gcp_iam_state.py`). Each handler's docstring cites the reference section it
follows. Used by the tests and by `revoke demo`:

    with GcpIamDouble() as double:
        lab = seed_demo(double)
        connector = GcpConnector({"type": "gcp", "projects": [lab["project"]], "endpoint": double.endpoint})
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from google.cloud.iam_admin_v1.types import iam
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2

from examples.lab.gcp_iam_state import NO_EXPIRY, Binding, Fault, Key, Policy, State, check_policy

IAM_SERVICE = "google.iam.admin.v1.IAM"
PROJECTS_SERVICE = "google.cloud.resourcemanager.v3.Projects"

__all__ = ["GcpIamDouble", "seed_demo"]


def _key_message(key: Key) -> iam.ServiceAccountKey:
    """Public view of a key: never the private key (`privateKeyData` is only in create responses,
    https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys#ServiceAccountKey)."""
    user = iam.ListServiceAccountKeysRequest.KeyType
    return iam.ServiceAccountKey(
        name=key.name,
        key_algorithm=iam.ServiceAccountKeyAlgorithm.KEY_ALG_RSA_2048,
        valid_after_time=key.valid_after,
        valid_before_time=key.valid_before,
        key_origin=iam.ServiceAccountKeyOrigin.GOOGLE_PROVIDED,
        key_type=user.USER_MANAGED if key.user_managed else user.SYSTEM_MANAGED,
        disabled=key.disabled,
    )


def _policy_message(policy: Policy) -> policy_pb2.Policy:
    out = policy_pb2.Policy(version=3 if any(b.condition for b in policy.bindings) else 1, etag=policy.etag)
    for b in policy.bindings:
        pb = out.bindings.add(role=b.role, members=b.members)
        if b.condition:
            pb.condition.expression = b.condition.get("expression", "")
            pb.condition.title = b.condition.get("title", "")
    return out


class _Handlers:
    """The RPCs. Every call first passes `State.gate` (call counting and fault knobs)."""

    def __init__(self, state: State) -> None:
        self.s = state

    def list_service_accounts(self, req: iam.ListServiceAccountsRequest) -> iam.ListServiceAccountsResponse:
        """`projects.serviceAccounts.list`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/list): paged by
        `page_size` (default 20, max 100) and `page_token`; an unknown project is NOT_FOUND."""
        project = req.name.removeprefix("projects/")
        with self.s.lock:
            if not req.name.startswith("projects/") or project not in self.s.projects:
                raise Fault(grpc.StatusCode.NOT_FOUND, f"Project {project!r} not found")
            accounts = [a for a in self.s.accounts.values() if a.project == project]
            page, token = self.s.paginate(accounts, req.page_size, req.page_token)
            return iam.ListServiceAccountsResponse(
                accounts=[self._account_message(a) for a in page], next_page_token=token)

    @staticmethod
    def _account_message(a: Any) -> iam.ServiceAccount:
        return iam.ServiceAccount(
            name=f"projects/{a.project}/serviceAccounts/{a.email}", project_id=a.project,
            unique_id=a.unique_id, email=a.email, display_name=a.display_name,
            oauth2_client_id=a.unique_id, disabled=a.disabled)

    def get_service_account(self, req: iam.GetServiceAccountRequest) -> iam.ServiceAccount:
        """`projects.serviceAccounts.get`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/get)."""
        with self.s.lock:
            return self._account_message(self.s.account(req.name))

    def set_account_disabled(self, disabled: bool) -> Callable[[Any], empty_pb2.Empty]:
        """`projects.serviceAccounts.disable`/`enable`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/disable): a
        disabled account cannot authenticate, so none of its keys work, yet `keys.list` keeps
        reporting each key's own `disabled` flag (False) unchanged. Repeating is not an error."""

        def run(req: Any) -> empty_pb2.Empty:
            with self.s.lock:
                self.s.account(req.name).disabled = disabled
            return empty_pb2.Empty()

        return run

    def list_keys(self, req: iam.ListServiceAccountKeysRequest) -> iam.ListServiceAccountKeysResponse:
        """`projects.serviceAccounts.keys.list`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys/list): not
        paged; `key_types` filters; KEY_TYPE_UNSPECIFIED or a duplicate type is INVALID_ARGUMENT
        (as the `KeyType` enum documents)."""
        types = list(req.key_types)
        kt = iam.ListServiceAccountKeysRequest.KeyType
        if kt.KEY_TYPE_UNSPECIFIED in types or len(set(types)) != len(types):
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "Invalid key_types filter")
        with self.s.lock:
            acct = self.s.account(req.name)
            keys = [k for k in self.s.keys.values() if k.email == acct.email]
            if types:
                keys = [k for k in keys if (kt.USER_MANAGED if k.user_managed else kt.SYSTEM_MANAGED) in types]
            return iam.ListServiceAccountKeysResponse(keys=[_key_message(k) for k in keys])

    def get_key(self, req: iam.GetServiceAccountKeyRequest) -> iam.ServiceAccountKey:
        """`projects.serviceAccounts.keys.get`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys/get); the
        double never returns `public_key_data`."""
        with self.s.lock:
            return _key_message(self.s.key(req.name)[1])

    def create_key(self, req: iam.CreateServiceAccountKeyRequest) -> iam.ServiceAccountKey:
        """`projects.serviceAccounts.keys.create`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys/create): the
        only response carrying `private_key_data` (over gRPC, the raw key-file JSON). The double
        supports the default RSA-2048 credentials-file output only (INVALID_ARGUMENT otherwise)."""
        if req.private_key_type == iam.ServiceAccountPrivateKeyType.TYPE_PKCS12_FILE or \
                req.key_algorithm == iam.ServiceAccountKeyAlgorithm.KEY_ALG_RSA_1024:
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "only RSA-2048 credentials files are supported")
        with self.s.lock:
            acct = self.s.account(req.name)
        key, key_json = self.s.create_key(acct)
        msg = _key_message(key)
        msg.private_key_type = iam.ServiceAccountPrivateKeyType.TYPE_GOOGLE_CREDENTIALS_FILE
        msg.private_key_data = key_json.encode()
        return msg

    def key_op(self, op: str) -> Callable[[Any], empty_pb2.Empty]:
        """`keys.disable` / `keys.enable` / `keys.delete`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys/disable):
        an unknown or deleted key is NOT_FOUND; Google-managed keys cannot be changed
        (FAILED_PRECONDITION, the double's choice of code). Disabling twice succeeds."""

        def run(req: Any) -> empty_pb2.Empty:
            with self.s.lock:
                _, key = self.s.key(req.name)
                if not key.user_managed:
                    raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "System-managed keys cannot be modified")
                if op == "delete":
                    del self.s.keys[key.key_id]
                else:
                    key.disabled = op == "disable"
            return empty_pb2.Empty()

        return run

    def get_policy(self, req: iam_policy_pb2.GetIamPolicyRequest) -> policy_pb2.Policy:
        """`getIamPolicy` on a service account
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/getIamPolicy) or a
        project (https://cloud.google.com/resource-manager/reference/rest/v3/projects/getIamPolicy)."""
        with self.s.lock:
            return _policy_message(self.s.policy_for(req.resource))

    def set_policy(self, req: iam_policy_pb2.SetIamPolicyRequest) -> policy_pb2.Policy:
        """`setIamPolicy`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/setIamPolicy):
        a non-empty etag that is not the current one is ABORTED (https://cloud.google.com/iam/docs/policies#etag); an empty
        etag overwrites blindly; malformed members or roles are INVALID_ARGUMENT."""
        bindings = [
            Binding(b.role, list(b.members),
                    {"expression": b.condition.expression, "title": b.condition.title}
                    if b.HasField("condition") else None)
            for b in req.policy.bindings
        ]
        check_policy(bindings)
        with self.s.lock:
            policy = self.s.policy_for(req.resource)
            if req.policy.etag and req.policy.etag != policy.etag:
                raise Fault(grpc.StatusCode.ABORTED,
                            "There were concurrent policy changes. Please retry the whole "
                            "read-modify-write with exponential backoff.")
            policy.bindings = bindings
            policy.version += 1
            return _policy_message(policy)


class GcpIamDouble:
    """The double as a context manager: `.endpoint` is `127.0.0.1:PORT` (plaintext, loopback only).

    Seed with `add_project`, `add_service_account`, `add_key`, `add_binding`; inject faults
    with `deny`, `rate_limit`, `fail_next`, `set_page_size`; inspect with `key_info`,
    `account_info`, `authenticate` and `calls`.
    """

    def __init__(self, *, page_size: int | None = None, fresh_keys: bool = False, workers: int = 4) -> None:
        self.state = State(fresh_keys=fresh_keys)
        self.state.page_size = page_size
        self._workers = workers
        self._server: grpc.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> GcpIamDouble:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self._workers))
        server.add_generic_rpc_handlers(self._generic_handlers())
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def __enter__(self) -> GcpIamDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _generic_handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        h = _Handlers(self.state)
        proto_plus = [
            ("ListServiceAccounts", iam.ListServiceAccountsRequest, iam.ListServiceAccountsResponse,
             h.list_service_accounts),
            ("GetServiceAccount", iam.GetServiceAccountRequest, iam.ServiceAccount, h.get_service_account),
            ("DisableServiceAccount", iam.DisableServiceAccountRequest, None, h.set_account_disabled(True)),
            ("EnableServiceAccount", iam.EnableServiceAccountRequest, None, h.set_account_disabled(False)),
            ("ListServiceAccountKeys", iam.ListServiceAccountKeysRequest, iam.ListServiceAccountKeysResponse,
             h.list_keys),
            ("GetServiceAccountKey", iam.GetServiceAccountKeyRequest, iam.ServiceAccountKey, h.get_key),
            ("CreateServiceAccountKey", iam.CreateServiceAccountKeyRequest, iam.ServiceAccountKey, h.create_key),
            ("DisableServiceAccountKey", iam.DisableServiceAccountKeyRequest, None, h.key_op("disable")),
            ("EnableServiceAccountKey", iam.EnableServiceAccountKeyRequest, None, h.key_op("enable")),
            ("DeleteServiceAccountKey", iam.DeleteServiceAccountKeyRequest, None, h.key_op("delete")),
        ]
        iam_methods: dict[str, grpc.RpcMethodHandler] = {}
        for method, req_cls, resp_cls, fn in proto_plus:
            ser = resp_cls.serialize if resp_cls is not None else empty_pb2.Empty.SerializeToString
            iam_methods[method] = self._method(method, fn, req_cls.deserialize, ser, "name")
        get_req, set_req = iam_policy_pb2.GetIamPolicyRequest, iam_policy_pb2.SetIamPolicyRequest
        pol = policy_pb2.Policy.SerializeToString
        iam_methods["GetIamPolicy"] = self._method("GetIamPolicy", h.get_policy, get_req.FromString, pol, "resource")
        iam_methods["SetIamPolicy"] = self._method("SetIamPolicy", h.set_policy, set_req.FromString, pol, "resource")
        projects = {
            "GetIamPolicy": self._method("Projects.GetIamPolicy", h.get_policy, get_req.FromString, pol, "resource"),
            "SetIamPolicy": self._method("Projects.SetIamPolicy", h.set_policy, set_req.FromString, pol, "resource"),
        }
        return (
            grpc.method_handlers_generic_handler(IAM_SERVICE, iam_methods),
            grpc.method_handlers_generic_handler(PROJECTS_SERVICE, projects),
        )

    def _method(self, method: str, fn: Callable[[Any], Any], des: Callable[[bytes], Any],
                ser: Callable[[Any], bytes], resource_field: str) -> grpc.RpcMethodHandler:
        state = self.state

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                state.gate(method, getattr(request, resource_field))
                return fn(request)
            except Fault as fault:
                context.abort(fault.code, fault.message)

        return grpc.unary_unary_rpc_method_handler(handle, request_deserializer=des, response_serializer=ser)

    # -- seeding ---------------------------------------------------------------------------

    def add_project(self, project: str) -> None:
        self.state.add_project(project)

    def add_service_account(self, project: str, account_id: str, *, display_name: str = "",
                            disabled: bool = False) -> str:
        """Create an account directly; returns its email."""
        return self.state.add_account(project, account_id, display_name, disabled).email

    def add_key(self, email: str, *, disabled: bool = False) -> dict[str, str]:
        """Create a user-managed key; returns {key_id, name, key_json} (lab material: the JSON holds
        the private key)."""
        acct = self.state.account(f"projects/-/serviceAccounts/{email}")
        key, key_json = self.state.create_key(acct)
        key.disabled = disabled
        return {"key_id": key.key_id, "name": key.name, "key_json": key_json}

    def add_binding(self, resource: str, role: str, member: str,
                    condition: dict[str, str] | None = None) -> None:
        """Grant `role` to `member` on `resource`: `projects/P`, an account email or its name."""
        if "@" in resource and not resource.startswith("projects/"):
            resource = f"projects/-/serviceAccounts/{resource}"
        with self.state.lock:
            policy = self.state.policy_for(resource)
            check_policy([Binding(role, [member], condition)])
            for b in policy.bindings:
                if b.role == role and b.condition == condition:
                    if member not in b.members:
                        b.members.append(member)
                    break
            else:
                policy.bindings.append(Binding(role, [member], condition))
            policy.version += 1

    # -- fault knobs -----------------------------------------------------------------------

    def set_page_size(self, size: int | None) -> None:
        """Cap every page at `size` items so clients must follow `next_page_token`."""
        self.state.page_size = size

    def deny(self, method: str = "*", resource: str | None = None) -> None:
        """PERMISSION_DENIED for `method` (e.g. "DisableServiceAccountKey", "Projects.GetIamPolicy",
        or "*") on resources whose name contains `resource` (any resource if None)."""
        with self.state.lock:
            self.state.denied.add((method, resource))

    def rate_limit(self, method: str, calls: int, per_seconds: float) -> None:
        """RESOURCE_EXHAUSTED once `method` ("*" for all) exceeds `calls` per sliding window."""
        with self.state.lock:
            self.state.limits[method] = (calls, per_seconds, deque())

    def fail_next(self, method: str, code: grpc.StatusCode, times: int = 1) -> None:
        """The next `times` calls of `method` ("*" for any) fail with `code` (e.g. UNAVAILABLE)."""
        with self.state.lock:
            self.state.failures.setdefault(method, []).append((code, times))

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.denied.clear()
            self.state.limits.clear()
            self.state.failures.clear()

    # -- inspection ------------------------------------------------------------------------

    @property
    def calls(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.calls)

    def key_info(self, key_id: str) -> dict[str, Any] | None:
        """Public state of a key, or None once deleted."""
        with self.state.lock:
            key = self.state.keys.get(key_id)
            if key is None:
                return None
            return {"key_id": key.key_id, "email": key.email, "name": key.name,
                    "disabled": key.disabled, "user_managed": key.user_managed}

    def account_info(self, email: str) -> dict[str, Any] | None:
        with self.state.lock:
            acct = self.state.accounts.get(email)
            if acct is None:
                return None
            return {"email": acct.email, "project": acct.project, "unique_id": acct.unique_id,
                    "disabled": acct.disabled,
                    "keys": sorted(k.key_id for k in self.state.keys.values()
                                   if k.email == email and k.user_managed)}

    def authenticate(self, key_json: str) -> bool:
        """Would Google's token endpoint accept this key file now? Only if the key exists, is
        enabled and in its validity window, its private key matches, and its account is enabled
        (https://cloud.google.com/iam/docs/service-accounts-disable-enable: a disabled account
        cannot authenticate)."""
        from datetime import UTC, datetime

        try:
            data = json.loads(key_json)
        except ValueError:
            return False
        with self.state.lock:
            key = self.state.keys.get(str(data.get("private_key_id", "")))
            if key is None or not key.user_managed or key.disabled:
                return False
            acct = self.state.accounts.get(key.email)
            now = datetime.now(UTC)
            return (acct is not None and not acct.disabled and data.get("client_email") == key.email
                    and data.get("private_key") == key.private_pem
                    and key.valid_after <= now < (key.valid_before or NO_EXPIRY))


DEMO_PROJECT = "lab-project"


def seed_demo(double: GcpIamDouble) -> dict[str, Any]:
    """The demo's GCP part: `deployer` holds one user-managed key (planted in Vault by the demo)
    and can impersonate `admin-sa` (roles/iam.serviceAccountTokenCreator on admin-sa's policy);
    an auditor's roles/viewer on the project must make no edge.

    Returns identifiers, node ids, a ready connector config and, as lab material only, the
    deployer key JSON (`deployer_key_json`).
    """
    double.add_project(DEMO_PROJECT)
    deployer = double.add_service_account(DEMO_PROJECT, "deployer", display_name="CI deployer")
    admin = double.add_service_account(DEMO_PROJECT, "admin-sa", display_name="Project admin")
    key = double.add_key(deployer)
    double.add_binding(admin, "roles/iam.serviceAccountTokenCreator", f"serviceAccount:{deployer}")
    double.add_binding(f"projects/{DEMO_PROJECT}", "roles/viewer", "user:auditor@example.com")
    return {
        "project": DEMO_PROJECT,
        "deployer": deployer,
        "admin": admin,
        "deployer_key_id": key["key_id"],
        "deployer_key_json": key["key_json"],
        "node_ids": {
            "deployer": f"gcp:service_account:{deployer}",
            "admin": f"gcp:service_account:{admin}",
            "deployer_key": f"gcp:service_account_key:{key['key_id']}",
        },
        "config": {"type": "gcp", "projects": [DEMO_PROJECT], "endpoint": double.endpoint},
    }
