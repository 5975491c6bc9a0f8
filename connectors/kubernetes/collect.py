"""Get: one cluster's state as the plain-dict payload `transform.transform_cluster` reads.

Secret values are decoded here, fingerprinted and scanned with `connectors.recognize` (an AWS
key, a GCP key file, a Vault token, a PEM key...), and dropped at once: the payload carries
only key names, fingerprints and what was recognised. Client certificates come from approved
CertificateSigningRequests; the CA from the `kube-root-ca.crt` ConfigMap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Any

from connectors.kubernetes.transform import PROVIDER, SA_TOKEN_TYPE
from connectors.recognize import recognize
from revoke.connector import CollectFinding, ConnectorError
from revoke.model import fingerprint

if TYPE_CHECKING:
    from connectors.kubernetes.client import KubeClient

Payload = dict[str, Any]
CLIENT_SIGNERS = ("kubernetes.io/kube-apiserver-client", "kubernetes.io/legacy-unknown")
SA_NAME = "kubernetes.io/service-account.name"
SA_UID = "kubernetes.io/service-account.uid"


def cluster_id(client: KubeClient) -> str:
    """The `kube-system` namespace's uid: fixed for the cluster's life, different in every cluster
    (the identity cluster-scoped tools use when the API has no cluster name)."""
    ns = client.call("core", "read_namespace", "kube-system", read=True)
    uid = str((ns.get("metadata") or {}).get("uid") or "")
    if not uid:
        raise ConnectorError(PROVIDER, "read_namespace", "kube-system has no uid: cannot tell this cluster apart")
    return uid


def decode_values(data: dict[str, str] | None) -> dict[str, str]:
    """A Secret's `data` (base64) as text; binary values are kept as replacement-decoded text for
    fingerprinting only."""
    out: dict[str, str] = {}
    for key, value in (data or {}).items():
        try:
            out[key] = base64.b64decode(value or "", validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            out[key] = ""
    return out


def sanitize_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """Key names, fingerprints and recognised credentials; never a value."""
    meta = secret.get("metadata") or {}
    values = decode_values(secret.get("data"))
    ann = meta.get("annotations") or {}
    out: dict[str, Any] = {
        "namespace": meta.get("namespace", ""), "name": meta.get("name", ""), "uid": meta.get("uid", ""),
        "type": secret.get("type") or "Opaque", "version": meta.get("resourceVersion", ""),
        "created": meta.get("creationTimestamp"), "keys": {k: fingerprint(v) for k, v in values.items()},
        "fingerprint": fingerprint("\x00".join(f"{k}={values[k]}" for k in sorted(values))) if values else "",
        "found": [],
    }
    if out["type"] == SA_TOKEN_TYPE:
        out["service_account"] = ann.get(SA_NAME, "")
        out["service_account_uid"] = ann.get(SA_UID, "")
        out["token_fingerprint"] = fingerprint(values["token"]) if values.get("token") else ""
        return out
    for item in recognize(values):
        out["found"].append({"kind": item.kind.value, "ref": item.ref, "fields": list(item.fields),
                             "fingerprint": item.fingerprint, "attrs": dict(item.attrs)})
    return out


def cert_info(pem: str) -> dict[str, Any] | None:
    """Public facts of a client certificate: CN is the user, each O a group."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {"sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
            "user": str(cn[0].value) if cn else "",
            "groups": [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)],
            "not_before": cert.not_valid_before_utc.isoformat(), "not_after": cert.not_valid_after_utc.isoformat(),
            "subject": cert.subject.rfc4514_string(), "cert": cert}


def issued_by(info: dict[str, Any], ca: Any) -> bool:
    try:
        info["cert"].verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception):  # a signature mismatch raises InvalidSignature
        return False
    return True


def get_ca(client: KubeClient, namespaces: list[str], findings: list[CollectFinding]) -> tuple[dict[str, Any] | None, Any]:
    """The cluster CA from a `kube-root-ca.crt` ConfigMap (published in every namespace)."""
    for ns in ["kube-system", *namespaces]:
        try:
            cm = client.call("core", "read_namespaced_config_map", "kube-root-ca.crt", ns, read=True)
        except ConnectorError as err:
            if err.code in ("403", "404"):
                continue
            raise
        pem = (cm.get("data") or {}).get("ca.crt") or ""
        info = cert_info(pem)
        if info is not None:
            return {"sha256": info["sha256"], "subject": info["subject"], "not_after": info["not_after"]}, info["cert"]
    findings.append(CollectFinding("kubernetes.ca_unreadable", "no kube-root-ca.crt ConfigMap could be read: "
                                   "client certificates cannot be matched to the cluster CA", severity="warning"))
    return None, None


def _per_namespace(client: KubeClient, group: str, all_ns: str, per_ns: str,
                   namespaces: list[str] | None) -> tuple[list[dict[str, Any]], int]:
    if namespaces is None:
        return client.list_all(group, all_ns)
    items: list[dict[str, Any]] = []
    pages = 0
    for ns in namespaces:
        got, n = client.list_all(group, per_ns, ns)
        items += got
        pages += n
    return items, pages


def get_cluster(client: KubeClient, namespaces: list[str] | None, name: str) -> tuple[Payload, list[CollectFinding], int]:
    findings: list[CollectFinding] = []
    cid = cluster_id(client)
    pages = 0
    ns_items, n = client.list_all("core", "list_namespace")
    pages += n
    all_ns = sorted((i.get("metadata") or {}).get("name", "") for i in ns_items)
    if namespaces is not None:
        missing = sorted(set(namespaces) - set(all_ns))
        for ns in missing:
            findings.append(CollectFinding("kubernetes.namespace_missing", f"namespace {ns} does not exist",
                                           severity="warning", source=ns))
        namespaces = [ns for ns in namespaces if ns in all_ns]
    lists = {
        "service_accounts": ("core", "list_service_account_for_all_namespaces", "list_namespaced_service_account"),
        "secrets": ("core", "list_secret_for_all_namespaces", "list_namespaced_secret"),
        "pods": ("core", "list_pod_for_all_namespaces", "list_namespaced_pod"),
        "roles": ("rbac", "list_role_for_all_namespaces", "list_namespaced_role"),
        "role_bindings": ("rbac", "list_role_binding_for_all_namespaces", "list_namespaced_role_binding"),
    }
    payload: Payload = {"cluster": {"id": cid, "name": name, "server": client.host},
                        "namespaces": namespaces if namespaces is not None else all_ns}
    for key, (group, all_m, per_m) in lists.items():
        items, n = _per_namespace(client, group, all_m, per_m, namespaces)
        pages += n
        payload[key] = [sanitize_secret(s) for s in items] if key == "secrets" else items
        del items  # the raw Secret list held values: drop it now
    for key, method in (("cluster_roles", "list_cluster_role"), ("cluster_role_bindings", "list_cluster_role_binding")):
        payload[key], n = client.list_all("rbac", method)
        pages += n
    payload["ca"], ca_cert = get_ca(client, payload["namespaces"], findings)
    payload["client_certs"], n = get_client_certs(client, ca_cert, findings)
    return payload, findings, pages + n


def get_client_certs(client: KubeClient, ca_cert: Any, findings: list[CollectFinding]) -> tuple[list[dict[str, Any]], int]:
    """Approved client CSRs with an issued certificate. Approved CSRs are garbage-collected after
    an hour, and certificates made outside the API (kubeadm's admin.conf) never appear here."""
    try:
        csrs, pages = client.list_all("certs", "list_certificate_signing_request")
    except ConnectorError as err:
        if err.code != "403":
            raise
        findings.append(CollectFinding("kubernetes.csr_unreadable", f"CertificateSigningRequests not listed: {err}",
                                       severity="warning"))
        return [], 0
    out = []
    for csr in csrs:
        spec, status = csr.get("spec") or {}, csr.get("status") or {}
        approved = any(c.get("type") == "Approved" for c in status.get("conditions") or [])
        if spec.get("signerName") not in CLIENT_SIGNERS or not approved or not status.get("certificate"):
            continue
        try:
            pem = base64.b64decode(status["certificate"]).decode()
        except (binascii.Error, ValueError):
            continue
        info = cert_info(pem)
        if info is None:
            continue
        chains = ca_cert is not None and issued_by(info, ca_cert)
        ca_sha = hashlib.sha256(ca_cert.public_bytes(_der())).hexdigest() if chains else "unknown-issuer"
        out.append({"csr": (csr.get("metadata") or {}).get("name", ""), "sha256": info["sha256"],
                    "user": info["user"], "groups": info["groups"], "not_before": info["not_before"],
                    "not_after": info["not_after"], "ca_sha256": ca_sha})
    return out, pages


def _der() -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER
