"""Actions on AWS IoT device certificates and CA certificates (mixin for `AwsConnector`).

A reissued device certificate gets the old one's policies and things. It is signed by the
incident's new CA when `ctx.replacements` maps the old CA to a new IoT CA whose key this
connector created in this run (the key lives in memory only); otherwise IoT makes one
(`create_keys_and_certificate`, an AWS-signed certificate) and the result says so.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import structlog

from connectors.aws_iot import ca_node_id, cert_node_id, new_ca, new_device_certificate
from revoke.connector import ActionContext, ActionResult, ConnectorError, ProbeResult, Replacement, Secret, Unsupported
from revoke.model import Node, NodeKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from connectors.aws import Account

PROVIDER = "aws"
log = structlog.get_logger()


def _native(node_id: str) -> str:
    return node_id.split(":", 2)[2]


def _code(exc: ConnectorError) -> str:
    from connectors.aws import error_code

    return error_code(exc)


class IotActions:
    if TYPE_CHECKING:
        _ca_keys: dict[str, str]
        _ca_pems: dict[str, str]
        _ca_lock: threading.Lock

        def call(self, fn: Callable[[], Any], call: str, node: str | None = None) -> Any: ...

        def account_for(self, node: Node) -> Account: ...

    def _iot(self, node: Node) -> Any:
        return self.account_for(node).client("iot")

    def _iot_describe(self, iot: Any, node_id: str) -> dict[str, Any] | None:
        cid = _native(node_id)
        is_ca = node_id.startswith("aws:iot_ca:")
        try:
            if is_ca:
                resp = self.call(lambda: iot.describe_ca_certificate(certificateId=cid),
                                 "describe_ca_certificate", node_id)
            else:
                resp = self.call(lambda: iot.describe_certificate(certificateId=cid), "describe_certificate",
                                 node_id)
        except ConnectorError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        return dict(resp["certificateDescription"])

    def _iot_set(self, iot: Any, node_id: str, status: str) -> None:
        cid = _native(node_id)
        if node_id.startswith("aws:iot_ca:"):
            self.call(lambda: iot.update_ca_certificate(certificateId=cid, newStatus=status),
                      "update_ca_certificate", node_id)
        else:
            self.call(lambda: iot.update_certificate(certificateId=cid, newStatus=status), "update_certificate",
                      node_id)

    def iot_action(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        iot = self._iot(node)
        is_ca = node.id.startswith("aws:iot_ca:")
        if action == "reissue":
            return self._reissue(node, ctx)
        dead = "INACTIVE" if is_ca else "REVOKED"
        if action == "revoke" and ctx.options.get("first_attempt") and node.status == "active":
            # the executor's first try at a certificate collected as active: set it directly
            # (setting the same status twice is harmless); a vanished certificate is already dead
            try:
                self._iot_set(iot, node.id, dead)
            except ConnectorError as exc:
                if "ResourceNotFound" not in str(exc):
                    raise
                return ActionResult(node.id, action, changed=False, detail="certificate no longer exists")
            return ActionResult(node.id, action, detail=f"status {dead}")
        desc = self._iot_describe(iot, node.id)
        status = desc.get("status") if desc else None
        if action == "revoke":
            if status is None:
                return ActionResult(node.id, action, changed=False, detail="certificate no longer exists")
            if status in ("REVOKED", "INACTIVE") and (status == dead or is_ca):
                return ActionResult(node.id, action, changed=False, detail=f"already {status}")
            self._iot_set(iot, node.id, dead)
            return ActionResult(node.id, action, detail=f"status {dead}")
        if action == "rollback":
            if status is None:
                raise ConnectorError(PROVIDER, "rollback", "the certificate was deleted; it cannot be restored",
                                     node=node.id)
            if status == "ACTIVE":
                return ActionResult(node.id, action, changed=False, detail="already ACTIVE")
            self._iot_set(iot, node.id, "ACTIVE")
            return ActionResult(node.id, action, detail="status ACTIVE")
        if action == "finalize":
            if status is None:
                return ActionResult(node.id, action, changed=False, detail="already deleted")
            if status == "ACTIVE":
                raise ConnectorError(PROVIDER, "finalize", "certificate is still ACTIVE: revoke it first",
                                     node=node.id)
            return self._iot_delete(iot, node, desc or {})
        raise Unsupported(PROVIDER, action, node.id, "not supported for IoT certificates")

    def _iot_delete(self, iot: Any, node: Node, desc: dict[str, Any]) -> ActionResult:
        cid = _native(node.id)
        if node.id.startswith("aws:iot_ca:"):
            members = self.call(
                lambda: [c for p in iot.get_paginator("list_certificates_by_ca").paginate(caCertificateId=cid)
                         for c in p.get("certificates", [])],
                "list_certificates_by_ca", node.id,
            )
            live = [c["certificateId"] for c in members if c.get("status") == "ACTIVE"]
            if live:
                raise ConnectorError(PROVIDER, "finalize", f"{len(live)} certificates it issued are still ACTIVE "
                                     "in IoT: reissue and revoke them before deleting the CA", node=node.id)
            self.call(lambda: iot.delete_ca_certificate(certificateId=cid), "delete_ca_certificate", node.id)
            return ActionResult(node.id, "finalize", detail="CA certificate deleted from IoT")
        arn = desc.get("certificateArn", "")
        for thing in self._iot_things(iot, arn, node.id):
            self.call(lambda t=thing: iot.detach_thing_principal(thingName=t, principal=arn),
                      "detach_thing_principal", node.id)
        for policy in self._iot_policies(iot, arn, node.id):
            self.call(lambda p=policy: iot.detach_policy(policyName=p, target=arn), "detach_policy", node.id)
        self.call(lambda: iot.delete_certificate(certificateId=cid), "delete_certificate", node.id)
        return ActionResult(node.id, "finalize", detail="certificate detached and deleted")

    def _iot_things(self, iot: Any, arn: str, node_id: str) -> list[str]:
        return self.call(lambda: [t for p in iot.get_paginator("list_principal_things").paginate(principal=arn)
                                  for t in p.get("things", [])], "list_principal_things", node_id)

    def _iot_policies(self, iot: Any, arn: str, node_id: str) -> list[str]:
        return self.call(lambda: [x["policyName"] for p in iot.get_paginator("list_attached_policies")
                                  .paginate(target=arn) for x in p.get("policies", [])],
                         "list_attached_policies", node_id)

    def _reissue(self, node: Node, ctx: ActionContext) -> ActionResult:
        if node.id.startswith("aws:iot_certificate:"):
            newer = self._newer_siblings(node)
            if newer:
                return ActionResult(node.id, "reissue", changed=False, detail="already reissued",
                                    data={"new_id": sorted(newer)[0]})
            made = self.cert_create_replacement(node, ctx)
        else:
            made = self.ca_create_replacement(node, ctx)
        # no store holds device keys here: the material is not delivered by this action
        return ActionResult(node.id, "reissue", detail="replacement created; material not delivered by this action",
                            data={"new_id": made.new_id, **{k: v for k, v in made.attrs.items() if k != "key"}})

    def cert_create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        iot = self._iot(node)
        desc = self._iot_describe(iot, node.id)
        if desc is None:
            raise ConnectorError(PROVIDER, "reissue", "certificate not found", node=node.id)
        old_ca = self._issuer_in(iot, node, desc, ctx)
        new_ca_node = ctx.replacements.get(old_ca) if old_ca else None
        with self._ca_lock:
            ca_key = self._ca_keys.get(new_ca_node or "")
        if new_ca_node and ca_key:
            ca_pem = self._ca_pem(iot, new_ca_node)
            cert_pem, key_pem = new_device_certificate(desc.get("certificatePem", ""), ca_pem, ca_key)
            try:
                registered = self.call(lambda: iot.register_certificate(certificatePem=cert_pem, caCertificatePem=ca_pem,
                                                                        setAsActive=True), "register_certificate", node.id)
            except ConnectorError as exc:
                if "ResourceAlreadyExists" not in str(exc):
                    raise
                # a retry of a registration whose answer was lost: IoT names a certificate by the
                # SHA-256 of its DER (some emulators hash the PEM text), so look this one up
                registered = {"certificateId": self._registered_id(iot, cert_pem, node.id), "certificateArn": ""}
            new_cid, arn = registered["certificateId"], registered.get("certificateArn", "")
            how = {"method": "signed by the new CA", "ca": _native(new_ca_node)}
        else:
            made = self.call(lambda: iot.create_keys_and_certificate(setAsActive=True),
                             "create_keys_and_certificate", node.id)
            new_cid, cert_pem, key_pem = made["certificateId"], made["certificatePem"], made["keyPair"]["PrivateKey"]
            arn = made.get("certificateArn", "")
            why = "no new CA for this incident" if not new_ca_node else "the new CA's key is not held by this run"
            how = {"method": "create_keys_and_certificate", "why": why}
        if not arn:
            arn = (self._iot_describe(iot, cert_node_id(new_cid)) or {}).get("certificateArn", "")
        old_arn = desc.get("certificateArn", "")
        things = self._iot_things(iot, old_arn, node.id)
        policies = self._iot_policies(iot, old_arn, node.id)
        for thing in things:
            self.call(lambda t=thing: iot.attach_thing_principal(thingName=t, principal=arn),
                      "attach_thing_principal", node.id)
        for policy in policies:
            self.call(lambda p=policy: iot.attach_policy(policyName=p, target=arn), "attach_policy", node.id)
        log.info("aws.iot.reissue", node=node.id, new=cert_node_id(new_cid), method=how["method"])
        return Replacement(old_id=node.id, new_id=cert_node_id(new_cid), kind=NodeKind.CERTIFICATE,
                           material=Secret({"certificate_pem": cert_pem, "private_key_pem": key_pem}),
                           attrs={**how, "things": things, "policies": policies})

    def _ca_pem(self, iot: Any, ca_node: str) -> str:
        """A CA's PEM, read once per run: every reissued certificate registers with it."""
        with self._ca_lock:
            cached = self._ca_pems.get(ca_node)
        if cached is None:
            cached = str((self._iot_describe(iot, ca_node) or {}).get("certificatePem", ""))
            with self._ca_lock:
                self._ca_pems[ca_node] = cached
        return cached

    def _registered_id(self, iot: Any, cert_pem: str, node_id: str) -> str:
        for cid in _id_candidates(cert_pem):
            if self._iot_describe(iot, cert_node_id(cid)) is not None:
                return cid
        raise ConnectorError(PROVIDER, "register_certificate", "IoT says the new certificate exists but it "
                             "cannot be found by its fingerprint", node=node_id)

    def _issuer_in(self, iot: Any, node: Node, desc: dict[str, Any], ctx: ActionContext) -> str | None:
        """The old CA's node id, if this incident replaced it (IoT's link, the graph, or the signature)."""
        from connectors.aws_iot import verify_signature

        named = [desc.get("caCertificateId"), node.attrs.get("ca")]
        candidates = [ca_node_id(c) for c in named if c]
        candidates += [p for p in ctx.predecessors(node.id, "issued") if p.startswith("aws:iot_ca:")]
        for cand in candidates:
            if cand in ctx.replacements:
                return cand
        # moto's DescribeCertificate omits caCertificateId: check the signature against replaced CAs
        for old in (k for k in ctx.replacements if k.startswith("aws:iot_ca:")):
            ca = self._iot_describe(iot, old) or {}
            if ca.get("certificatePem") and verify_signature(desc.get("certificatePem", ""), ca["certificatePem"]):
                return old
        return None

    def ca_create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        """A new P-256 CA registered in IoT (with proof of possession of its key)."""
        iot = self._iot(node)
        old = self._iot_describe(iot, node.id) or {}
        ca_pem, ca_key = new_ca(old.get("certificatePem"))
        code = self.call(iot.get_registration_code, "get_registration_code", node.id).get("registrationCode", "")
        verification = _verification_cert(ca_pem, ca_key, code)
        new_id = self.call(lambda: iot.register_ca_certificate(caCertificate=ca_pem, verificationCertificate=verification,
                                                               setAsActive=True, allowAutoRegistration=False),
                           "register_ca_certificate", node.id)["certificateId"]
        with self._ca_lock:
            self._ca_keys[ca_node_id(new_id)] = ca_key
        return Replacement(old_id=node.id, new_id=ca_node_id(new_id), kind=NodeKind.CA,
                           material=Secret({"certificate_pem": ca_pem, "private_key_pem": ca_key}),
                           attrs={"method": "new CA registered"})

    def iot_discard(self, new_id: str, ctx: ActionContext) -> ActionResult:
        node = Node(id=new_id, kind=NodeKind.CA if new_id.startswith("aws:iot_ca:") else NodeKind.CERTIFICATE,
                    provider=PROVIDER)
        iot = self._iot(node)
        desc = self._iot_describe(iot, new_id)
        if desc is None:
            return ActionResult(new_id, "discard_replacement", changed=False, detail="does not exist")
        if desc.get("status") == "ACTIVE":
            self._iot_set(iot, new_id, "INACTIVE")
        self._iot_delete(iot, node, desc)
        with self._ca_lock:
            self._ca_keys.pop(new_id, None)
        return ActionResult(new_id, "discard_replacement", detail="deactivated and deleted")

    def cert_siblings(self, node: Node) -> set[str]:
        """Other certificates attached to the same things (a reissue attaches its replacement there)."""
        iot = self._iot(node)
        arn = str(node.attrs.get("arn") or (self._iot_describe(iot, node.id) or {}).get("certificateArn", ""))
        out: set[str] = set()
        for thing in self._iot_things(iot, arn, node.id):
            principals = self.call(lambda t=thing: [x for p in iot.get_paginator("list_thing_principals")
                                                    .paginate(thingName=t) for x in p.get("principals", [])],
                                   "list_thing_principals", node.id)
            out.update(cert_node_id(a.rsplit("/", 1)[-1]) for a in principals if ":cert/" in a)
        out.discard(node.id)
        return out

    def _newer_siblings(self, node: Node) -> set[str]:
        iot = self._iot(node)
        mine = self._iot_describe(iot, node.id) or {}
        out = set()
        for sib in self.cert_siblings(node):
            desc = self._iot_describe(iot, sib) or {}
            if desc.get("status") == "ACTIVE" and desc.get("creationDate") and mine.get("creationDate") and \
                    desc["creationDate"] >= mine["creationDate"]:
                out.add(sib)
        return out

    def iot_probe_many(self, nodes: list[Node]) -> dict[str, ProbeResult]:
        """Certificate statuses from one paginated ListCertificates per account and region,
        instead of one DescribeCertificate per certificate (live state either way)."""
        out: dict[str, ProbeResult] = {}
        by_client: dict[int, tuple[Any, list[Node]]] = {}
        for node in nodes:
            iot = self._iot(node)
            by_client.setdefault(id(iot), (iot, []))[1].append(node)
        for iot, group in by_client.values():
            listed = self.call(lambda iot=iot: {c["certificateId"]: c["status"] for p in iot.get_paginator(
                "list_certificates").paginate() for c in p.get("certificates", [])}, "list_certificates")
            for node in group:
                status = listed.get(_native(node.id))
                out[node.id] = (ProbeResult(node.id, False, "list_certificates: absent (deleted)") if status is None
                                else ProbeResult(node.id, status == "ACTIVE", f"list_certificates: {status}"))
        return out

    def iot_probe(self, node: Node) -> ProbeResult:
        call = "describe_ca_certificate" if node.id.startswith("aws:iot_ca:") else "describe_certificate"
        desc = self._iot_describe(self._iot(node), node.id)
        if desc is None:
            return ProbeResult(node.id, False, f"{call}: not found (deleted)")
        status = str(desc.get("status", ""))
        return ProbeResult(node.id, status == "ACTIVE", f"{call}: {status}")


def _verification_cert(ca_pem: str, ca_key_pem: str, code: str) -> str:
    """The proof-of-possession certificate AWS asks for: CN = registration code, signed by the CA."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, code or "verification")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _id_candidates(cert_pem: str) -> list[str]:
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER)
    return [hashlib.sha256(der).hexdigest(), hashlib.sha256(cert_pem.encode()).hexdigest()]
