"""In-memory state of the GCP IAM double, and the documented rules it enforces.

Kept apart from the gRPC plumbing (`gcp_iam_double.py`) so the rules read on their own.
Every rule cites the IAM reference section it follows; where the double chooses a behaviour
the reference leaves open, the docstring says so.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc

MAX_USER_KEYS = 10  # https://cloud.google.com/iam/quotas#limits "Service account keys: 10 per account"
MEMBER_PREFIXES = (
    "user:", "serviceAccount:", "group:", "domain:", "principal://", "principalSet://",
    "deleted:", "allUsers", "allAuthenticatedUsers",
)  # https://cloud.google.com/iam/docs/principal-identifiers
NO_EXPIRY = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

_RSA_PEM: str | None = None
_RSA_LOCK = threading.Lock()


class Fault(Exception):
    """A gRPC status the handler turns into `context.abort(code, message)`."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rsa_private_pem(fresh: bool = False) -> str:
    """An RSA-2048 PKCS#8 PEM, as in real key files. Generated once per process unless `fresh`
    (RSA generation costs ~54 ms here; the demo and most tests need one)."""
    global _RSA_PEM
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def make() -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    if fresh:
        return make()
    with _RSA_LOCK:
        if _RSA_PEM is None:
            _RSA_PEM = make()
        return _RSA_PEM


@dataclass
class Binding:
    role: str
    members: list[str]
    condition: dict[str, str] | None = None


@dataclass
class Policy:
    bindings: list[Binding] = field(default_factory=list)
    version: int = 0  # bumped on every write; the etag is derived from it

    @property
    def etag(self) -> bytes:
        return f"BwY{self.version:010d}".encode()


@dataclass
class Account:
    project: str
    email: str
    unique_id: str
    display_name: str = ""
    disabled: bool = False
    policy: Policy = field(default_factory=Policy)


@dataclass
class Key:
    key_id: str
    email: str
    project: str
    user_managed: bool = True
    disabled: bool = False
    valid_after: datetime = field(default_factory=lambda: datetime.now(UTC))
    valid_before: datetime = NO_EXPIRY
    private_pem: str = ""  # kept only so `authenticate()` can check a presented key file

    @property
    def name(self) -> str:
        return f"projects/{self.project}/serviceAccounts/{self.email}/keys/{self.key_id}"


class State:
    """Projects, accounts, keys and policies, guarded by one lock (the server is threaded)."""

    def __init__(self, *, fresh_keys: bool = False) -> None:
        self.lock = threading.RLock()
        self.projects: dict[str, Policy] = {}
        self.accounts: dict[str, Account] = {}  # email -> account
        self.keys: dict[str, Key] = {}  # key id -> key
        self.fresh_keys = fresh_keys
        self.page_size: int | None = None  # cap on page size, to force clients to paginate
        # (method or "*", substring of the resource name or None for any resource)
        self.denied: set[tuple[str, str | None]] = set()
        self.limits: dict[str, tuple[int, float, deque[float]]] = {}
        self.failures: dict[str, list[tuple[grpc.StatusCode, int]]] = {}
        self.calls: dict[str, int] = {}
        self._next_uid = 100000000000000000000

    # -- seeding ---------------------------------------------------------------------------

    def add_project(self, project: str) -> None:
        with self.lock:
            self.projects.setdefault(project, Policy())

    def add_account(self, project: str, account_id: str, display_name: str = "",
                    disabled: bool = False) -> Account:
        """Email and unique id as `projects.serviceAccounts.create` forms them,
        `<id>@<project>.iam.gserviceaccount.com`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/create)."""
        with self.lock:
            self.add_project(project)
            email = f"{account_id}@{project}.iam.gserviceaccount.com"
            if email in self.accounts:
                raise Fault(grpc.StatusCode.ALREADY_EXISTS, f"Service account {account_id} already exists")
            self._next_uid += 1
            acct = Account(project, email, str(self._next_uid), display_name, disabled)
            self.accounts[email] = acct
            # Every account has Google-managed keys; clients must filter them out.
            sys_key = Key(secrets.token_hex(20), email, project, user_managed=False)
            self.keys[sys_key.key_id] = sys_key
            return acct

    def create_key(self, acct: Account) -> tuple[Key, str]:
        """`keys.create`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys/create): at most 10 user-managed
        keys per account, disabled ones included (https://cloud.google.com/iam/quotas), else
        FAILED_PRECONDITION "Precondition check failed."; the private key is returned once, in this
        response only, as the key-file JSON."""
        with self.lock:
            owned = [k for k in self.keys.values() if k.email == acct.email and k.user_managed]
            if len(owned) >= MAX_USER_KEYS:
                raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "Precondition check failed.")
            key = Key(secrets.token_hex(20), acct.email, acct.project)
            key.private_pem = rsa_private_pem(self.fresh_keys)
            self.keys[key.key_id] = key
        return key, key_file_json(key, acct)

    # -- lookups ---------------------------------------------------------------------------

    def account(self, name: str) -> Account:
        """`projects/{PROJECT|-}/serviceAccounts/{EMAIL|UNIQUE_ID}`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/get).
        With the `-` wildcard a missing account is PERMISSION_DENIED, not NOT_FOUND, as the
        reference warns for the `name` field."""
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "serviceAccounts" or not parts[3]:
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT,
                        f"Invalid resource name {name!r}: expected projects/{{PROJECT}}/serviceAccounts/{{ACCOUNT}}")
        project, ident = parts[1], parts[3]
        acct = self.accounts.get(ident) or next(
            (a for a in self.accounts.values() if a.unique_id == ident), None)
        if acct is None or (project != "-" and acct.project != project):
            if project == "-":
                raise Fault(grpc.StatusCode.PERMISSION_DENIED,
                            f"Permission 'iam.serviceAccounts.get' denied on resource (or it may not exist): {name}")
            raise Fault(grpc.StatusCode.NOT_FOUND, f"Unknown service account {ident}")
        return acct

    def key(self, name: str) -> tuple[Account, Key]:
        """`.../serviceAccounts/{ACCOUNT}/keys/{KEY}`
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys/get);
        a deleted or unknown key is NOT_FOUND."""
        head, sep, key_id = name.rpartition("/keys/")
        if not sep or not key_id:
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid key name {name!r}")
        acct = self.account(head)
        key = self.keys.get(key_id)
        if key is None or key.email != acct.email:
            raise Fault(grpc.StatusCode.NOT_FOUND, f"Service account key {key_id} does not exist.")
        return acct, key

    def policy_for(self, resource: str) -> Policy:
        """`projects/{P}` (Resource Manager) or a service account name (IAM). Resource Manager
        answers PERMISSION_DENIED for a project that does not exist
        (https://cloud.google.com/resource-manager/reference/rest/v3/projects/getIamPolicy)."""
        parts = resource.split("/")
        if len(parts) == 2 and parts[0] == "projects":
            if parts[1] not in self.projects:
                raise Fault(grpc.StatusCode.PERMISSION_DENIED,
                            f"The caller does not have permission (or project {parts[1]} does not exist)")
            return self.projects[parts[1]]
        return self.account(resource).policy

    # -- faults ----------------------------------------------------------------------------

    def gate(self, method: str, resource: str) -> None:
        """Checked before every call: counts it, then applies the configured faults in the order
        a real front end would (quota, then injected transport faults, then authorization)."""
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            limit = self.limits.get(method) or self.limits.get("*")
            if limit is not None:
                calls, per, window = limit
                now = time.monotonic()
                while window and now - window[0] > per:
                    window.popleft()
                if len(window) >= calls:
                    # https://cloud.google.com/iam/quotas: exceeding a rate quota is 429 RESOURCE_EXHAUSTED
                    raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"Quota exceeded for quota metric '{method} requests' "
                                f"(limit {calls} per {per:g}s)")
                window.append(now)
            queue = self.failures.get(method) or self.failures.get("*")
            if queue:
                code, left = queue[0]
                if left <= 1:
                    queue.pop(0)
                else:
                    queue[0] = (code, left - 1)
                raise Fault(code, f"injected {code.name} for {method}")
            if any(m in (method, "*") and (r is None or r in resource) for m, r in self.denied):
                raise Fault(grpc.StatusCode.PERMISSION_DENIED,
                            f"Permission denied for {method} on resource (or it may not exist): {resource}")

    def paginate(self, items: list, page_size: int, token: str) -> tuple[list, str]:
        """`page_size` defaults to 20, maximum 100
        (https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/list); a
        negative size or a token this server did not issue is INVALID_ARGUMENT."""
        if page_size < 0:
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "page_size must not be negative")
        size = min(page_size or 20, 100)
        if self.page_size:
            size = min(size, self.page_size)
        start = 0
        if token:
            if not token.startswith("o") or not token[1:].isdigit():
                raise Fault(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid page token {token!r}")
            start = int(token[1:])
        end = start + size
        return items[start:end], (f"o{end}" if end < len(items) else "")


def key_file_json(key: Key, acct: Account) -> str:
    """The Google credentials file (`TYPE_GOOGLE_CREDENTIALS_FILE`), the format
    `keys.create` returns in `privateKeyData` (https://cloud.google.com/iam/docs/keys-create-delete)."""
    return json.dumps({
        "type": "service_account",
        "project_id": acct.project,
        "private_key_id": key.key_id,
        "private_key": key.private_pem,
        "client_email": acct.email,
        "client_id": acct.unique_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
                                + acct.email.replace("@", "%40"),
        "universe_domain": "googleapis.com",
    }, indent=2)


def check_policy(bindings: list[Binding]) -> None:
    """`setIamPolicy` rejects malformed members and roles with INVALID_ARGUMENT
    (https://cloud.google.com/iam/docs/principal-identifiers)."""
    for b in bindings:
        if not b.role.startswith(("roles/", "projects/", "organizations/")):
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, f"Role {b.role!r} is not a valid role name")
        for m in b.members:
            if not m.startswith(MEMBER_PREFIXES):
                raise Fault(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid principal {m!r} in binding {b.role}")
