"""The RPCs of the GCP IAM double, and the gRPC method tables that serve them.

Serves `google.iam.admin.v1.IAM` and `google.cloud.resourcemanager.v3.Projects`. Each handler's
docstring cites the reference section it follows; the rules on state live in `gcp_iam_state.py`,
the message shapes in `gcp_iam_messages.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.cloud.iam_admin_v1.types import iam
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2

from examples.lab.gcp_iam_messages import account_message, bindings_of, key_message, policy_message
from examples.lab.gcp_iam_state import Fault, State, check_policy

IAM_SERVICE = "google.iam.admin.v1.IAM"
PROJECTS_SERVICE = "google.cloud.resourcemanager.v3.Projects"


class Handlers:
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
                accounts=[account_message(a) for a in page], next_page_token=token)

    def get_service_account(self, req: iam.GetServiceAccountRequest) -> iam.ServiceAccount:
        """`projects.serviceAccounts.get`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/get)."""
        with self.s.lock:
            return account_message(self.s.account(req.name))

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
            return iam.ListServiceAccountKeysResponse(keys=[key_message(k) for k in keys])

    def get_key(self, req: iam.GetServiceAccountKeyRequest) -> iam.ServiceAccountKey:
        """`projects.serviceAccounts.keys.get`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys/get); the
        double never returns `public_key_data`."""
        with self.s.lock:
            return key_message(self.s.key(req.name)[1])

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
        msg = key_message(key)
        msg.private_key_type = iam.ServiceAccountPrivateKeyType.TYPE_GOOGLE_CREDENTIALS_FILE  # type: ignore[assignment]
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
            return policy_message(self.s.policy_for(req.resource))

    def set_policy(self, req: iam_policy_pb2.SetIamPolicyRequest) -> policy_pb2.Policy:
        """`setIamPolicy`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/setIamPolicy):
        a non-empty etag that is not the current one is ABORTED (https://cloud.google.com/iam/docs/policies#etag); an empty
        etag overwrites blindly; malformed members or roles are INVALID_ARGUMENT."""
        bindings = bindings_of(req.policy)
        check_policy(bindings)
        with self.s.lock:
            policy = self.s.policy_for(req.resource)
            if req.policy.etag and req.policy.etag != policy.etag:
                raise Fault(grpc.StatusCode.ABORTED,
                            "There were concurrent policy changes. Please retry the whole "
                            "read-modify-write with exponential backoff.")
            policy.bindings = bindings
            policy.version += 1
            return policy_message(policy)



def generic_handlers(state: State) -> tuple[grpc.GenericRpcHandler, ...]:
    """Both services' method tables: every RPC deserialised, gated, handled, serialised."""
    h = Handlers(state)
    proto_plus: list[tuple[str, Any, Any, Callable[[Any], Any]]] = [
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
        iam_methods[method] = _method(state, method, fn, req_cls.deserialize, ser, "name")
    get_req, set_req = iam_policy_pb2.GetIamPolicyRequest, iam_policy_pb2.SetIamPolicyRequest
    pol = policy_pb2.Policy.SerializeToString
    iam_methods["GetIamPolicy"] = _method(state, "GetIamPolicy", h.get_policy, get_req.FromString, pol, "resource")
    iam_methods["SetIamPolicy"] = _method(state, "SetIamPolicy", h.set_policy, set_req.FromString, pol, "resource")
    projects = {
        "GetIamPolicy": _method(state, "Projects.GetIamPolicy", h.get_policy, get_req.FromString, pol, "resource"),
        "SetIamPolicy": _method(state, "Projects.SetIamPolicy", h.set_policy, set_req.FromString, pol, "resource"),
    }
    return (
        grpc.method_handlers_generic_handler(IAM_SERVICE, iam_methods),
        grpc.method_handlers_generic_handler(PROJECTS_SERVICE, projects),
    )


def _method(state: State, method: str, fn: Callable[[Any], Any], des: Callable[[bytes], Any],
            ser: Callable[[Any], bytes], resource_field: str) -> grpc.RpcMethodHandler:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            state.gate(method, getattr(request, resource_field))
            return fn(request)
        except Fault as fault:
            context.abort(fault.code, fault.message)

    return grpc.unary_unary_rpc_method_handler(handle, request_deserializer=des, response_serializer=ser)

