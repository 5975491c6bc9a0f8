"""OCSF-shaped events for SIEM ingestion (OCSF schema 1.3.0 class and attribute names).

With `--log-format json`, `revoke sweep` logs every finding as one JSON line on stderr whose keys
are the OCSF event below plus structlog's own `event` ("sweep.finding"), `level` and `timestamp`.
The executor maps journal outcomes with `action_event()`.

Sweep finding -> **Detection Finding** (`class_uid` 2004, `category_uid` 2 Findings, `activity_id`
1 Create, `type_uid` 200401):

| OCSF attribute               | from the finding                                                  |
|------------------------------|-------------------------------------------------------------------|
| `time`                       | sweep time, epoch milliseconds                                    |
| `severity_id` / `severity`   | info 1 Informational, low 2, medium 3, high 4, critical 5         |
| `status_id` / `status`       | 1 New                                                             |
| `is_alert`                   | true for high and critical                                        |
| `message`                    | the one-line reason                                               |
| `finding_info.uid`           | `revoke:` + sha256(rule, node, path)[:32]: stable across sweeps   |
| `finding_info.title`         | `<rule id>: <reason>`                                             |
| `finding_info.types`         | `["credential-hygiene", <rule id>]`                               |
| `finding_info.analytic`      | `{uid: rule id, name: rule id, type_id: 1, type: "Rule"}`         |
| `resources[0]`               | `{uid: node id, type: node kind, name: node id, data: {provider}}`|
| `evidences[0].data`          | the finding's evidence (attributes) and `graph_path` (its path)   |
| `unmapped.targets`           | credential ids a hygiene playbook would act on                    |
| `metadata`                   | OCSF `version` 1.3.0, `product` revoke (+ version), `log_name` sweep |

Executed action (a journal outcome record) -> **Account Change** (`class_uid` 3001,
`category_uid` 3 Identity & Access Management), `type_uid` = 300100 + `activity_id`:

| revoke verb                                        | `activity_id` / `activity_name` |
|----------------------------------------------------|---------------------------------|
| `create_ca`, `create`                              | 1 Create                        |
| `rollback`, `enable`                               | 2 Enable                        |
| `rotate`, `reissue`                                | 3 Password Change (credential replaced) |
| `revoke`, `disable`, `revoke_sessions`, `retire_ca`| 5 Disable                       |
| `finalize`, `delete`                               | 6 Delete                        |
| anything else                                      | 99 Other (`activity_name` = the verb) |

`status_id` 1 Success / 2 Failure / 0 Unknown (no outcome yet) from the record's `ok`;
`severity_id` 1 Informational on success, 4 High on failure; `user` (required by the class) is
the credential's principal when the record names one (`principal` / `owner`), else the credential
itself with `type` "Credential"; `status_detail` is the connector's detail or error line;
`unmapped` keeps incident, step id, node, verb, changed, journal seq and hash.

No secret value is ever part of either event: findings and journal records hold ids and
fingerprints only, and the log pipeline's redaction runs on every string.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

OCSF_VERSION = "1.3.0"

SEVERITY_IDS = {"info": (1, "Informational"), "low": (2, "Low"), "medium": (3, "Medium"),
                "high": (4, "High"), "critical": (5, "Critical")}

ACTIVITIES: dict[str, tuple[int, str]] = {
    "create_ca": (1, "Create"), "create": (1, "Create"),
    "rollback": (2, "Enable"), "enable": (2, "Enable"),
    "rotate": (3, "Password Change"), "reissue": (3, "Password Change"),
    "revoke": (5, "Disable"), "disable": (5, "Disable"), "revoke_sessions": (5, "Disable"), "retire_ca": (5, "Disable"),
    "finalize": (6, "Delete"), "delete": (6, "Delete"),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("revoke")
    except PackageNotFoundError:  # a source checkout: the version is informative only
        return "0"


def _metadata(log_name: str) -> dict[str, Any]:
    return {"version": OCSF_VERSION, "log_name": log_name,
            "product": {"name": "revoke", "vendor_name": "revoke", "version": _version()}}


def _ms(value: datetime | str | None) -> int:
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, str):
        from revoke.model import parse_time

        value = parse_time(value) or datetime.now(UTC)
    return int(value.timestamp() * 1000)


def finding_uid(rule: str, node: str, path: list[str] | None = None) -> str:
    body = "\x1f".join([rule, node, *(path or [])])
    return "revoke:" + hashlib.sha256(body.encode()).hexdigest()[:32]


def finding_event(finding: Any, *, time: datetime | None = None) -> dict[str, Any]:
    """A sweep finding (`revoke.sweep.Finding` or its dict) as an OCSF Detection Finding."""
    f = finding.to_dict() if hasattr(finding, "to_dict") else dict(finding)
    severity = str(f["severity"])
    sev_id, sev_name = SEVERITY_IDS[severity]
    ts = _ms(time)
    return {
        "class_uid": 2004, "class_name": "Detection Finding",
        "category_uid": 2, "category_name": "Findings",
        "activity_id": 1, "activity_name": "Create",
        "type_uid": 200401, "type_name": "Detection Finding: Create",
        "time": ts,
        "severity_id": sev_id, "severity": sev_name,
        "status_id": 1, "status": "New",
        "is_alert": sev_id >= 4,
        "message": f["reason"],
        "metadata": _metadata("sweep"),
        "finding_info": {
            "uid": finding_uid(f["rule"], f["node"], f.get("path")),
            "title": f"{f['rule']}: {f['reason']}",
            "types": ["credential-hygiene", f["rule"]],
            "analytic": {"uid": f["rule"], "name": f["rule"], "type_id": 1, "type": "Rule"},
            "created_time": ts,
        },
        "resources": [{"uid": f["node"], "name": f["node"], "type": f.get("kind") or "unknown",
                       "data": {"provider": f.get("provider") or ""}}],
        # `graph_path`, not `path`: evidence may carry a `path` attribute of its own (a file, a Vault login path)
        "evidences": [{"data": {**(f.get("evidence") or {}), "graph_path": list(f.get("path") or [])}}],
        "unmapped": {"targets": list(f.get("targets") or [])},
    }


def step_event(record: dict[str, Any], step: Any, incident: str) -> dict[str, Any]:
    """An executor's outcome record (`Record.to_dict()`) of a plan step, so a SIEM can ingest
    `--log-format json` as is."""
    return action_event({**record, "verb": step.verb, "kind": step.kind, "provider": step.provider,
                         "incident": incident})


def action_event(record: dict[str, Any]) -> dict[str, Any]:
    """An executed action (a journal record, `Record.to_dict()`, or a flat dict with `verb`, `node`,
    `ok`...) as an OCSF Account Change event."""
    data = dict(record.get("data") or {})
    flat = {**data, **{k: v for k, v in record.items() if k != "data" and v is not None}}
    step = str(flat.get("action") or "")
    verb = str(flat.get("verb") or (step.split(":", 1)[0] if ":" in step else step) or "unknown")
    node = str(flat.get("node") or (step.split(":", 1)[1] if ":" in step else ""))
    activity_id, activity_name = ACTIVITIES.get(verb, (99, verb))
    ok = flat.get("ok")
    status_id, status = (0, "Unknown") if ok is None else ((1, "Success") if ok else (2, "Failure"))
    sev_id, sev_name = (4, "High") if ok is False else (1, "Informational")
    principal = str(flat.get("principal") or flat.get("owner") or "")
    user = ({"uid": principal, "name": principal, "type_id": 99, "type": "Principal"} if principal
            else {"uid": node, "name": node, "type_id": 99, "type": "Credential"})
    event: dict[str, Any] = {
        "class_uid": 3001, "class_name": "Account Change",
        "category_uid": 3, "category_name": "Identity & Access Management",
        "activity_id": activity_id, "activity_name": activity_name,
        "type_uid": 300100 + activity_id, "type_name": f"Account Change: {activity_name}",
        "time": _ms(flat.get("ts")),
        "severity_id": sev_id, "severity": sev_name,
        "status_id": status_id, "status": status,
        "message": f"{verb} {node}".strip(),
        "metadata": _metadata("journal"),
        "user": user,
        "unmapped": {k: flat[k] for k in ("incident", "action", "node", "kind", "provider", "changed", "seq", "hash")
                     if k in flat} | {"verb": verb},
    }
    detail = flat.get("error") or flat.get("detail")
    if detail:
        event["status_detail"] = str(detail)
    if flat.get("actor"):
        event["actor"] = {"user": {"name": str(flat["actor"]), "type_id": 1, "type": "User"}}
    if principal:
        event["resources"] = [{"uid": node, "name": node, "type": str(flat.get("kind") or "credential")}]
    return event
