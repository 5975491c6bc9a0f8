"""Observed use of AWS access keys: last-used data and the CloudTrail event history.

Graph contract (see `revoke.observed`):
    aws:access_key:<id> -[observed_use]-> aws:user:<arn>
        `attrs.events`: the key's last use (`source: aws:credential_report` or
        `aws:get_access_key_last_used`, as the collection found it; `action: last used`), and,
        with `cloudtrail_days`, each CloudTrail management event signed with the key
        (`source: aws:cloudtrail`, `action: <service>:<EventName>`, `outcome: denied` when the
        record carries an `errorCode`).

CloudTrail `LookupEvents` (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html)
takes one lookup attribute (`AccessKeyId` here), returns at most 50 events a page with a
`NextToken`, covers 90 days of one region, and allows two requests per second per account and
region: every request waits for its account's `RateLimit`, and a `ThrottlingException` waits
longer and retries (the client is made without botocore retries, so they never bypass
the limit). Only keys last used within the lookback are looked up (a key unused since
has no events); beyond `cloudtrail_max_keys` a finding names how many were left out.
Kept per event: the key id, the event name and source, the time and whether it failed; never
request parameters, source addresses or anything the record holds beyond that.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from connectors.aws.client import PROVIDER, Account, call
from connectors.aws.collect import AccountData
from connectors.aws.options import AwsOptions
from connectors.aws.transform import user_id
from revoke.connector import Collected, CollectFinding, ConnectorError
from revoke.model import Relation
from revoke.observed import DENIED, OK, Observation, to_edges

INTERVAL = 0.5  # two LookupEvents requests per second per account and region
THROTTLED = ("ThrottlingException", "Throttling", "TooManyRequestsException")


class RateLimit:
    """One request at a time, each starting at least `interval` seconds after the previous one
    ended: spacing measured from the answer, so the server sees the pace however long a request
    took to reach it (connection set-up, signing)."""

    def __init__(self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval, self.clock, self.sleep = interval, clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, extra: float = 0.0) -> Iterator[None]:
        with self._lock:
            delay = self._next + extra - self.clock()
            if delay > 0:
                self.sleep(delay)
            try:
                yield
            finally:
                self._next = self.clock() + self.interval


def lookup_key_events(ct: Any, key_id: str, start: datetime, end: datetime, limit: RateLimit,
                      *, attempts: int = 5) -> tuple[list[dict[str, Any]], int]:
    """Every LookupEvents event signed with `key_id` in [start, end], and how many throttles it met."""
    node = f"aws:access_key:{key_id}"
    events: list[dict[str, Any]] = []
    token: str | None = None
    throttles = 0
    while True:
        kwargs: dict[str, Any] = {"LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": key_id}],
                                  "StartTime": start, "EndTime": end, "MaxResults": 50}
        if token:
            kwargs["NextToken"] = token
        for attempt in range(attempts):
            try:
                with limit.slot(extra=INTERVAL * (2 ** attempt - 1)):  # a throttle doubles the wait
                    resp = call(partial(ct.lookup_events, **kwargs), "lookup_events", node)
                break
            except ConnectorError as exc:
                if exc.code not in THROTTLED or attempt == attempts - 1:
                    raise
                throttles += 1
        events += resp.get("Events") or []
        token = resp.get("NextToken")
        if not token:
            return events, throttles


def event_observation(event: dict[str, Any], key_node: str, target: str) -> Observation | None:
    """One LookupEvents event as an observation; None when it carries no usable time."""
    at = event.get("EventTime")
    if isinstance(at, int | float):
        when = datetime.fromtimestamp(at, UTC)
    elif isinstance(at, datetime):
        when = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    else:
        return None
    try:
        rec = json.loads(event.get("CloudTrailEvent") or "{}")
    except (ValueError, RecursionError):
        rec = {}
    rec = rec if isinstance(rec, dict) else {}
    service = str(event.get("EventSource") or rec.get("eventSource") or "").removesuffix(".amazonaws.com")
    name = str(event.get("EventName") or rec.get("eventName") or "")
    return Observation(key_node, Relation.OBSERVED_USE, target, when, f"{service}:{name}", "aws:cloudtrail",
                       DENIED if rec.get("errorCode") else OK)


def last_used_observations(data: AccountData) -> list[Observation]:
    """The last use the collection found for each key (credential report or GetAccessKeyLastUsed)."""
    source = "aws:" + str(data.meta.get("last_used_source") or "last_used").split(" ")[0]
    arns = {u["UserName"]: u["Arn"] for u in data.users}
    out = []
    for user, keys in data.keys.items():
        target = user_id(arns.get(user, f"arn:aws:iam::{data.account_id}:user/{user}"))
        for key in keys:
            used = key.get("LastUsedDate")
            if isinstance(used, datetime):
                when = used.astimezone(UTC) if used.tzinfo else used.replace(tzinfo=UTC)
                out.append(Observation(f"aws:access_key:{key['AccessKeyId']}", Relation.OBSERVED_USE, target, when,
                                       "last used", source))
    return out


def observe(accounts: list[Account], datas: list[AccountData], opts: AwsOptions, out: Collected) -> None:
    """Add observed-use edges for every account to `out`."""
    observations: list[Observation] = []
    meta: dict[str, Any] = {}
    for account, data in zip(accounts, datas, strict=True):
        used, findings, entry = observe_account(account, data, opts)
        observations += used
        out.findings += findings
        if entry is not None:
            meta[data.account_id] = entry
    out.edges += to_edges(observations)
    out.meta["observations"] = {"source": "aws", "events": len(observations), **meta}


def observe_account(account: Account, data: AccountData,
                    opts: AwsOptions) -> tuple[list[Observation], list[CollectFinding], dict[str, Any] | None]:
    """One account's observations (last use, and CloudTrail's events when asked), the findings
    about what was left out, and its CloudTrail figures (None: CloudTrail not read)."""
    used = last_used_observations(data)
    if opts.cloudtrail_days <= 0:
        return used, [], None
    findings: list[CollectFinding] = []
    end = datetime.now(UTC)
    start = end - timedelta(days=opts.cloudtrail_days)
    recent = sorted({o.by for o in used if o.at >= start})
    if len(recent) > opts.cloudtrail_max_keys:
        findings.append(CollectFinding(
            "aws.cloudtrail_keys_left_out", f"{len(recent) - opts.cloudtrail_max_keys} keys used in the last "
            f"{opts.cloudtrail_days} days were not looked up in CloudTrail (cloudtrail_max_keys="
            f"{opts.cloudtrail_max_keys}; LookupEvents allows 2 requests/s)", severity="info", source=PROVIDER))
    ct = account.client("cloudtrail", attempts=0, endpoint_url=opts.cloudtrail_endpoint_url)
    limit = RateLimit()
    targets = {o.by: o.target for o in used}
    throttles = 0
    observations = list(used)
    for key_node in recent[: opts.cloudtrail_max_keys]:
        events, hit = lookup_key_events(ct, key_node.split(":", 2)[2], start, end, limit)
        throttles += hit
        observations += [o for e in events if (o := event_observation(e, key_node, targets[key_node]))]
    return observations, findings, {"cloudtrail_keys": min(len(recent), opts.cloudtrail_max_keys),
                                    "cloudtrail_throttles": throttles, "region": account.region}
