"""Actions on IAM access keys and roles: plain functions over an `iam` client.

Every action reads the key's or policy's current state first (or, on the executor's first
attempt at a key collected as active, deactivates it directly), so a repeat reports
`changed=False` instead of failing or doing it again. A role's sessions are revoked the way the
IAM console does it: an inline policy denying every session issued before a cutoff.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.aws.client import PROVIDER, Account, call, native, pages
from revoke.connector import (
    DELETED,
    ActionContext,
    ActionResult,
    ConnectorError,
    GraphLookups,
    ProbeResult,
    Replacement,
    Secret,
)
from revoke.model import Node, NodeKind

REVOKE_POLICY = "AWSRevokeOlderSessions"  # the name the IAM console uses for the same policy
log = structlog.get_logger()


# -- access keys ----------------------------------------------------------------------------------


def key_user(iam: Any, node: Node) -> str:
    """The IAM user owning a key: from the collected node, else from AWS; "" when the key is gone."""
    user = str(node.attrs.get("user") or "")
    if not user and node.owner.startswith("aws:user:arn:"):
        user = node.owner.rsplit("/", 1)[-1]
    if user:
        return user
    key = native(node.id)
    try:
        resp = call(lambda: iam.get_access_key_last_used(AccessKeyId=key), "get_access_key_last_used", node.id)
    except ConnectorError as exc:
        if exc.code == "NoSuchEntity":
            return ""  # the key is gone (e.g. deleted to make room for its replacement)
        raise
    user = resp.get("UserName") or ""
    if not user:
        # "NoUser" is this connector's code, not AWS's: discard_key treats it as "nothing to delete"
        raise ConnectorError(PROVIDER, "get_access_key_last_used", "key belongs to no IAM user", node=node.id,
                             code="NoUser")
    return str(user)


def key_list(iam: Any, user: str, node_id: str) -> dict[str, dict[str, Any]]:
    """The user's keys by id (empty when the user is gone)."""
    try:
        keys = pages(iam, "list_access_keys", "AccessKeyMetadata", node_id, UserName=user)
    except ConnectorError as exc:
        if exc.code == "NoSuchEntity":
            return {}
        raise
    return {k["AccessKeyId"]: k for k in keys}


def _set_status(iam: Any, user: str, key: str, status: str, node_id: str) -> None:
    call(lambda: iam.update_access_key(UserName=user, AccessKeyId=key, Status=status), "update_access_key", node_id)


def _delete(iam: Any, user: str, key: str, node_id: str) -> None:
    call(lambda: iam.delete_access_key(UserName=user, AccessKeyId=key), "delete_access_key", node_id)


def _status(iam: Any, user: str, node: Node) -> str | None:
    """"Active", "Inactive", or None when the key no longer exists."""
    state = key_list(iam, user, node.id).get(native(node.id)) if user else None
    return state.get("Status") if state else None


def deactivate(iam: Any, node: Node, ctx: ActionContext, verb: str) -> ActionResult:
    """`disable` and `revoke`: the key becomes Inactive; finalize deletes it."""
    key = native(node.id)
    user = key_user(iam, node)
    done = ActionResult(node.id, verb, detail=f"deactivated (user {user}); finalize deletes it", data={"user": user})
    if user and ctx.options.get("first_attempt") and node.status == "active":
        # the executor's first try at a key collected as active: deactivate without a read
        # first (setting Inactive twice is harmless at AWS); a vanished key is already dead
        try:
            _set_status(iam, user, key, "Inactive", node.id)
        except ConnectorError as exc:
            if exc.code != "NoSuchEntity":
                raise
            return ActionResult(node.id, verb, changed=False, detail="key no longer exists")
        return done
    status = _status(iam, user, node)
    if status is None:
        return ActionResult(node.id, verb, changed=False, detail="key no longer exists")
    if status == "Inactive":
        return ActionResult(node.id, verb, changed=False, detail="already Inactive")
    _set_status(iam, user, key, "Inactive", node.id)
    return done


def delete(iam: Any, node: Node) -> ActionResult:
    """`finalize`: delete a key already made Inactive."""
    user = key_user(iam, node)
    status = _status(iam, user, node)
    if status is None:
        return ActionResult(node.id, "finalize", changed=False, detail="already deleted")
    if status == "Active":
        raise ConnectorError(PROVIDER, "finalize", "key is still Active: revoke it before deleting", node=node.id)
    _delete(iam, user, native(node.id), node.id)
    return ActionResult(node.id, "finalize", detail="deleted", data={"user": user})


def reactivate(iam: Any, node: Node) -> ActionResult:
    """`rollback`: an Inactive key becomes Active again; a deleted one cannot come back."""
    user = key_user(iam, node)
    status = _status(iam, user, node)
    if status is None:
        raise ConnectorError(PROVIDER, "rollback", "the key was deleted; AWS cannot restore a deleted "
                             "access key", node=node.id)
    if status == "Active":
        return ActionResult(node.id, "rollback", changed=False, detail="already Active")
    _set_status(iam, user, native(node.id), "Active", node.id)
    return ActionResult(node.id, "rollback", detail="reactivated", data={"user": user})


def two_key_limit(node: Node, lookups: GraphLookups) -> str | None:
    """What `create_key` will delete to make room, read from the collected graph (the user's keys
    and their statuses) so the plan can say it before anything runs; None below the limit."""
    users = lookups.successors(node.id, "authenticates_as")
    keys: dict[str, str] = {}
    for user in users:
        for key in lookups.predecessors(user, "authenticates_as"):
            found = lookups.get_node(key) if key.startswith("aws:access_key:") else None
            if found is not None and found.status in ("active", "inactive"):  # not a tombstone
                keys[key] = found.status
    keys.setdefault(node.id, node.status)
    if len(keys) < 2:
        return None
    inactive = sorted(k for k, status in keys.items() if k != node.id and status == "inactive")
    if inactive:
        return (f"at AWS's two-key limit: the Inactive key {inactive[0]} is deleted to make room for the "
                "replacement (AWS cannot restore a deleted key)")
    return ("at AWS's two-key limit with no Inactive key: the compromised key is deleted before its "
            "replacement is created (AWS cannot restore a deleted key)")


def create_key(iam: Any, node: Node) -> Replacement:
    """A new key for the same user, making room under the two-key limit if needed."""
    old = native(node.id)
    user = key_user(iam, node)
    if not user:
        raise ConnectorError(PROVIDER, "create_access_key", "the key no longer exists and no collected record "
                             "names its user: cannot tell whom to issue a replacement to", node=node.id)
    keys = key_list(iam, user, node.id)
    made_room: dict[str, Any] = {}
    if len(keys) >= 2:
        others = [k for k in sorted(keys) if k != old]
        inactive = [k for k in others if keys[k].get("Status") == "Inactive"]
        if inactive:
            _delete(iam, user, inactive[0], node.id)
            made_room = {"deleted_inactive_key": inactive[0], DELETED: f"aws:access_key:{inactive[0]}"}
        elif old in keys:
            # the other key is live and may be in use: the compromised one goes first
            _set_status(iam, user, old, "Inactive", node.id)
            _delete(iam, user, old, node.id)
            made_room = {"deleted_old_key_first": old, DELETED: node.id}
            log.warning("aws.rotate.two_key_limit", node=node.id, user=user, deleted=old)
        else:
            raise ConnectorError(PROVIDER, "create_access_key", f"user {user} already has two Active keys "
                                 "other than this one (AWS allows two): deactivate one first", node=node.id)
    created = call(lambda: iam.create_access_key(UserName=user), "create_access_key", node.id)["AccessKey"]
    new_id = f"aws:access_key:{created['AccessKeyId']}"
    log.info("aws.replacement", node=node.id, new=new_id, **made_room)
    return Replacement(
        old_id=node.id, new_id=new_id, kind=NodeKind.ACCESS_KEY,
        material=Secret({"access_key_id": created["AccessKeyId"], "secret_access_key": created["SecretAccessKey"]}),
        attrs={"user": user, **made_room},
    )


def discard_key(iam: Any, new_id: str) -> ActionResult:
    """Delete a replacement key whose secret was lost (a crashed run)."""
    node = Node(id=new_id, kind=NodeKind.ACCESS_KEY, provider=PROVIDER)
    try:
        user = key_user(iam, node)
    except ConnectorError as exc:
        if exc.code in ("NoSuchEntity", "AccessDenied", "NoUser"):
            return ActionResult(new_id, "discard_replacement", changed=False, detail="key does not exist")
        raise
    key = native(new_id)
    state = key_list(iam, user, new_id).get(key) if user else None
    if state is None:
        return ActionResult(new_id, "discard_replacement", changed=False, detail="key does not exist")
    if state.get("Status") == "Active":
        _set_status(iam, user, key, "Inactive", new_id)
    _delete(iam, user, key, new_id)
    return ActionResult(new_id, "discard_replacement", detail=f"deleted (user {user})", data={"user": user})


def key_siblings(iam: Any, node: Node) -> set[str]:
    user = key_user(iam, node)
    if not user:
        return set()
    return {f"aws:access_key:{k}" for k in key_list(iam, user, node.id) if k != native(node.id)}


def probe_key(account: Account, node: Node, *, sts: bool) -> ProbeResult:
    """Provider state decides (list_access_keys); STS with the key itself corroborates.

    STS is called with the key id and a deliberately wrong secret: real AWS answers
    SignatureDoesNotMatch for a key it knows as Active and InvalidClientTokenId for an
    Inactive or deleted one, without the secret ever being needed.
    """
    iam = account.client("iam")
    try:
        user = key_user(iam, node)
    except ConnectorError as exc:
        if exc.code != "NoSuchEntity":
            raise
        user = ""
    if not user:
        state_live, state_signal = False, "get_access_key_last_used: NoSuchEntity (key unknown)"
    else:
        status = (key_list(iam, user, node.id).get(native(node.id)) or {}).get("Status")
        state_live = status == "Active"
        state_signal = f"list_access_keys: {status or 'absent (deleted)'}"
    sts_live, sts_signal = _sts_probe(account, node) if sts else (None, "sts: not tried")
    if sts_live and not state_live:
        return ProbeResult(node.id, True, sts_signal, detail=f"{state_signal}; {sts_signal}")
    return ProbeResult(node.id, state_live, state_signal, detail=f"{state_signal}; {sts_signal}")


def _sts_probe(account: Account, node: Node) -> tuple[bool | None, str]:
    sts = account.probe_client("sts", native(node.id))
    try:
        call(sts.get_caller_identity, "get_caller_identity", node.id)
    except ConnectorError as exc:
        code = exc.code or ""
        if code == "SignatureDoesNotMatch":
            return True, "sts get_caller_identity: SignatureDoesNotMatch (key id known and active)"
        if code in ("InvalidClientTokenId", "ExpiredToken", "AccessDenied"):
            return False, f"sts get_caller_identity: {code}"
        return None, f"sts get_caller_identity: {code or exc} (undecided)"
    return None, "sts get_caller_identity: accepted a wrong secret (endpoint checks no signatures; ignored)"


# -- roles ----------------------------------------------------------------------------------------


def _holder(node: Node) -> tuple[str, str]:
    """("role" | "user", name) whose inline policy cuts the node's sessions: a role's own, or for a
    session / federation token, the user that minted it (AWS cannot revoke those sessions; a deny
    on their issue time in the user's policy is the documented way to stop them)."""
    kind = "role" if node.id.startswith("aws:role:") else "user"
    return kind, native(node.id).rsplit("/", 1)[-1]


def _policy_call(iam: Any, verb: str, node: Node, **kw: Any) -> Any:
    kind, name = _holder(node)
    op = f"{verb}_{kind}_policy"
    args = {"RoleName" if kind == "role" else "UserName": name, "PolicyName": REVOKE_POLICY, **kw}
    return call(lambda: getattr(iam, op)(**args), op, node.id)


def revoke_sessions(iam: Any, node: Node, ctx: ActionContext, verb: str = "revoke_sessions") -> ActionResult:
    """Deny every session of the role (or the user's minted sessions) issued before now (this
    incident's cutoff)."""
    current = read_session_cutoff(iam, node)
    cutoff = (ctx.now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sid = "RevokeIncident" + re.sub(r"[^A-Za-z0-9]", "", ctx.incident)[:64]
    if current is not None:
        existing_sid, existing_cutoff = current
        # the same incident, or a cutoff already at least as late: sessions are already dead
        if existing_sid == sid or existing_cutoff >= cutoff:
            return ActionResult(node.id, verb, changed=False,
                                detail=f"sessions issued before {existing_cutoff} already denied",
                                data={"policy": REVOKE_POLICY, "cutoff": existing_cutoff})
    doc = {"Version": "2012-10-17", "Statement": [{
        "Sid": sid, "Effect": "Deny", "Action": ["*"], "Resource": ["*"],
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
    }]}
    _policy_call(iam, "put", node, PolicyDocument=json.dumps(doc))
    return ActionResult(node.id, verb, detail=f"denied sessions issued before {cutoff}",
                        data={"policy": REVOKE_POLICY, "cutoff": cutoff})


def remove_session_cutoff(iam: Any, node: Node) -> ActionResult:
    """`rollback` of revoke_sessions: the deny policy goes."""
    if read_session_cutoff(iam, node) is None:
        return ActionResult(node.id, "rollback", changed=False, detail=f"no {REVOKE_POLICY} policy")
    _policy_call(iam, "delete", node)
    return ActionResult(node.id, "rollback", detail=f"removed {REVOKE_POLICY}")


def confirm_session_cutoff(iam: Any, node: Node) -> ProbeResult:
    """Verify of revoke_sessions: the deny policy is read back from the role (or the user)."""
    op = f"get_{_holder(node)[0]}_policy"
    current = read_session_cutoff(iam, node)
    if current is None or not current[1]:
        return ProbeResult(node.id, True, f"{op}: no {REVOKE_POLICY} policy (sessions not denied)")
    return ProbeResult(node.id, False, f"{op}: {REVOKE_POLICY} denies sessions issued before {current[1]}")


def read_session_cutoff(iam: Any, node: Node) -> tuple[str, str] | None:
    """(Sid, cutoff) of the session-revoking policy; None when there is none."""
    from urllib.parse import unquote

    try:
        resp = _policy_call(iam, "get", node)
    except ConnectorError as exc:
        if exc.code == "NoSuchEntity":
            return None
        raise
    doc = resp.get("PolicyDocument")
    if isinstance(doc, str):
        doc = json.loads(unquote(doc))
    stmt = (doc.get("Statement") or [{}])[0]
    cutoff = ((stmt.get("Condition") or {}).get("DateLessThan") or {}).get("aws:TokenIssueTime", "")
    return str(stmt.get("Sid", "")), str(cutoff)
