"""A CloudTrail `LookupEvents` double on loopback (moto does not implement it: 500).

It speaks the real wire protocol (AWS JSON 1.1, `X-Amz-Target:
com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`), so boto3's own CloudTrail
client talks to it unchanged, and it follows the API reference
(https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html):
- `LookupAttributes` (at most one; `AccessKeyId`, `EventId`, `EventName`, `EventSource`,
  `ReadOnly`, `ResourceName`, `ResourceType`, `Username`), `StartTime` / `EndTime` (epoch
  seconds; events at or after / at or before), `MaxResults` (default and maximum 50),
  `NextToken` (opaque; a token from another query is `InvalidNextTokenException`);
- events newest first, each `{EventId, EventName, ReadOnly, AccessKeyId, EventTime, EventSource,
  Username, Resources, CloudTrailEvent}`, where `CloudTrailEvent` is the record as a JSON string
  in CloudTrail's record format
  (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html);
- "The rate of lookup requests is limited to two per second, per account, per Region. If this
  limit is exceeded, a throttling error occurs": a request less than 0.5 s after the previous
  one is answered `ThrottlingException` (HTTP 400), and `throttle_next(n)` throttles the next n
  requests on demand. `requests` records when each request arrived and whether it was throttled.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from examples.lab.loopback import LoopbackServer

TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
MIN_INTERVAL = 0.5  # two lookups per second
ATTRIBUTES = {
    "AccessKeyId": lambda r: r["userIdentity"].get("accessKeyId"),
    "EventId": lambda r: r["eventID"],
    "EventName": lambda r: r["eventName"],
    "EventSource": lambda r: r["eventSource"],
    "ReadOnly": lambda r: str(r.get("readOnly", False)).lower(),
    "Username": lambda r: r["userIdentity"].get("userName"),
    "ResourceName": lambda r: [x.get("ARN") for x in r.get("resources") or []],
    "ResourceType": lambda r: [x.get("type") for x in r.get("resources") or []],
}


def record(key_id: str, user: str, event_name: str, at: datetime, *, source: str = "iam.amazonaws.com",
           account: str = "123456789012", region: str = "us-east-1", error_code: str | None = None,
           read_only: bool = True, resources: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """One management event in CloudTrail's record format (eventVersion 1.08)."""
    rec: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDA" + uuid.uuid4().hex[:17].upper(),
                         "arn": f"arn:aws:iam::{account}:user/{user}", "accountId": account,
                         "accessKeyId": key_id, "userName": user},
        "eventTime": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": None,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only,
        "resources": resources or [],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code:
        rec["errorCode"] = error_code
        rec["errorMessage"] = f"User: arn:aws:iam::{account}:user/{user} is not authorized"
    return rec


def _summary(rec: dict[str, Any]) -> dict[str, Any]:
    """The `Event` shape LookupEvents returns for a record."""
    return {
        "EventId": rec["eventID"],
        "EventName": rec["eventName"],
        "ReadOnly": str(rec.get("readOnly", False)).lower(),
        "AccessKeyId": rec["userIdentity"].get("accessKeyId", ""),
        "EventTime": datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp(),
        "EventSource": rec["eventSource"],
        "Username": rec["userIdentity"].get("userName", ""),
        "Resources": [{"ResourceType": r.get("type"), "ResourceName": r.get("ARN")} for r in rec.get("resources") or []],
        "CloudTrailEvent": json.dumps(rec),
    }


class CloudTrailDouble(LoopbackServer):
    """`with CloudTrailDouble() as ct:` LookupEvents at `ct.endpoint_url`; `ct.add(record(...))`."""

    def __init__(self, *, enforce_rate: bool = True) -> None:
        self.enforce_rate = enforce_rate
        self.records: list[dict[str, Any]] = []
        self.requests: list[tuple[float, bool]] = []  # (monotonic time, throttled)
        self._throttle = 0
        self._last: float | None = None
        self._lock = threading.Lock()

    def add(self, *records: dict[str, Any]) -> None:
        with self._lock:
            self.records.extend(records)

    def throttle_next(self, n: int = 1) -> None:
        with self._lock:
            self._throttle += n

    @property
    def throttled(self) -> int:
        return sum(1 for _, t in self.requests if t)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                status, payload = double.handle(target, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    # -- the API ----------------------------------------------------------------------------------
    def handle(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            too_soon = self.enforce_rate and self._last is not None and now - self._last < MIN_INTERVAL
            throttled = self._throttle > 0 or too_soon
            if self._throttle > 0:
                self._throttle -= 1
            self._last = now
            self.requests.append((now, throttled))
        if throttled:
            return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        if target != TARGET + "LookupEvents":
            return 400, {"__type": "UnknownOperationException", "message": target}
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return 400, {"__type": "SerializationException", "message": "not JSON"}
        return self.lookup(req)

    def lookup(self, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        attrs = req.get("LookupAttributes") or []
        if len(attrs) > 1 or any(a.get("AttributeKey") not in ATTRIBUTES for a in attrs):
            return 400, {"__type": "InvalidLookupAttributesException", "message": "one supported attribute"}
        size = int(req.get("MaxResults") or 50)
        if not 1 <= size <= 50:
            return 400, {"__type": "InvalidMaxResultsException", "message": "MaxResults is 1..50"}
        start, end = req.get("StartTime"), req.get("EndTime")
        if start is not None and end is not None and start > end:
            return 400, {"__type": "InvalidTimeRangeException", "message": "StartTime is after EndTime"}
        query = json.dumps({k: req.get(k) for k in ("LookupAttributes", "StartTime", "EndTime")}, sort_keys=True)
        offset = 0
        if req.get("NextToken"):
            try:
                token = json.loads(base64.urlsafe_b64decode(req["NextToken"]))
                if token["q"] != query:
                    raise ValueError
                offset = int(token["o"])
            except (ValueError, KeyError, TypeError):
                return 400, {"__type": "InvalidNextTokenException", "message": "invalid NextToken"}
        with self._lock:
            records = list(self.records)
        found = [_summary(r) for r in records if _matches(r, attrs)]
        if start is not None:
            found = [e for e in found if e["EventTime"] >= start]
        if end is not None:
            found = [e for e in found if e["EventTime"] <= end]
        found.sort(key=lambda e: e["EventTime"], reverse=True)
        page = found[offset : offset + size]
        out: dict[str, Any] = {"Events": page}
        if offset + size < len(found):
            out["NextToken"] = base64.urlsafe_b64encode(json.dumps({"q": query, "o": offset + size}).encode()).decode()
        return 200, out


def _matches(rec: dict[str, Any], attrs: list[dict[str, str]]) -> bool:
    for a in attrs:
        got = ATTRIBUTES[a["AttributeKey"]](rec)
        if (a["AttributeValue"] not in got) if isinstance(got, list) else (got != a["AttributeValue"]):
            return False
    return True
