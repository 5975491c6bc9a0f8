"""The AWS connector class: its one action table, and the calls that are not actions.

Each handler picks the node's configured account and hands the right client to a plain function
in `actions` (IAM keys and roles), `iot_actions` (IoT certificates and CAs) or `store`
(Secrets Manager); collection is `collect` (get) then `transform` (pure).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from pydantic import ValidationError

from connectors.aws import actions as iam_actions
from connectors.aws import escrow, parts
from connectors.aws import iot_actions as iot
from connectors.aws import kms_actions as kms_grant
from connectors.aws import store as secret_store
from connectors.aws.client import PROVIDER, Account, quiet_sdk_bodies
from connectors.aws.collect import collect_account, get_organization
from connectors.aws.options import AwsOptions
from connectors.aws.transform import collected
from connectors.escrow_batch import ReadCache
from revoke.collect_parts import CollectPart
from revoke.connector import (
    ActionContext,
    ActionResult,
    ActionTable,
    BaseConnector,
    Collected,
    ConnectorError,
    GraphLookups,
    ProbeResult,
    Replacement,
    node_type,
)
from revoke.model import Node, NodeKind

log = structlog.get_logger()

KEY, ROLE, CERT, CA = NodeKind.ACCESS_KEY, NodeKind.ROLE, NodeKind.CERTIFICATE, NodeKind.CA
TOKEN = NodeKind.TOKEN
SESSION_TYPES = ("session_token", "federation_token")  # sessions a user minted (`policy_sessions`)
IOT_TYPES = ("iot_certificate", "iot_ca")
# one verb's IoT permissions serve device certificates and CAs alike
IOT_REVOKE = ["iot:UpdateCertificate", "iot:UpdateCACertificate", "iot:DescribeCertificate",
              "iot:DescribeCACertificate"]
IOT_REISSUE = ["iot:RegisterCertificate", "iot:CreateKeysAndCertificate", "iot:RegisterCACertificate",
               "iot:AttachPolicy", "iot:AttachThingPrincipal", "iot:ListPrincipalThings",
               "iot:ListAttachedPolicies", "iot:DescribeCACertificate"]


class AwsConnector(BaseConnector):
    options_model = AwsOptions
    operations = {
        "collect": [
            "iam:GetAccountAuthorizationDetails", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed",
            "iam:GenerateCredentialReport", "iam:GetCredentialReport", "sts:GetCallerIdentity",
            "secretsmanager:ListSecrets", "secretsmanager:GetSecretValue", "secretsmanager:GetResourcePolicy",
            "kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants",
            "iot:ListCertificates", "iot:DescribeCertificate", "iot:ListCACertificates",
            "iot:DescribeCACertificate", "iot:ListCertificatesByCA", "iot:ListThings",
            "iot:ListThingPrincipals", "iot:ListPrincipalThings", "iot:ListPolicies", "iot:ListTargetsForPolicy",
            # organizations: true (SCPs, RCPs, the organization's id and paths)
            "organizations:DescribeOrganization", "organizations:ListParents",
            "organizations:ListPoliciesForTarget", "organizations:DescribePolicy",
        ],
        "observations": ["cloudtrail:LookupEvents"],  # with cloudtrail_days (last use comes with collect)
        "discard_replacement": ["iam:UpdateAccessKey", "iam:DeleteAccessKey", "iot:UpdateCertificate",
                                "iot:DeleteCertificate", "iot:UpdateCACertificate", "iot:DeleteCACertificate"],
        "write_store": ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
        "escrow": ["secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue"],
        "probe": ["iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "sts:GetCallerIdentity", "iot:ListCertificates",
                  "iot:DescribeCertificate", "iot:DescribeCACertificate", "kms:ListGrants"],
    }
    # Declaration order matters for `revoke permissions`: a verb's permissions are listed in the
    # order its declarations come, and the node kinds in the order they first appear.
    table = ActionTable()

    # -- IAM access keys (`rollback` reactivates what disable, revoke and rotate deactivated)

    @table.action("disable", types=("access_key",), kinds=(KEY,), undo=True,
                  permissions=["iam:UpdateAccessKey", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed"])
    def _disable_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iam_actions.deactivate(self._iam(node), node, ctx, "disable")

    @table.action("revoke", types=("access_key",), kinds=(KEY,), undo=True,
                  permissions=["iam:UpdateAccessKey", "iam:ListAccessKeys"])
    def _revoke_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iam_actions.deactivate(self._iam(node), node, ctx, "revoke")

    # reversible below the two-key limit; at it a key is deleted to make room, which the plan
    # reads from the graph (`irreversible_reason`)
    @table.action("rotate", types=("access_key",), kinds=(KEY,), undo=True,
                  permissions=["iam:CreateAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey",
                               "iam:DeleteAccessKey"])
    def _rotate_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        raise ConnectorError(PROVIDER, "rotate", "rotation is create_replacement, write_store to each "
                             "store, then revoke; the executor runs those steps", node=node.id)

    @table.action("finalize", types=("access_key",), kinds=(KEY,), reversible=False,
                  permissions=["iam:DeleteAccessKey"])
    def _delete_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iam_actions.delete(self._iam(node), node)

    @table.action("rollback", types=("access_key",), kinds=(KEY,), probe="none",
                  permissions=["iam:UpdateAccessKey"])
    def _reactivate_key(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iam_actions.reactivate(self._iam(node), node)

    # -- IAM roles: verify reads the deny policy back

    @table.action("revoke_sessions", types=("role",), kinds=(ROLE,), undo=True, probe="readback",
                  permissions=["iam:PutRolePolicy", "iam:GetRolePolicy"])
    def _revoke_sessions(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iam_actions.revoke_sessions(self._iam(node), node, ctx)

    @table.action("rollback", types=("role",), kinds=(ROLE,), probe="none", permissions=["iam:DeleteRolePolicy"])
    def _restore_sessions(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iam_actions.remove_session_cutoff(self._iam(node), node)

    # -- sessions a user minted (GetSessionToken / GetFederationToken): AWS cannot revoke them; a
    # deny on their issue time in the user's policy stops them, and verify reads it back

    @table.action("revoke", types=SESSION_TYPES, kinds=(TOKEN,), undo=True, probe="readback",
                  permissions=["iam:PutUserPolicy", "iam:GetUserPolicy"])
    def _revoke_user_sessions(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iam_actions.revoke_sessions(self._iam(node), node, ctx, "revoke")

    @table.action("rollback", types=SESSION_TYPES, kinds=(TOKEN,), probe="none", permissions=["iam:DeleteUserPolicy"])
    def _restore_user_sessions(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iam_actions.remove_session_cutoff(self._iam(node), node)

    # -- KMS grants (`kms_grants`): RevokeGrant is final, a new grant gets a new id

    @table.action("revoke", types=("kms_grant",), kinds=(TOKEN,), reversible=False,
                  permissions=["kms:RevokeGrant", "kms:ListGrants"])
    def _revoke_grant(self, node: Node, ctx: ActionContext) -> ActionResult:
        return kms_grant.revoke(self.account_for(node).client("kms"), node)

    # -- IoT: a REVOKED device certificate is final in IoT (no rollback); an INACTIVE CA is not

    @table.action("revoke", types=("iot_certificate",), kinds=(CERT,), reversible=False, permissions=IOT_REVOKE)
    def _revoke_certificate(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iot.revoke(self._iot(node), node, ctx)

    @table.action("revoke", types=("iot_ca",), kinds=(CA,), undo=True, permissions=IOT_REVOKE)
    def _revoke_ca(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iot.revoke(self._iot(node), node, ctx)

    # the old certificate is retired by a revoke (final), the old CA by an INACTIVE one
    @table.action("reissue", types=("iot_certificate",), kinds=(CERT,), permissions=IOT_REISSUE)
    def _reissue_certificate(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iot.reissue_certificate(self._iot(node), node, ctx, self._new_cas, self._thing_reads)

    @table.action("reissue", types=("iot_ca",), kinds=(CA,), undo=True, permissions=IOT_REISSUE)
    def _reissue_ca(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iot.reissue_ca(self._iot(node), node, self._new_cas)

    @table.action("finalize", types=IOT_TYPES, kinds=(CERT, CA), reversible=False,
                  permissions=["iot:DeleteCertificate", "iot:DeleteCACertificate", "iot:DetachPolicy",
                               "iot:DetachThingPrincipal", "iot:ListCertificatesByCA"])
    def _delete_certificate(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iot.finalize(self._iot(node), node)

    @table.action("rollback", types=IOT_TYPES, kinds=(CERT, CA), probe="none",
                  permissions=["iot:UpdateCertificate", "iot:UpdateCACertificate"])
    def _reactivate_certificate(self, node: Node, ctx: ActionContext) -> ActionResult:
        return iot.rollback(self._iot(node), node)

    # -- setup ----------------------------------------------------------------------------------

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        try:
            opts = AwsOptions.model_validate(config)
        except ValidationError as exc:  # revoke.yaml was checked already: this is a caller's slip
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ConnectorError(PROVIDER, "config", f"field {where}: {err['msg']}") from None
        quiet_sdk_bodies()
        self.max_workers = max(4, opts.max_workers)
        self.accounts = [Account(s, opts.max_attempts, self.max_workers + 4) for s in opts.account_settings()]
        self.iot_ca_ids = list(opts.iot_ca_ids)
        self.created_ca_ids: list[str] = []
        self._escrow_reads = ReadCache()  # verify reads a batch item once for all its members
        self.probe_sts = opts.probe_sts
        self.organizations = opts.organizations
        self.session_policies = {arn: p.model_dump() for arn, p in opts.session_policies.items()}
        self.opts = opts
        self._new_cas = iot.NewCas()
        self._thing_reads = iot.ThingReads()  # siblings' read of a certificate's things, for its reissue

    def account_for(self, node: Node) -> Account:
        """The configured account owning a node (by attrs.account or the ARN in its id)."""
        wanted = str(node.attrs.get("account") or "")
        if not wanted:
            native = node.id.split(":", 2)[2] if node.id.count(":") >= 2 else ""
            parts = native.split(":")
            wanted = parts[4] if native.startswith("arn:") and len(parts) > 4 else ""
            if not wanted and node.owner.startswith("aws:user:arn:"):
                wanted = node.owner.split(":")[6] if len(node.owner.split(":")) > 6 else ""
        if len(self.accounts) == 1 or not wanted:
            return self.accounts[0]
        for account in self.accounts:
            if account.account_id() == wanted:
                return account
        raise ConnectorError(PROVIDER, "account", f"no configured account is {wanted}", node=node.id)

    def _iam(self, node: Node) -> Any:
        return self.account_for(node).client("iam")

    def _iot(self, node: Node) -> Any:
        return self.account_for(node).client("iot")

    # -- collect --------------------------------------------------------------------------------

    def remember_created(self, node_ids: set[str]) -> None:
        # CAs revoke registered (a reissue's new CA) where ListCACertificates is unavailable
        self.created_ca_ids = sorted(nid.split(":", 2)[2] for nid in node_ids if node_type(nid) == "iot_ca")

    def collect(self) -> Collected:
        def one(account: Account) -> Any:
            return collect_account(account, self.max_workers, self.iot_ca_ids, self.created_ca_ids)

        with ThreadPoolExecutor(max_workers=max(1, len(self.accounts))) as outer:
            datas = list(outer.map(one, self.accounts))
        if self.organizations:
            # the first account's credentials read Organizations (management or delegated admin)
            get_organization(self.accounts[0].client("organizations"), datas)
        out = collected(datas, self.session_policies)
        if self.opts.observations:  # last-used data and CloudTrail as observed_use edges
            from connectors.aws.usage import observe

            observe(self.accounts, datas, self.opts, out)
        log.info("aws.collect", accounts=len(datas), nodes=len(out.nodes), edges=len(out.edges),
                 findings=len(out.findings))
        return out

    # one job per account under `revoke collect --workers` (connectors/aws/parts.py)
    @classmethod
    def collect_parts(cls, config: dict[str, Any]) -> list[CollectPart]:
        return parts.account_parts(config)

    def collect_part(self, task: dict[str, Any]) -> dict[str, Any]:
        return parts.read_part(self, task)

    @classmethod
    def assemble(cls, config: dict[str, Any],
                 done: list[tuple[CollectPart, dict[str, Any]]]) -> Collected | list[CollectPart]:
        return parts.assemble(config, done)

    # -- actions and the calls around them ------------------------------------------------------

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        result = super().act(action, node, ctx)
        if not ctx.dry_run:
            log.info("aws.action", node=node.id, action=action, changed=result.changed, ok=result.ok,
                     incident=ctx.incident)
        return result

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        if ctx.dry_run:
            raise ConnectorError(PROVIDER, "create_replacement", "dry run: nothing created", node=node.id)
        kind = node_type(node.id)
        if kind == "access_key":
            return iam_actions.create_key(self._iam(node), node)
        if kind == "iot_certificate":
            return iot.certificate_replacement(self._iot(node), node, ctx, self._new_cas, self._thing_reads)
        if kind == "iot_ca":
            return iot.ca_replacement(self._iot(node), node, self._new_cas)
        raise self._unsupported("create_replacement", node.id)

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult:
        if ctx.dry_run:
            return ActionResult(new_id, "discard_replacement", changed=False, detail="dry run: would delete")
        kind = node_type(new_id)
        if kind == "access_key":
            return iam_actions.discard_key(self._iam(Node(id=new_id, kind=KEY, provider=PROVIDER)), new_id)
        if kind in IOT_TYPES:
            node = Node(id=new_id, kind=CA if kind == "iot_ca" else CERT, provider=PROVIDER)
            return iot.discard(self._iot(node), new_id, self._new_cas)
        raise self._unsupported("discard_replacement", new_id)

    def siblings(self, node: Node) -> set[str]:
        kind = node_type(node.id)
        if kind == "access_key":
            return iam_actions.key_siblings(self._iam(node), node)
        if kind == "iot_certificate":
            return iot.siblings(self._iot(node), node, self._thing_reads)
        return set()

    def write_store(self, store: Node, old: Node, replacement: Replacement, ctx: ActionContext) -> ActionResult:
        if node_type(store.id) != "secret":
            raise self._unsupported("write_store", store.id)
        if ctx.dry_run:
            return ActionResult(store.id, "write_store", changed=False, detail="dry run: would put a new version")
        return secret_store.write(self._secrets(store), store, old, replacement)

    def store_holds(self, store: Node) -> set[str]:
        if node_type(store.id) != "secret":
            raise self._unsupported("store_holds", store.id)
        return secret_store.holds(self._secrets(store), store)

    def _secrets(self, node: Node) -> Any:
        return self.account_for(node).client("secretsmanager")

    # -- the escrow: Secrets Manager secrets under a prefix, in the first configured account

    def escrow_put(self, location: str, item: str, replacement: Replacement, ctx: ActionContext) -> ActionResult:
        if ctx.dry_run:
            return ActionResult(replacement.old_id, "escrow_put", changed=False, detail="dry run: would escrow")
        changed, detail = escrow.put(self.accounts[0].client("secretsmanager"), location, item, replacement,
                                     ctx.incident)
        self._escrow_reads.forget((location, item))
        log.info("aws.escrow_put", node=replacement.old_id, new=replacement.new_id, item=item, changed=changed)
        return ActionResult(replacement.old_id, "escrow_put", changed=changed, detail=detail)

    def escrow_put_many(self, location: str, item: str, members: dict[str, Replacement],
                        ctx: ActionContext) -> ActionResult:
        if ctx.dry_run:
            return ActionResult(item, "escrow_put", changed=False, detail="dry run: would escrow")
        changed, detail, data = escrow.put_many(self.accounts[0].client("secretsmanager"), location, item, members,
                                                ctx.incident)
        self._escrow_reads.put((location, item), data)  # read again before the next merge: no check-and-set here
        log.info("aws.escrow_put", item=item, members=len(members), changed=changed)
        return ActionResult(item, "escrow_put", changed=changed, detail=detail)

    def escrow_holds(self, location: str, item: str) -> set[str]:
        sm = self.accounts[0].client("secretsmanager")
        return self._escrow_reads.held((location, item), lambda: escrow.read(sm, location, item),
                                       lambda got: escrow.held(got or {}))

    # -- what cannot be undone, read from the graph before anything runs

    @classmethod
    def irreversible_reason(cls, verb: str, node: Node, lookups: GraphLookups) -> str | None:
        if verb == "rotate" and node_type(node.id) == "access_key":
            return iam_actions.two_key_limit(node, lookups)
        return super().irreversible_reason(verb, node, lookups)

    # -- probes ---------------------------------------------------------------------------------

    def probe(self, node: Node) -> ProbeResult:
        kind = node_type(node.id)
        if kind == "access_key":
            return iam_actions.probe_key(self.account_for(node), node, sts=self.probe_sts)
        if kind in IOT_TYPES:
            return iot.probe(self._iot(node), node)
        if kind == "kms_grant":
            return kms_grant.probe(self.account_for(node).client("kms"), node)
        return ProbeResult(node.id, None, "no probe for this kind")

    def confirm(self, verb: str, node: Node) -> ProbeResult:
        readback = (verb == "revoke_sessions" and node_type(node.id) == "role") or (
            verb == "revoke" and node_type(node.id) in SESSION_TYPES)
        if not readback:
            raise self._unsupported(f"confirm {verb}", node.id)
        return iam_actions.confirm_session_cutoff(self._iam(node), node)

    def probe_many(self, nodes: list[Node]) -> list[ProbeResult]:
        certs = [n for n in nodes if node_type(n.id) == "iot_certificate"]
        batch: dict[str, ProbeResult] = {}
        if len(certs) > 1:
            by_client: dict[int, tuple[Any, list[Node]]] = {}
            for node in certs:
                client = self._iot(node)
                by_client.setdefault(id(client), (client, []))[1].append(node)
            for client, group in by_client.values():
                batch.update(iot.probe_listed(client, group))
        rest = [n for n in nodes if n.id not in batch]
        with ThreadPoolExecutor(max_workers=8) as pool:
            singles = dict(zip([n.id for n in rest], pool.map(self.probe, rest), strict=True))
        return [batch.get(n.id) or singles[n.id] for n in nodes]
