"""A Policy Analyzer double on loopback: Activity Analyzer's key last-authentication query.

`GET /v1/projects/<P>/locations/global/activityTypes/serviceAccountKeyLastAuthentication/activities:query`
with `pageSize` (at most 1,000) and `pageToken`, answering `{"activities": [...], "nextPageToken"}`
in the documented shape (https://cloud.google.com/policy-intelligence/docs/activity-analyzer-service-account-authentication):
each activity names the key (`activity.serviceAccountKey.fullResourceName`,
`//iam.googleapis.com/projects/<P>/serviceAccounts/<email>/keys/<key id>`) and its
`lastAuthenticatedTime`. `deny(project)` answers 403 PERMISSION_DENIED, as Google does without
the API enabled or the role granted. The IAM double (gRPC) has no such API: this one is REST.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from examples.lab.loopback import LoopbackServer

ROUTE = re.compile(r"^/v1/projects/([^/]+)/locations/global/activityTypes/serviceAccountKeyLastAuthentication"
                   r"/activities:query$")


class PolicyAnalyzerDouble(LoopbackServer):
    def __init__(self, *, page_size: int = 1000) -> None:
        self.page_size = page_size  # the service's cap is 1,000; smaller pages exercise paging
        self.activities: dict[str, list[dict[str, Any]]] = {}
        self.denied: set[str] = set()
        self.requests: list[str] = []

    def add(self, project: str, email: str, key_id: str, at: datetime) -> None:
        name = f"//iam.googleapis.com/projects/{project}/serviceAccounts/{email}/keys/{key_id}"
        day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.activities.setdefault(project, []).append({
            "fullResourceName": name,
            "activityType": "serviceAccountKeyLastAuthentication",
            "observationPeriod": {"startTime": day.isoformat().replace("+00:00", "Z"),
                                  "endTime": (day + timedelta(days=1)).isoformat().replace("+00:00", "Z")},
            "activity": {"lastAuthenticatedTime": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                         "serviceAccountKey": {"serviceAccountId": "1" + key_id[:17], "projectNumber": "123456789012",
                                               "fullResourceName": name}},
        })

    def deny(self, project: str) -> None:
        self.denied.add(project)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, body = double.handle(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def handle(self, raw_path: str) -> tuple[int, dict[str, Any]]:
        self.requests.append(raw_path)
        url = urlsplit(raw_path)
        match = ROUTE.match(url.path)
        if match is None:
            return 404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
        project = match.group(1)
        if project in self.denied:
            return 403, {"error": {"code": 403, "message": "Policy Analyzer API has not been used in project",
                                   "status": "PERMISSION_DENIED"}}
        query = parse_qs(url.query)
        size = min(self.page_size, int((query.get("pageSize") or ["1000"])[0]) or 1000)
        offset = int((query.get("pageToken") or ["0"])[0] or 0)
        items = self.activities.get(project, [])
        out: dict[str, Any] = {"activities": items[offset : offset + size]}
        if offset + size < len(items):
            out["nextPageToken"] = str(offset + size)
        return 200, out
