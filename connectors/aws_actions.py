"""Actions on IAM access keys and roles, and writes to Secrets Manager secrets.

Mixins for `AwsConnector`: they use its `call()` (error wrapping) and `account_for()`.
Every action reads the key's or policy's current state first, so a repeat reports
`changed=False` instead of failing or doing it again.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from connectors.recognize import recognize, substitute
from revoke.connector import (
    ActionContext,
    ActionResult,
    ConnectorError,
    ProbeResult,
    Replacement,
    Secret,
    Unsupported,
)
from revoke.model import Node, NodeKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from connectors.aws import Account

PROVIDER = "aws"
REVOKE_POLICY = "AWSRevokeOlderSessions"  # the name the IAM console uses for the same policy
log = structlog.get_logger()


def _native(node_id: str) -> str:
    return node_id.split(":", 2)[2]


def _code(exc: ConnectorError) -> str:
    from connectors.aws import error_code

    return error_code(exc)


class _Host:
    if TYPE_CHECKING:
        probe_sts: bool

        def call(self, fn: Callable[[], Any], call: str, node: str | None = None) -> Any: ...

        def account_for(self, node: Node) -> Account: ...


class AccessKeyActions(_Host):
    def _key_user(self, node: Node, iam: Any) -> str:
        user = str(node.attrs.get("user") or "")
        if not user and node.owner.startswith("aws:user:arn:"):
            user = node.owner.rsplit("/", 1)[-1]
        if user:
            return user
        key = _native(node.id)
        try:
            resp = self.call(lambda: iam.get_access_key_last_used(AccessKeyId=key), "get_access_key_last_used", node.id)
        except ConnectorError as exc:
            if _code(exc) == "NoSuchEntity":
                return ""  # the key is gone (e.g. deleted to make room for its replacement)
            raise
        user = resp.get("UserName") or ""
        if not user:
            raise ConnectorError(PROVIDER, "get_access_key_last_used", "key belongs to no IAM user", node=node.id)
        return str(user)

    def _key_list(self, iam: Any, user: str, node_id: str) -> dict[str, dict[str, Any]]:
        """The user's keys by id (empty when the user is gone)."""
        try:
            pages = self.call(
                lambda: [k for p in iam.get_paginator("list_access_keys").paginate(UserName=user)
                         for k in p.get("AccessKeyMetadata", [])],
                "list_access_keys", node_id,
            )
        except ConnectorError as exc:
            if _code(exc) == "NoSuchEntity":
                return {}
            raise
        return {k["AccessKeyId"]: k for k in pages}

    def _key_set_status(self, iam: Any, user: str, key: str, status: str, node_id: str) -> None:
        self.call(lambda: iam.update_access_key(UserName=user, AccessKeyId=key, Status=status),
                  "update_access_key", node_id)

    def _key_delete(self, iam: Any, user: str, key: str, node_id: str) -> None:
        self.call(lambda: iam.delete_access_key(UserName=user, AccessKeyId=key), "delete_access_key", node_id)

    def key_action(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        iam = self.account_for(node).client("iam")
        key = _native(node.id)
        if action == "rotate":
            raise ConnectorError(PROVIDER, "rotate", "rotation is create_replacement, write_store to each "
                                 "store, then revoke; the executor runs those steps", node=node.id)
        user = self._key_user(node, iam)
        if action in ("disable", "revoke") and user and ctx.options.get("first_attempt") and node.status == "active":
            # the executor's first try at a key collected as active: deactivate without a read
            # first (setting Inactive twice is harmless at AWS); a vanished key is already dead
            try:
                self._key_set_status(iam, user, key, "Inactive", node.id)
            except ConnectorError as exc:
                if _code(exc) != "NoSuchEntity":
                    raise
                return ActionResult(node.id, action, changed=False, detail="key no longer exists")
            return ActionResult(node.id, action, detail=f"deactivated (user {user}); finalize deletes it",
                                data={"user": user})
        state = self._key_list(iam, user, node.id).get(key) if user else None
        status = state.get("Status") if state else None
        if action in ("disable", "revoke"):
            if status is None:
                return ActionResult(node.id, action, changed=False, detail="key no longer exists")
            if status == "Inactive":
                return ActionResult(node.id, action, changed=False, detail="already Inactive")
            self._key_set_status(iam, user, key, "Inactive", node.id)
            return ActionResult(node.id, action, detail=f"deactivated (user {user}); finalize deletes it",
                                data={"user": user})
        if action == "finalize":
            if status is None:
                return ActionResult(node.id, action, changed=False, detail="already deleted")
            if status == "Active":
                raise ConnectorError(PROVIDER, "finalize", "key is still Active: revoke it before deleting",
                                     node=node.id)
            self._key_delete(iam, user, key, node.id)
            return ActionResult(node.id, action, detail="deleted", data={"user": user})
        if action == "rollback":
            if status is None:
                raise ConnectorError(PROVIDER, "rollback", "the key was deleted; AWS cannot restore a deleted "
                                     "access key", node=node.id)
            if status == "Active":
                return ActionResult(node.id, action, changed=False, detail="already Active")
            self._key_set_status(iam, user, key, "Active", node.id)
            return ActionResult(node.id, action, detail="reactivated", data={"user": user})
        raise Unsupported(PROVIDER, action, node.id, "not supported for access keys")

    def key_create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        """A new key for the same user, making room under the two-key limit if needed."""
        account = self.account_for(node)
        iam = account.client("iam")
        old = _native(node.id)
        user = self._key_user(node, iam)
        if not user:
            raise ConnectorError(PROVIDER, "create_access_key", "the key no longer exists and no collected record "
                                 "names its user: cannot tell whom to issue a replacement to", node=node.id)
        keys = self._key_list(iam, user, node.id)
        made_room: dict[str, Any] = {}
        if len(keys) >= 2:
            others = [k for k in sorted(keys) if k != old]
            inactive = [k for k in others if keys[k].get("Status") == "Inactive"]
            if inactive:
                self._key_delete(iam, user, inactive[0], node.id)
                made_room = {"deleted_inactive_key": inactive[0]}
            elif old in keys:
                # the other key is live and may be in use: the compromised one goes first
                self._key_set_status(iam, user, old, "Inactive", node.id)
                self._key_delete(iam, user, old, node.id)
                made_room = {"deleted_old_key_first": old}
                log.warning("aws.rotate.two_key_limit", node=node.id, user=user, deleted=old)
            else:
                raise ConnectorError(PROVIDER, "create_access_key", f"user {user} already has two Active keys "
                                     "other than this one (AWS allows two): deactivate one first", node=node.id)
        created = self.call(lambda: iam.create_access_key(UserName=user), "create_access_key", node.id)["AccessKey"]
        new_id = f"aws:access_key:{created['AccessKeyId']}"
        log.info("aws.replacement", node=node.id, new=new_id, **made_room)
        return Replacement(
            old_id=node.id, new_id=new_id, kind=NodeKind.ACCESS_KEY,
            material=Secret({"access_key_id": created["AccessKeyId"],
                             "secret_access_key": created["SecretAccessKey"]}),
            attrs={"user": user, **made_room},
        )

    def key_discard(self, new_id: str, ctx: ActionContext) -> ActionResult:
        node = Node(id=new_id, kind=NodeKind.ACCESS_KEY, provider=PROVIDER)
        iam = self.account_for(node).client("iam")
        try:
            user = self._key_user(node, iam)
        except ConnectorError as exc:
            if _code(exc) in ("NoSuchEntity", "AccessDenied") or "no IAM user" in str(exc):
                return ActionResult(new_id, "discard_replacement", changed=False, detail="key does not exist")
            raise
        key = _native(new_id)
        state = self._key_list(iam, user, new_id).get(key) if user else None
        if state is None:
            return ActionResult(new_id, "discard_replacement", changed=False, detail="key does not exist")
        if state.get("Status") == "Active":
            self._key_set_status(iam, user, key, "Inactive", new_id)
        self._key_delete(iam, user, key, new_id)
        return ActionResult(new_id, "discard_replacement", detail=f"deleted (user {user})", data={"user": user})

    def key_siblings(self, node: Node) -> set[str]:
        iam = self.account_for(node).client("iam")
        user = self._key_user(node, iam)
        if not user:
            return set()
        return {f"aws:access_key:{k}" for k in self._key_list(iam, user, node.id) if k != _native(node.id)}

    def key_probe(self, node: Node) -> ProbeResult:
        """Provider state decides (list_access_keys); STS with the key itself corroborates.

        STS is called with the key id and a deliberately wrong secret: real AWS answers
        SignatureDoesNotMatch for a key it knows as Active and InvalidClientTokenId for an
        Inactive or deleted one, without the secret ever being needed.
        """
        account = self.account_for(node)
        iam = account.client("iam")
        try:
            user = self._key_user(node, iam)
        except ConnectorError as exc:
            if _code(exc) != "NoSuchEntity":
                raise
            state_live, state_signal = False, "get_access_key_last_used: NoSuchEntity (key unknown)"
        else:
            if not user:
                state_live, state_signal = False, "get_access_key_last_used: NoSuchEntity (key unknown)"
            else:
                status = (self._key_list(iam, user, node.id).get(_native(node.id)) or {}).get("Status")
                state_live = status == "Active"
                state_signal = f"list_access_keys: {status or 'absent (deleted)'}"
        sts_live, sts_signal = self._sts_probe(account, node) if self.probe_sts else (None, "sts: not tried")
        if sts_live and not state_live:
            return ProbeResult(node.id, True, sts_signal, detail=f"{state_signal}; {sts_signal}")
        return ProbeResult(node.id, state_live, state_signal, detail=f"{state_signal}; {sts_signal}")

    def _sts_probe(self, account: Account, node: Node) -> tuple[bool | None, str]:
        sts = account.probe_client("sts", _native(node.id))
        try:
            self.call(sts.get_caller_identity, "get_caller_identity", node.id)
        except ConnectorError as exc:
            code = _code(exc)
            if code == "SignatureDoesNotMatch":
                return True, "sts get_caller_identity: SignatureDoesNotMatch (key id known and active)"
            if code in ("InvalidClientTokenId", "ExpiredToken", "AccessDenied"):
                return False, f"sts get_caller_identity: {code}"
            return None, f"sts get_caller_identity: {code or exc} (undecided)"
        return None, "sts get_caller_identity: accepted a wrong secret (endpoint checks no signatures; ignored)"


class SecretStoreActions(_Host):
    def _secret_value(self, store: Node) -> tuple[Any, str]:
        sm = self.account_for(store).client("secretsmanager")
        arn = _native(store.id)
        resp = self.call(lambda: sm.get_secret_value(SecretId=arn), "get_secret_value", store.id)
        value = resp.get("SecretString")
        if value is None:
            value = bytes(resp.get("SecretBinary", b"")).decode("utf-8", errors="replace")
        return sm, value

    def write_store(self, store: Node, old: Node, replacement: Replacement, ctx: ActionContext) -> ActionResult:
        if not store.id.startswith("aws:secret:"):
            return super().write_store(store, old, replacement, ctx)  # type: ignore[misc]
        if ctx.dry_run:
            return ActionResult(store.id, "write_store", changed=False, detail="dry run: would put a new version")
        sm, value = self._secret_value(store)
        refs = self._refs(store, value)
        old_ref = _store_ref(old)
        if replacement.new_id in refs and old.id not in refs:
            return ActionResult(store.id, "write_store", changed=False, detail="already holds the replacement")
        try:
            updated = substitute(value, old_ref, replacement.material.reveal(), replacement.kind)
        except KeyError:
            raise ConnectorError(PROVIDER, "write_store", f"the secret holds neither {old.id} nor "
                                 f"{replacement.new_id}", node=store.id) from None
        text = updated if isinstance(updated, str) else json.dumps(updated)
        resp = self.call(lambda: sm.put_secret_value(SecretId=_native(store.id), SecretString=text),
                         "put_secret_value", store.id)
        log.info("aws.write_store", node=store.id, old=old.id, new=replacement.new_id)
        return ActionResult(store.id, "write_store", detail="new version written",
                            data={"version_id": resp.get("VersionId", ""), "new_id": replacement.new_id})

    def store_holds(self, store: Node) -> set[str]:
        if not store.id.startswith("aws:secret:"):
            return super().store_holds(store)  # type: ignore[misc]
        _sm, value = self._secret_value(store)
        return self._refs(store, value)

    @staticmethod
    def _refs(store: Node, value: Any) -> set[str]:
        out = set()
        for found in recognize(value):
            if found.ref:
                out.add(found.ref)
            else:  # same ids as collect gives fields no provider manages
                out.add(f"aws:{found.kind.value}:{_native(store.id)}#{','.join(found.fields)}")
        return out


def _store_ref(old: Node) -> str:
    """How `substitute()` finds the old credential: by id, or by fingerprint for unmanaged ones."""
    if old.id.startswith(("aws:password:", "aws:api_key:")) or old.id.startswith("fp:"):
        return old.id if old.id.startswith("fp:") else "fp:" + old.fingerprint
    return old.id


class RoleActions(_Host):
    def role_action(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        iam = self.account_for(node).client("iam")
        role = _native(node.id).rsplit("/", 1)[-1]
        current = self._revoke_policy(iam, role, node.id)
        if action == "rollback":
            if current is None:
                return ActionResult(node.id, action, changed=False, detail=f"no {REVOKE_POLICY} policy")
            self.call(lambda: iam.delete_role_policy(RoleName=role, PolicyName=REVOKE_POLICY),
                      "delete_role_policy", node.id)
            return ActionResult(node.id, action, detail=f"removed {REVOKE_POLICY}")
        if action != "revoke_sessions":
            raise Unsupported(PROVIDER, action, node.id, "not supported for roles")
        cutoff = (ctx.now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sid = "RevokeIncident" + re.sub(r"[^A-Za-z0-9]", "", ctx.incident)[:64]
        if current is not None:
            existing_sid, existing_cutoff = current
            # the same incident, or a cutoff already at least as late: sessions are already dead
            if existing_sid == sid or existing_cutoff >= cutoff:
                return ActionResult(node.id, action, changed=False,
                                    detail=f"sessions issued before {existing_cutoff} already denied",
                                    data={"policy": REVOKE_POLICY, "cutoff": existing_cutoff})
        doc = {"Version": "2012-10-17", "Statement": [{
            "Sid": sid, "Effect": "Deny", "Action": ["*"], "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
        }]}
        self.call(lambda: iam.put_role_policy(RoleName=role, PolicyName=REVOKE_POLICY,
                                              PolicyDocument=json.dumps(doc)), "put_role_policy", node.id)
        return ActionResult(node.id, action, detail=f"denied sessions issued before {cutoff}",
                            data={"policy": REVOKE_POLICY, "cutoff": cutoff})

    def _revoke_policy(self, iam: Any, role: str, node_id: str) -> tuple[str, str] | None:
        from urllib.parse import unquote

        try:
            resp = self.call(lambda: iam.get_role_policy(RoleName=role, PolicyName=REVOKE_POLICY),
                             "get_role_policy", node_id)
        except ConnectorError as exc:
            if _code(exc) == "NoSuchEntity":
                return None
            raise
        doc = resp.get("PolicyDocument")
        if isinstance(doc, str):
            doc = json.loads(unquote(doc))
        stmt = (doc.get("Statement") or [{}])[0]
        cutoff = ((stmt.get("Condition") or {}).get("DateLessThan") or {}).get("aws:TokenIssueTime", "")
        return str(stmt.get("Sid", "")), str(cutoff)
