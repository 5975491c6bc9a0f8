"""A gRPC double of the GCP IAM Admin API and Resource Manager's project IAM policy.

No IAM emulator exists and `google-cloud-iam`'s `IAMClient` speaks gRPC only, so this serves
`google.iam.admin.v1.IAM` and `google.cloud.resourcemanager.v3.Projects` on 127.0.0.1 from
in-memory state (`gcp_iam_state.py`). The RPC handlers (`gcp_iam_handlers.py`, each citing
the reference section it follows) and their messages (`gcp_iam_messages.py`) live apart; this
module runs the server and offers seeding, fault knobs and inspection. Used by the tests and by
`revoke demo`:

    with GcpIamDouble() as double:
        lab = seed_demo(double)
        connector = GcpConnector({"type": "gcp", "projects": [lab["project"]], "endpoint": double.endpoint})
"""

from __future__ import annotations

import json
from collections import deque
from concurrent import futures
from typing import Any

import grpc

from examples.lab.gcp_iam_handlers import generic_handlers
from examples.lab.gcp_iam_state import NO_EXPIRY, Binding, State, check_policy

__all__ = ["GcpIamDouble", "seed_demo"]


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
        server.add_generic_rpc_handlers(generic_handlers(self.state))
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
