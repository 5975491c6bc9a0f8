"""Actions on AWS IoT device certificates and CA certificates: plain functions over an `iot` client.

Every action reads the certificate's current state first (or, on the executor's first attempt
at a certificate collected as active, sets it directly), so a repeat reports `changed=False`.

A reissued device certificate gets the old one's policies and things. It is signed by the
incident's new CA when `ctx.replacements` maps the old CA to a new IoT CA whose key this
connector created in this run (`NewCas` keeps that key in memory only); otherwise IoT makes one
(`create_keys_and_certificate`, an AWS-signed certificate) and the result says so.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

import structlog

from connectors.aws.client import PROVIDER, call, native, pages
from connectors.aws.iot import (
    ca_node_id,
    cert_node_id,
    registered_id_candidates,
    verification_certificate,
    verify_signature,
)
from connectors.aws.iot_known import KNOWN
from connectors.pki import new_ca
from connectors.pki import new_leaf as new_device_certificate
from revoke.connector import ActionContext, ActionResult, ConnectorError, ProbeResult, Replacement, Secret
from revoke.model import Node, NodeKind

log = structlog.get_logger()
NOT_FOUND = "ResourceNotFoundException"


class NewCas:
    """The IoT CAs this run created (their keys, in memory only) and CA PEMs read once per run."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}  # new CA node id -> key PEM
        self._pems: dict[str, str] = {}  # CA node id -> certificate PEM
        self._lock = threading.Lock()

    def add(self, ca_node: str, key_pem: str) -> None:
        with self._lock:
            self._keys[ca_node] = key_pem

    def key(self, ca_node: str) -> str | None:
        with self._lock:
            return self._keys.get(ca_node)

    def forget(self, ca_node: str) -> None:
        with self._lock:
            self._keys.pop(ca_node, None)

    def pem(self, iot: Any, ca_node: str) -> str:
        """A CA's PEM, read once per run: every reissued certificate registers with it."""
        with self._lock:
            cached = self._pems.get(ca_node)
        if cached is None:
            cached = str((describe(iot, ca_node) or {}).get("certificatePem", ""))
            with self._lock:
                self._pems[ca_node] = cached
        return cached


class ThingReads:
    """The things `siblings` just listed for a certificate, handed once to the reissue that
    follows it in the same step (the executor asks for siblings, then for the replacement), so
    a reissue lists the old certificate's things once. `attached` says whether the certificate
    itself was among those things' principals: then it existed a moment ago, which is all the
    reissue's describe would have told it beyond its immutable PEM. Keyed by node id and
    certificate ARN, taken at most once and only while fresh."""

    MAX_AGE = 30.0  # seconds: the siblings read and the reissue are one step of one run

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[float, list[str], bool]] = {}
        self._lock = threading.Lock()

    def put(self, node_id: str, arn: str, things: list[str], attached: bool) -> None:
        with self._lock:
            self._seen[(node_id, arn)] = (time.monotonic(), list(things), attached)

    def take(self, node_id: str, arn: str) -> tuple[list[str], bool] | None:
        with self._lock:
            seen = self._seen.pop((node_id, arn), None)
        if seen is None or time.monotonic() - seen[0] > self.MAX_AGE:
            return None
        return seen[1], seen[2]


def is_ca(node_id: str) -> bool:
    return node_id.startswith("aws:iot_ca:")


def describe(iot: Any, node_id: str) -> dict[str, Any] | None:
    """The certificate's (or CA's) description; None when IoT does not know it."""
    cid = native(node_id)
    try:
        if is_ca(node_id):
            resp = call(lambda: iot.describe_ca_certificate(certificateId=cid), "describe_ca_certificate", node_id)
        else:
            resp = call(lambda: iot.describe_certificate(certificateId=cid), "describe_certificate", node_id)
    except ConnectorError as exc:
        if exc.code == NOT_FOUND:
            return None
        raise
    return dict(resp["certificateDescription"])


def _set_status(iot: Any, node_id: str, status: str) -> None:
    cid = native(node_id)
    if is_ca(node_id):
        call(lambda: iot.update_ca_certificate(certificateId=cid, newStatus=status), "update_ca_certificate", node_id)
    else:
        call(lambda: iot.update_certificate(certificateId=cid, newStatus=status), "update_certificate", node_id)


# -- revoke, rollback, finalize -------------------------------------------------------------------


def revoke(iot: Any, node: Node, ctx: ActionContext) -> ActionResult:
    """A device certificate becomes REVOKED (final in IoT), a CA INACTIVE."""
    dead = "INACTIVE" if is_ca(node.id) else "REVOKED"
    if ctx.options.get("first_attempt") and node.status == "active":
        # the executor's first try at a certificate collected as active: set it directly
        # (setting the same status twice is harmless); a vanished certificate is already dead
        try:
            _set_status(iot, node.id, dead)
        except ConnectorError as exc:
            if exc.code != NOT_FOUND:
                raise
            return ActionResult(node.id, "revoke", changed=False, detail="certificate no longer exists")
        return ActionResult(node.id, "revoke", detail=f"status {dead}")
    status = (describe(iot, node.id) or {}).get("status")
    if status is None:
        return ActionResult(node.id, "revoke", changed=False, detail="certificate no longer exists")
    if status in ("REVOKED", "INACTIVE") and (status == dead or is_ca(node.id)):
        return ActionResult(node.id, "revoke", changed=False, detail=f"already {status}")
    _set_status(iot, node.id, dead)
    return ActionResult(node.id, "revoke", detail=f"status {dead}")


def rollback(iot: Any, node: Node) -> ActionResult:
    status = (describe(iot, node.id) or {}).get("status")
    if status is None:
        raise ConnectorError(PROVIDER, "rollback", "the certificate was deleted; it cannot be restored", node=node.id)
    if status == "ACTIVE":
        return ActionResult(node.id, "rollback", changed=False, detail="already ACTIVE")
    _set_status(iot, node.id, "ACTIVE")
    return ActionResult(node.id, "rollback", detail="status ACTIVE")


def finalize(iot: Any, node: Node) -> ActionResult:
    desc = describe(iot, node.id)
    status = desc.get("status") if desc else None
    if status is None:
        return ActionResult(node.id, "finalize", changed=False, detail="already deleted")
    if status == "ACTIVE":
        raise ConnectorError(PROVIDER, "finalize", "certificate is still ACTIVE: revoke it first", node=node.id)
    return _delete(iot, node, desc or {})


def _delete(iot: Any, node: Node, desc: dict[str, Any]) -> ActionResult:
    cid = native(node.id)
    if is_ca(node.id):
        members = pages(iot, "list_certificates_by_ca", "certificates", node.id, caCertificateId=cid)
        live = [c["certificateId"] for c in members if c.get("status") == "ACTIVE"]
        if live:
            raise ConnectorError(PROVIDER, "finalize", f"{len(live)} certificates it issued are still ACTIVE "
                                 "in IoT: reissue and revoke them before deleting the CA", node=node.id)
        call(lambda: iot.delete_ca_certificate(certificateId=cid), "delete_ca_certificate", node.id)
        return ActionResult(node.id, "finalize", detail="CA certificate deleted from IoT")
    arn = desc.get("certificateArn", "")
    for thing in _things(iot, arn, node.id):
        call(partial(iot.detach_thing_principal, thingName=thing, principal=arn), "detach_thing_principal", node.id)
    for policy in _policies(iot, arn, node.id):
        call(partial(iot.detach_policy, policyName=policy, target=arn), "detach_policy", node.id)
    call(lambda: iot.delete_certificate(certificateId=cid), "delete_certificate", node.id)
    return ActionResult(node.id, "finalize", detail="certificate detached and deleted")


def _things(iot: Any, arn: str, node_id: str) -> list[str]:
    return pages(iot, "list_principal_things", "things", node_id, principal=arn)


def _policies(iot: Any, arn: str, node_id: str) -> list[str]:
    return [p["policyName"] for p in pages(iot, "list_attached_policies", "policies", node_id, target=arn)]


# -- reissue --------------------------------------------------------------------------------------


def reissue_certificate(iot: Any, node: Node, ctx: ActionContext, cas: NewCas,
                        reads: ThingReads | None = None) -> ActionResult:
    reads = reads or ThingReads()
    mine = describe(iot, node.id)
    newer = _newer_siblings(iot, node, mine, reads)
    if newer:
        reads.take(node.id, str((mine or {}).get("certificateArn") or node.attrs.get("arn") or ""))
        return ActionResult(node.id, "reissue", changed=False, detail="already reissued",
                            data={"new_id": sorted(newer)[0]})
    return _reissued(node, certificate_replacement(iot, node, ctx, cas, reads, desc=mine))


def reissue_ca(iot: Any, node: Node, cas: NewCas) -> ActionResult:
    return _reissued(node, ca_replacement(iot, node, cas))


def _reissued(node: Node, made: Replacement) -> ActionResult:
    # no store holds device keys here: the material is not delivered by this action
    return ActionResult(node.id, "reissue", detail="replacement created; material not delivered by this action",
                        data={"new_id": made.new_id, **{k: v for k, v in made.attrs.items() if k != "key"}})


def certificate_replacement(iot: Any, node: Node, ctx: ActionContext, cas: NewCas,
                            reads: ThingReads | None = None, *, desc: dict[str, Any] | None = None) -> Replacement:
    arn_known = str((desc or {}).get("certificateArn") or node.attrs.get("arn") or "")
    seen = reads.take(node.id, arn_known) if reads is not None and arn_known else None
    if desc is None and seen is not None and seen[1]:
        # siblings saw it attached a moment ago (it exists); its PEM cannot have changed
        desc = KNOWN.description({"certificateId": native(node.id), "certificateArn": arn_known})
    desc = desc or describe(iot, node.id)
    if desc is None:
        raise ConnectorError(PROVIDER, "reissue", "certificate not found", node=node.id)
    old_ca = _issuer_in(iot, node, desc, ctx)
    new_ca_node = ctx.replacements.get(old_ca) if old_ca else None
    ca_key = cas.key(new_ca_node or "")
    if new_ca_node and ca_key:
        ca_pem = cas.pem(iot, new_ca_node)
        cert_pem, key_pem = new_device_certificate(desc.get("certificatePem", ""), ca_pem, ca_key)
        try:
            registered = call(lambda: iot.register_certificate(certificatePem=cert_pem, caCertificatePem=ca_pem,
                                                               setAsActive=True), "register_certificate", node.id)
        except ConnectorError as exc:
            if exc.code != "ResourceAlreadyExistsException":
                raise
            # a retry of a registration whose answer was lost: IoT names a certificate by the
            # SHA-256 of its DER (some emulators hash the PEM text), so look this one up
            registered = {"certificateId": _registered_id(iot, cert_pem, node.id), "certificateArn": ""}
        new_cid, arn = registered["certificateId"], registered.get("certificateArn", "")
        how = {"method": "signed by the new CA", "ca": native(new_ca_node)}
    else:
        made = call(lambda: iot.create_keys_and_certificate(setAsActive=True), "create_keys_and_certificate", node.id)
        new_cid, cert_pem, key_pem = made["certificateId"], made["certificatePem"], made["keyPair"]["PrivateKey"]
        arn = made.get("certificateArn", "")
        why = "no new CA for this incident" if not new_ca_node else "the new CA's key is not held by this run"
        how = {"method": "create_keys_and_certificate", "why": why}
    if not arn:
        arn = (describe(iot, cert_node_id(new_cid)) or {}).get("certificateArn", "")
    # the next collection (verify's) need not describe the certificate made here
    KNOWN.put(new_cid, cert_pem, ca_id=how.get("ca"))
    old_arn = desc.get("certificateArn", "")
    # the things `siblings` listed a moment ago for this step, else a fresh read
    things = seen[0] if seen is not None and old_arn == arn_known else _things(iot, old_arn, node.id)
    policies = _policies(iot, old_arn, node.id)
    for thing in things:
        call(partial(iot.attach_thing_principal, thingName=thing, principal=arn), "attach_thing_principal", node.id)
    for policy in policies:
        call(partial(iot.attach_policy, policyName=policy, target=arn), "attach_policy", node.id)
    log.info("aws.iot.reissue", node=node.id, new=cert_node_id(new_cid), method=how["method"])
    return Replacement(old_id=node.id, new_id=cert_node_id(new_cid), kind=NodeKind.CERTIFICATE,
                       material=Secret({"certificate_pem": cert_pem, "private_key_pem": key_pem}),
                       attrs={**how, "things": things, "policies": policies})


def _registered_id(iot: Any, cert_pem: str, node_id: str) -> str:
    for cid in registered_id_candidates(cert_pem):
        if describe(iot, cert_node_id(cid)) is not None:
            return cid
    raise ConnectorError(PROVIDER, "register_certificate", "IoT says the new certificate exists but it "
                         "cannot be found by its fingerprint", node=node_id)


def _issuer_in(iot: Any, node: Node, desc: dict[str, Any], ctx: ActionContext) -> str | None:
    """The old CA's node id, if this incident replaced it (IoT's link, the graph, or the signature)."""
    named = [desc.get("caCertificateId"), node.attrs.get("ca")]
    candidates = [ca_node_id(c) for c in named if c]
    candidates += [p for p in ctx.predecessors(node.id, "issued") if p.startswith("aws:iot_ca:")]
    for cand in candidates:
        if cand in ctx.replacements:
            return cand
    # moto's DescribeCertificate omits caCertificateId: check the signature against replaced CAs
    for old in (k for k in ctx.replacements if k.startswith("aws:iot_ca:")):
        ca = describe(iot, old) or {}
        if ca.get("certificatePem") and verify_signature(desc.get("certificatePem", ""), ca["certificatePem"]):
            return old
    return None


def ca_replacement(iot: Any, node: Node, cas: NewCas) -> Replacement:
    """A new P-256 CA registered in IoT (with proof of possession of its key)."""
    old = describe(iot, node.id) or {}
    ca_pem, ca_key = new_ca(old.get("certificatePem"))
    code = call(iot.get_registration_code, "get_registration_code", node.id).get("registrationCode", "")
    verification = verification_certificate(ca_pem, ca_key, code)
    new_id = call(lambda: iot.register_ca_certificate(caCertificate=ca_pem, verificationCertificate=verification,
                                                      setAsActive=True, allowAutoRegistration=False),
                  "register_ca_certificate", node.id)["certificateId"]
    cas.add(ca_node_id(new_id), ca_key)
    return Replacement(old_id=node.id, new_id=ca_node_id(new_id), kind=NodeKind.CA,
                       material=Secret({"certificate_pem": ca_pem, "private_key_pem": ca_key}),
                       attrs={"method": "new CA registered"})


def discard(iot: Any, new_id: str, cas: NewCas) -> ActionResult:
    """Deactivate and delete a replacement whose material was lost (a crashed run)."""
    node = Node(id=new_id, kind=NodeKind.CA if is_ca(new_id) else NodeKind.CERTIFICATE, provider=PROVIDER)
    desc = describe(iot, new_id)
    if desc is None:
        return ActionResult(new_id, "discard_replacement", changed=False, detail="does not exist")
    if desc.get("status") == "ACTIVE":
        _set_status(iot, new_id, "INACTIVE")
    _delete(iot, node, desc)
    cas.forget(new_id)
    return ActionResult(new_id, "discard_replacement", detail="deactivated and deleted")


def siblings(iot: Any, node: Node, reads: ThingReads | None = None,
             desc: dict[str, Any] | None = None) -> set[str]:
    """Other certificates attached to the same things (a reissue attaches its replacement there).
    The things listed are kept in `reads` for the reissue of this node that follows."""
    arn = str(node.attrs.get("arn") or (desc if desc is not None else describe(iot, node.id) or {})
              .get("certificateArn", ""))
    out: set[str] = set()
    things = _things(iot, arn, node.id)
    attached = False
    for thing in things:
        principals = pages(iot, "list_thing_principals", "principals", node.id, thingName=thing)
        attached = attached or arn in principals
        out.update(cert_node_id(a.rsplit("/", 1)[-1]) for a in principals if ":cert/" in a)
    if reads is not None and arn:
        reads.put(node.id, arn, things, attached)
    out.discard(node.id)
    return out


def _newer_siblings(iot: Any, node: Node, desc: dict[str, Any] | None, reads: ThingReads) -> set[str]:
    mine = desc or {}
    out = set()
    for sib in siblings(iot, node, reads, desc):
        desc = describe(iot, sib) or {}
        if desc.get("status") == "ACTIVE" and desc.get("creationDate") and mine.get("creationDate") and \
                desc["creationDate"] >= mine["creationDate"]:
            out.add(sib)
    return out


# -- probes ---------------------------------------------------------------------------------------


def probe(iot: Any, node: Node) -> ProbeResult:
    op = "describe_ca_certificate" if is_ca(node.id) else "describe_certificate"
    desc = describe(iot, node.id)
    if desc is None:
        return ProbeResult(node.id, False, f"{op}: not found (deleted)")
    status = str(desc.get("status", ""))
    return ProbeResult(node.id, status == "ACTIVE", f"{op}: {status}")


def probe_listed(iot: Any, nodes: list[Node]) -> dict[str, ProbeResult]:
    """Certificate statuses from one paginated ListCertificates (one account and region) instead
    of one DescribeCertificate per certificate: live state either way."""
    listed = {c["certificateId"]: c["status"] for c in pages(iot, "list_certificates", "certificates")}
    out: dict[str, ProbeResult] = {}
    for node in nodes:
        status = listed.get(native(node.id))
        out[node.id] = (ProbeResult(node.id, False, "list_certificates: absent (deleted)") if status is None
                        else ProbeResult(node.id, status == "ACTIVE", f"list_certificates: {status}"))
    return out
