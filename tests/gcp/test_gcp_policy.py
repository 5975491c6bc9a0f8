"""The pure binding -> edge transform, on recorded payloads (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.gcp.transform import (
    ROLE_RELATIONS,
    key_id_from_name,
    member_node,
    merge,
    transform_project,
)

P = "rec-proj"
A = f"alpha-sa@{P}.iam.gserviceaccount.com"
B = f"beta-sa@{P}.iam.gserviceaccount.com"
KEY = f"projects/{P}/serviceAccounts/{A}/keys/0123456789abcdef0123456789abcdef01234567"


def payload(**over: object) -> dict:
    base = {
        "accounts": [{"name": f"projects/{P}/serviceAccounts/{A}", "email": A, "unique_id": "1", "disabled": False},
                     {"name": f"projects/{P}/serviceAccounts/{B}", "email": B, "unique_id": "2", "disabled": True}],
        "keys": {A: [{"name": KEY, "key_algorithm": "KEY_ALG_RSA_2048", "key_origin": "GOOGLE_PROVIDED",
                      "valid_after": "2026-01-01T00:00:00Z", "valid_before": "9999-12-31T23:59:59Z",
                      "disabled": False}]},
        "account_policies": {A: {"bindings": []}, B: {"bindings": []}},
        "project_policy": {"bindings": []},
    }
    base.update(over)
    return base


def test_key_id_is_last_segment() -> None:
    assert key_id_from_name(KEY) == "0123456789abcdef0123456789abcdef01234567"


def test_member_mapping() -> None:
    wl = "serviceAccount:rec-proj.svc.id.goog[ns/ksa]"
    cases = {
        f"serviceAccount:{A}": (f"gcp:service_account:{A}", "service_account", None),
        "user:u@example.com": ("gcp:user:u@example.com", "user", "user"),
        "group:g@example.com": ("gcp:user:g@example.com", "user", "group"),
        "domain:example.com": ("gcp:user:example.com", "user", "domain"),
        wl: (f"gcp:workload:{wl}", "workload", "serviceAccount"),
        "principal://iam.googleapis.com/x": ("gcp:workload:principal://iam.googleapis.com/x", "workload", "principal"),
    }
    for member, (nid, kind, mtype) in cases.items():
        node = member_node(member)
        assert node is not None and (node.id, node.kind.value) == (nid, kind)
        assert node.attrs.get("member_type") == mtype
    for member in ("allUsers", "allAuthenticatedUsers", "deleted:user:x@example.com?uid=3"):
        assert member_node(member) is None


def test_only_listed_roles_make_edges() -> None:
    roles = ["roles/viewer", "roles/browser", "roles/iam.serviceAccountViewer", "roles/iam.securityReviewer",
             *ROLE_RELATIONS]
    policy = {"bindings": [{"role": r, "members": [f"user:{r.split('/')[-1]}@example.com"]} for r in roles]}
    out = transform_project(P, payload(account_policies={A: policy}))
    got = {e.key for e in out.edges if e.rel.value != "authenticates_as"}
    assert got == {(f"gcp:user:{r.split('/')[-1]}@example.com", ROLE_RELATIONS[r].value, f"gcp:service_account:{A}")
                   for r in ROLE_RELATIONS}
    assert "gcp:user:viewer@example.com" not in {n.id for n in out.nodes}


def test_project_binding_covers_every_account_but_not_self() -> None:
    policy = {"bindings": [{"role": "roles/iam.serviceAccountUser", "members": [f"serviceAccount:{A}"]}]}
    out = transform_project(P, payload(project_policy=policy))
    assert {e.key for e in out.edges} == {
        (f"gcp:service_account_key:{key_id_from_name(KEY)}", "authenticates_as", f"gcp:service_account:{A}"),
        (f"gcp:service_account:{A}", "can_assume", f"gcp:service_account:{B}"),
    }
    status = {n.id: n.status for n in out.nodes}
    assert status[f"gcp:service_account:{B}"] == "disabled"


def test_same_grant_twice_is_one_edge_with_both_roles() -> None:
    member = "user:u@example.com"
    out = transform_project(P, payload(
        project_policy={"bindings": [{"role": "roles/editor", "members": [member]}]},
        account_policies={A: {"bindings": [{"role": "roles/iam.serviceAccountTokenCreator", "members": [member],
                                            "condition": {"title": "t", "expression": "true"}}]}}))
    edges = [e for e in out.edges if e.dst == f"gcp:service_account:{A}" and e.src == "gcp:user:u@example.com"]
    assert len(edges) == 1
    assert edges[0].attrs["roles"] == ["roles/editor", "roles/iam.serviceAccountTokenCreator"]
    assert edges[0].attrs["conditional"] is False  # one unconditional grant is enough


def test_key_status_and_expiry() -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    keys = {A: [{"name": KEY, "valid_after": "2026-01-01T00:00:00Z", "valid_before": past, "disabled": False}]}
    node = next(n for n in transform_project(P, payload(keys=keys)).nodes if n.kind.value == "service_account_key")
    assert node.status == "expired" and node.expires is not None
    node = next(n for n in transform_project(P, payload()).nodes if n.kind.value == "service_account_key")
    assert node.status == "active" and node.expires is None and node.owner == A


def test_merge_prefers_the_listed_account() -> None:
    other = "other-proj"
    external = transform_project(other, {
        "accounts": [], "keys": {}, "project_policy": None,
        "account_policies": {},
    })
    member_side = transform_project(P, payload(account_policies={A: {"bindings": [
        {"role": "roles/iam.serviceAccountUser", "members": [f"serviceAccount:c-sa@{other}.iam.gserviceaccount.com"]}]}}))
    listed = transform_project(other, {
        "accounts": [{"name": "n", "email": f"c-sa@{other}.iam.gserviceaccount.com", "unique_id": "9"}],
        "keys": {}, "account_policies": {}, "project_policy": None})
    merged = merge([external, member_side, listed])
    node = next(n for n in merged.nodes if n.id == f"gcp:service_account:c-sa@{other}.iam.gserviceaccount.com")
    assert node.attrs.get("external") is None and node.attrs["project"] == other


def test_keys_of_a_disabled_account_are_not_live() -> None:
    accounts = [{"name": "n", "email": A, "unique_id": "1", "disabled": True}]
    node = next(n for n in transform_project(P, payload(accounts=accounts)).nodes
                if n.kind.value == "service_account_key")
    assert node.status == "disabled" and not node.is_live
    assert node.attrs["key_disabled"] is False and node.attrs["account_disabled"] is True
