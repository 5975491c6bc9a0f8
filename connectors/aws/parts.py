"""An AWS block of several accounts, collected one account per worker job (`revoke/collect_parts.py`).

Each account's part reads what `collect_account` reads (and its observed use, when asked) with
that account's own settings; the organization, when asked, is read afterwards in one more part,
with the first account's credentials as in-process collection does, for the account ids the parts
found. `assemble` then transforms all accounts together (cross-account trust and resource
policies need every account), so the snapshot is the one `AwsConnector.collect()` gives.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

from connectors.aws.collect import AccountData, collect_account, get_organization
from connectors.aws.options import AwsOptions
from connectors.aws.transform import collected
from revoke.collect_parts import (
    CollectPart,
    edges_from_wire,
    edges_to_wire,
    findings_from_wire,
    findings_to_wire,
    plain,
    unplain,
)
from revoke.connector import Collected

if TYPE_CHECKING:
    from connectors.aws.connector import AwsConnector

ORG_FIELDS = ("management", "org_id", "org_path", "scps", "rcps")


def account_parts(config: dict[str, Any]) -> list[CollectPart]:
    opts = AwsOptions.parse(config, "aws")
    entries = config.get("accounts") or []
    if opts.accounts is None or len(entries) < 2:
        return []  # one account: one job
    return [CollectPart(f"account {k + 1} of {len(entries)}", {**config, "accounts": [entry], "organizations": False})
            for k, entry in enumerate(entries)]


def read_part(connector: AwsConnector, task: dict[str, Any]) -> dict[str, Any]:
    account = connector.accounts[0]
    if "organization" in task:
        datas = [AccountData(account_id=str(a), region="") for a in task["organization"]]
        get_organization(account.client("organizations"), datas)
        return {"organization": [plain({**{f: getattr(d, f) for f in ORG_FIELDS},
                                        "findings": findings_to_wire(d.findings)}) for d in datas]}
    data = collect_account(account, connector.max_workers, connector.iot_ca_ids, connector.created_ca_ids)
    out: dict[str, Any] = {"account": plain({**asdict(data), "findings": findings_to_wire(data.findings)})}
    if connector.opts.observations:
        from connectors.aws.usage import observe_account
        from revoke.observed import to_edges

        observed, findings, entry = observe_account(account, data, connector.opts)
        out["observed"] = {"edges": edges_to_wire(to_edges(observed)), "findings": findings_to_wire(findings),
                           "events": len(observed), "cloudtrail": entry}
    return out


def assemble(config: dict[str, Any], done: list[tuple[CollectPart, dict[str, Any]]]) -> Collected | list[CollectPart]:
    opts = AwsOptions.parse(config, "aws")
    read = [result for _, result in done if "account" in result]
    datas = [_account(result["account"]) for result in read]
    if opts.organizations:
        org = next((result["organization"] for _, result in done if "organization" in result), None)
        if org is None:  # the first account's credentials read it, as in one process
            first = {**config, "accounts": [config["accounts"][0]], "organizations": False}
            return [CollectPart("organization", first, {"organization": [d.account_id for d in datas]})]
        for data, known in zip(datas, org, strict=True):
            known = unplain(known)
            for name in ORG_FIELDS:
                setattr(data, name, known[name])
            data.findings += findings_from_wire(known["findings"])
    out = collected(datas, {arn: p.model_dump() for arn, p in opts.session_policies.items()})
    if opts.observations:
        meta: dict[str, Any] = {}
        edges = []
        for data, result in zip(datas, read, strict=True):
            seen = result["observed"]
            out.findings += findings_from_wire(seen["findings"])
            edges += edges_from_wire(seen["edges"])
            if seen["cloudtrail"] is not None:
                meta[data.account_id] = seen["cloudtrail"]
        # one account's keys are no other's: its edges sorted together are `to_edges` of all of them
        out.edges += sorted(edges, key=lambda e: (e.src, e.rel, e.dst))
        events = sum(result["observed"]["events"] for result in read)
        out.meta["observations"] = {"source": "aws", "events": events, **meta}
    return out


def _account(wire: dict[str, Any]) -> AccountData:
    values = unplain(wire)
    values["findings"] = findings_from_wire(wire["findings"])
    return AccountData(**{f.name: values[f.name] for f in fields(AccountData)})
