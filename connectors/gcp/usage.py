"""Observed use of GCP service-account keys: Activity Analyzer's "last authenticated" signal.

Graph contract (see `revoke.observed`):
    gcp:service_account_key:<key id> -[observed_use]-> gcp:service_account:<email>
        one event per key: its last authentication (`source: gcp:policy_analyzer`, `action:
        authenticated`)

Policy Analyzer's `activities:query` on `projects/<P>/locations/global/activityTypes/
serviceAccountKeyLastAuthentication` (https://cloud.google.com/policy-intelligence/docs/activity-analyzer-service-account-authentication)
answers, per key, `activity.lastAuthenticatedTime` and the key's `fullResourceName`, paged with
`nextPageToken` (at most 1,000 a page). It needs the Policy Analyzer API enabled and
`policyanalyzer.serviceAccountKeyLastAuthenticationActivities.query`; where it is refused or
absent the collection goes on with a finding: the IAM API itself has no last-use field (only a
key's `validAfterTime`, its creation), so then nothing about use is known. Only keys the
collection found are annotated; nothing but key id, time and project is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from connectors.gcp.transform import PROVIDER
from revoke.connector import Collected, CollectFinding, ConnectorError
from revoke.errors import InputError
from revoke.model import Relation, parse_time
from revoke.observed import Observation, to_edges

ACTIVITY = "serviceAccountKeyLastAuthentication"
DEFAULT_ENDPOINT = "https://policyanalyzer.googleapis.com"
UNAVAILABLE = ("PERMISSION_DENIED", "NOT_FOUND", "UNAUTHENTICATED", "INVALID_ARGUMENT")


def key_id_of(full_resource_name: str) -> str:
    """`//iam.googleapis.com/projects/P/serviceAccounts/E/keys/K` -> `K`."""
    head, sep, key = str(full_resource_name).rpartition("/keys/")
    return key if sep and head and "/" not in key else ""


def parse_activities(activities: Iterable[dict[str, Any]], owners: dict[str, str]) -> list[Observation]:
    """`owners`: key node id -> its service account node id (the collected `authenticates_as`)."""
    out = []
    for item in activities:
        if not isinstance(item, dict):
            continue
        act = item.get("activity") or {}
        key = (act.get("serviceAccountKey") or {}) if isinstance(act, dict) else {}
        key_id = key_id_of(key.get("fullResourceName") or item.get("fullResourceName") or "")
        node = f"{PROVIDER}:service_account_key:{key_id}"
        if not key_id or node not in owners:
            continue
        try:
            at = parse_time(act.get("lastAuthenticatedTime"), field_name="lastAuthenticatedTime")
        except InputError:
            continue
        if at is not None:
            out.append(Observation(node, Relation.OBSERVED_USE, owners[node], at, "authenticated",
                                   "gcp:policy_analyzer"))
    return out


def query_key_activity(client: Any, endpoint: str, project: str) -> list[dict[str, Any]]:
    path = f"v1/projects/{project}/locations/global/activityTypes/{ACTIVITY}/activities:query"
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        params: dict[str, Any] = {"pageSize": 1000}
        if token:
            params["pageToken"] = token
        body = client.rest_get(endpoint, path, params, "activities.query")
        items += [a for a in body.get("activities") or [] if isinstance(a, dict)]
        token = str(body.get("nextPageToken") or "")
        if not token:
            return items


def observe(client: Any, projects: list[str], endpoint: str | None, out: Collected) -> None:
    owners = {e.src: e.dst for e in out.edges
              if e.rel is Relation.AUTHENTICATES_AS and e.src.startswith(f"{PROVIDER}:service_account_key:")}
    observations: list[Observation] = []
    for project in projects:
        try:
            activities = query_key_activity(client, endpoint or DEFAULT_ENDPOINT, project)
        except ConnectorError as exc:
            if exc.code not in UNAVAILABLE:
                raise
            out.findings.append(CollectFinding(
                "gcp.activity_unavailable", f"project {project}: key last-authentication activity unavailable "
                f"({exc.code}); enable the Policy Analyzer API and grant roles/policyanalyzer.activityAnalysisViewer; "
                "no observed use of its keys", severity="info", source=PROVIDER))
            continue
        observations += parse_activities(activities, owners)
    out.edges += to_edges(observations)
    out.meta["observations"] = {"source": "gcp:policy_analyzer", "events": len(observations)}
