"""Authentication and authorization of the Kubernetes API double: service-account JWTs, the
cluster CA that signs client certificates, and RBAC evaluation (SubjectAccessReview).

Each behaviour follows a Kubernetes documentation page, cited where it is implemented:
- tokens: https://kubernetes.io/docs/reference/access-authn-authz/service-account-tokens/ and
  https://kubernetes.io/docs/reference/access-authn-authz/authentication/#service-account-tokens
- RBAC: https://kubernetes.io/docs/reference/access-authn-authz/rbac/
- `system:masters`: https://kubernetes.io/docs/reference/access-authn-authz/rbac/#user-facing-roles
  (the group is bound to cluster-admin, and the API server's authorizer admits it before RBAC is
  asked: https://kubernetes.io/docs/concepts/security/rbac-good-practices/#escalation-paths)
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
MASTERS = "system:masters"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SigningKey:
    """The service-account token signing key (`--service-account-signing-key-file`). Rotating it
    without keeping the old public key (`--service-account-key-file`) invalidates every token it
    signed: https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/"""

    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def sign(self, claims: dict[str, Any]) -> str:
        header = _b64url(json.dumps({"alg": "ES256", "kid": self.kid}).encode())
        payload = _b64url(json.dumps(claims, sort_keys=True).encode())
        der = self.key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{header}.{payload}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this key signed, else None."""
        try:
            header, payload, sig = token.split(".")
            raw = _unb64url(sig)
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            self.key.public_key().verify(der, f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
            claims = json.loads(_unb64url(payload))
        except Exception:  # any malformed or foreign token is simply not authenticated
            return None
        return claims if isinstance(claims, dict) else None


def legacy_claims(namespace: str, sa_name: str, sa_uid: str, secret_name: str) -> dict[str, Any]:
    """Claims of a `kubernetes.io/service-account-token` Secret's token: no expiry, bound to the
    Secret by name (https://kubernetes.io/docs/concepts/configuration/secret/#serviceaccount-token-secrets)."""
    return {
        "iss": LEGACY_ISSUER,
        "sub": f"system:serviceaccount:{namespace}:{sa_name}",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/secret.name": secret_name,
        "kubernetes.io/serviceaccount/service-account.name": sa_name,
        "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
    }


def bound_claims(namespace: str, sa_name: str, sa_uid: str, *, audiences: list[str], seconds: int,
                 bound: dict[str, str] | None) -> dict[str, Any]:
    """Claims of a TokenRequest token: audience, expiry, and the object it is bound to
    (https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-request-v1/)."""
    now = int(time.time())
    private: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": sa_name, "uid": sa_uid}}
    if bound:
        private[bound["kind"].lower()] = {"name": bound["name"], "uid": bound["uid"]}
    return {"iss": ISSUER, "aud": audiences, "sub": f"system:serviceaccount:{namespace}:{sa_name}",
            "iat": now, "nbf": now, "exp": now + seconds, "jti": str(uuid.uuid4()), "kubernetes.io": private}


def sa_groups(namespace: str) -> list[str]:
    """A service account's groups (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-subjects)."""
    return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]


class ClusterCA:
    """The cluster CA that signs client certificates. Kubernetes has no revocation for them: a
    client certificate is trusted until it expires or the CA is replaced
    (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#x509-client-certificates,
    https://kubernetes.io/docs/tasks/tls/manual-rotation-of-ca-certificates/)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kubernetes-ca-{uuid.uuid4().hex[:8]}")])
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign_csr(self, csr_pem: bytes, days: int = 365) -> str:
        """Sign a CSR as `kubernetes.io/kube-apiserver-client`: the subject's CN is the user name
        and each O a group (https://kubernetes.io/docs/reference/access-authn-authz/certificate-signing-requests/)."""
        csr = x509.load_pem_x509_csr(csr_pem)
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.cert.subject)
                .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def authenticate(self, cert_pem: str) -> dict[str, Any] | None:
        """The user a client certificate authenticates as, if this CA signed it and it is valid now."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode())
            cert.verify_directly_issued_by(self.cert)
        except Exception:  # a certificate of another CA, or garbage, is not authenticated
            return None
        now = datetime.now(UTC)
        if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            return None
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        groups = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        return {"username": str(cn[0].value) if cn else "", "groups": [*groups, "system:authenticated"]}


def client_csr(user: str, groups: list[str]) -> tuple[bytes, str]:
    """(CSR PEM, private key PEM) for a client certificate request (lab material)."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


# -- RBAC (https://kubernetes.io/docs/reference/access-authn-authz/rbac/) ------------------------

def rule_allows(rule: dict[str, Any], attrs: dict[str, str]) -> bool:
    """One PolicyRule against request attributes: apiGroups, resources (`pods/log` subresources,
    `*`), verbs and resourceNames (which restrict by name; a list or create has no name)."""
    def has(values: list[str] | None, want: str) -> bool:
        return bool(values) and ("*" in values or want in values)  # type: ignore[operator]

    resource = attrs.get("resource", "")
    sub = attrs.get("subresource", "")
    full = f"{resource}/{sub}" if sub else resource
    if not has(rule.get("verbs"), attrs["verb"]) or not has(rule.get("apiGroups"), attrs.get("group", "")):
        return False
    resources = rule.get("resources") or []
    if not ("*" in resources or full in resources or (sub and f"*/{sub}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.get("name", "") in names


def subject_matches(subject: dict[str, Any], user: str, groups: list[str], binding_ns: str) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user
    if kind == "Group":
        return subject.get("name") in groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user == f"system:serviceaccount:{ns}:{subject.get('name')}"
    return False


def authorize(objects: Any, user: str, groups: list[str], attrs: dict[str, str]) -> tuple[bool, str]:
    """(allowed, reason) the way the API server answers a SubjectAccessReview: `system:masters`
    first, then every ClusterRoleBinding, then the RoleBindings of the request's namespace
    (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#rolebinding-and-clusterrolebinding).
    RBAC only adds permissions: there are no deny rules."""
    if MASTERS in groups:
        return True, f"user is in group {MASTERS}: the authorizer admits it before RBAC"
    roles = objects("rbac.authorization.k8s.io", "roles")
    croles = objects("rbac.authorization.k8s.io", "clusterroles")
    for (_, name), crb in sorted(objects("rbac.authorization.k8s.io", "clusterrolebindings").items()):
        if not any(subject_matches(s, user, groups, "") for s in crb.get("subjects") or []):
            continue
        role = croles.get(("", crb["roleRef"]["name"]))
        if role and any(rule_allows(r, attrs) for r in role.get("rules") or []):
            return True, f'RBAC: allowed by ClusterRoleBinding "{name}" of ClusterRole "{crb["roleRef"]["name"]}"'
    ns = attrs.get("namespace", "")
    for (bns, name), rb in sorted(objects("rbac.authorization.k8s.io", "rolebindings").items()):
        if not ns or bns != ns or not any(subject_matches(s, user, groups, bns) for s in rb.get("subjects") or []):
            continue
        ref = rb["roleRef"]
        role = croles.get(("", ref["name"])) if ref["kind"] == "ClusterRole" else roles.get((bns, ref["name"]))
        if role and any(rule_allows(r, attrs) for r in role.get("rules") or []):
            return True, f'RBAC: allowed by RoleBinding "{name}/{bns}" of {ref["kind"]} "{ref["name"]}"'
    return False, ""
