"""AWS IoT collection, the fetch half: CA and device certificates with their PEMs (described once,
then known from `iot_known`), and the things each certificate is attached to."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from connectors.aws.client import PROVIDER, call, pages
from connectors.aws.iot import ca_node_id, cert_node_id
from connectors.aws.iot_known import KNOWN
from revoke.connector import CollectFinding, ConnectorError


def get_iot(
    iot: Any, iot_noretry: Any, pool: ThreadPoolExecutor, known_ca_ids: list[str],
    created_ca_ids: list[str] | None = None,
) -> tuple[dict[str, Any], list[CollectFinding]]:
    """Raw IoT state of one region (certificate PEMs are public material; no keys).

    `ListCACertificates` is not implemented by moto (500). CAs are then found from each device
    certificate's `caCertificateId` (real AWS returns it in DescribeCertificate; moto sends it in
    no answer), the configured `iot_ca_ids`, and the CAs revoke itself registered in this
    account (`created_ca_ids`, from the journal: a reissue's new CA; one deleted since, or of
    another account, is skipped); the fallback is reported as a finding and in meta.
    """
    findings: list[CollectFinding] = []
    listed = pages(iot, "list_certificates", "certificates")

    def describe(c: dict[str, Any]) -> dict[str, Any]:
        # a REVOKED or INACTIVE certificate is final for reachability: its listing entry is enough,
        # which after a fleet reissue halves the calls of every later collection
        if c.get("status") in ("REVOKED", "INACTIVE"):
            return dict(c)
        # a certificate revoke registered, or described earlier in this process: its PEM and
        # validity cannot have changed, and the listing gives its live status
        known = KNOWN.description(c)
        if known is not None:
            return known
        desc = call(lambda: iot.describe_certificate(certificateId=c["certificateId"]),
                    "describe_certificate", cert_node_id(c["certificateId"]))["certificateDescription"]
        KNOWN.remember(desc)
        return dict(desc)

    certs = list(pool.map(describe, listed))
    discovery = "list_ca_certificates"
    try:
        ca_ids = [c["certificateId"] for c in pages(iot_noretry, "list_ca_certificates", "certificates")]
    except ConnectorError as exc:
        if not exc.retryable:
            raise
        discovery = "device certificates' caCertificateId, configured iot_ca_ids and the CAs revoke registered"
        ca_ids = sorted({c["caCertificateId"] for c in certs if c.get("caCertificateId")} | set(known_ca_ids))
        ca_ids += sorted(set(created_ca_ids or []) - set(ca_ids))
        findings.append(
            CollectFinding(
                "aws.iot.list_ca_unavailable",
                f"ListCACertificates failed ({exc}); CAs found from {discovery}: a CA no device "
                "certificate names and no configuration lists is missed",
                source=PROVIDER,
            )
        )

    def ca(ca_id: str) -> dict[str, Any] | None:
        try:
            desc = call(lambda: iot.describe_ca_certificate(certificateId=ca_id), "describe_ca_certificate",
                        ca_node_id(ca_id))["certificateDescription"]
        except ConnectorError as exc:
            if exc.code == "ResourceNotFoundException" and ca_id in (created_ca_ids or []) \
                    and ca_id not in known_ca_ids:
                return None  # revoke registered it elsewhere (another account), or it was deleted since
            raise
        members = pages(iot, "list_certificates_by_ca", "certificates", caCertificateId=ca_id)
        desc["members"] = [m["certificateId"] for m in members]
        return desc

    cas = [d for d in pool.map(ca, ca_ids) if d is not None]
    if certs and not cas:
        # device certificates with no CA found: the CA (and what its key reaches) is out of the graph
        findings.append(CollectFinding(
            "aws.iot.no_ca_found", f"{len(certs)} IoT certificate(s) but no CA found (via {discovery}); "
            "list the registered CA ids in `iot_ca_ids`", severity="warning", source=PROVIDER))
    things = [t["thingName"] for t in pages(iot, "list_things", "things")]
    thing_principals = _thing_principals(iot, pool, things, listed)
    policies = pages(iot, "list_policies", "policies")
    policy_targets = dict(
        pool.map(lambda p: (p["policyName"], pages(iot, "list_targets_for_policy", "targets",
                                                    policyName=p["policyName"])), policies)
    )
    raw = {"certificates": certs, "cas": cas, "thing_principals": thing_principals,
           "policy_targets": policy_targets, "ca_discovery": discovery}
    return raw, findings


def _thing_principals(iot: Any, pool: ThreadPoolExecutor, things: list[str],
                      listed: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each thing's certificate ARNs, read in the direction with fewer calls: one
    ListThingPrincipals per thing, or one ListPrincipalThings per listed certificate when there
    are fewer certificates than things. Only certificates become edges, so both give one graph."""
    if len(listed) >= len(things):
        return dict(pool.map(lambda t: (t, pages(iot, "list_thing_principals", "principals", thingName=t)), things))
    out: dict[str, list[str]] = {t: [] for t in things}
    arns = [c["certificateArn"] for c in listed if c.get("certificateArn")]
    for arn, attached in zip(arns, pool.map(lambda a: pages(iot, "list_principal_things", "things", principal=a),
                                            arns), strict=True):
        for thing in attached:
            out.setdefault(thing, []).append(arn)
    return out
