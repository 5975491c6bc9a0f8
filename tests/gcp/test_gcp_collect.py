"""Collect through the real IAMClient / ProjectsClient from the double over gRPC: exact graphs."""

from __future__ import annotations

import pytest

from examples.lab.gcp_iam_double import GcpIamDouble, seed_demo
from revoke.connector import ConnectorError

N_ACCOUNTS = 8


def sa(project: str, i: int) -> str:
    return f"robot-{i:02d}@{project}.iam.gserviceaccount.com"


def sid(email: str) -> str:
    return f"gcp:service_account:{email}"


@pytest.fixture
def seeded(double: GcpIamDouble, new_project) -> dict:
    p = new_project()
    emails = [double.add_service_account(p, f"robot-{i:02d}") for i in range(1, N_ACCOUNTS + 1)]
    assert emails == [sa(p, i) for i in range(1, N_ACCOUNTS + 1)]
    s = {i: sa(p, i) for i in range(1, N_ACCOUNTS + 1)}
    k1 = double.add_key(s[1])["key_id"]
    k2a = double.add_key(s[2])["key_id"]
    k2b = double.add_key(s[2], disabled=True)["key_id"]
    # an impersonation cycle 1 -> 2 -> 3 -> 1
    double.add_binding(s[2], "roles/iam.serviceAccountTokenCreator", f"serviceAccount:{s[1]}")
    double.add_binding(s[3], "roles/iam.serviceAccountUser", f"serviceAccount:{s[2]}")
    double.add_binding(s[1], "roles/iam.serviceAccountTokenCreator", f"serviceAccount:{s[3]}")
    # project level: covers every account of the project
    double.add_binding(f"projects/{p}", "roles/iam.serviceAccountTokenCreator", "user:alice@example.com")
    double.add_binding(f"projects/{p}", "roles/editor", "domain:example.com")
    # workload identity, key minting, a cross-project member, a conditional grant
    wl = f"serviceAccount:{p}.svc.id.goog[ci/runner]"
    double.add_binding(s[4], "roles/iam.workloadIdentityUser", wl)
    double.add_binding(s[5], "roles/iam.serviceAccountKeyAdmin", "group:ops@example.com")
    double.add_binding(s[5], "roles/iam.serviceAccountTokenCreator",
                       "serviceAccount:other@elsewhere-proj.iam.gserviceaccount.com")
    double.add_binding(s[8], "roles/iam.serviceAccountTokenCreator", f"serviceAccount:{s[7]}",
                       condition={"title": "office hours", "expression": "request.time.getHours('UTC') < 18"})
    # no edge: viewer anywhere, acting as oneself, deleted members; a public grant is a finding
    double.add_binding(f"projects/{p}", "roles/viewer", "user:viewer@example.com")
    double.add_binding(s[6], "roles/viewer", "user:viewer@example.com")
    double.add_binding(s[4], "roles/iam.serviceAccountTokenCreator", f"serviceAccount:{s[4]}")
    double.add_binding(s[6], "roles/iam.serviceAccountUser", "deleted:serviceAccount:gone@x.com?uid=1")
    double.add_binding(s[6], "roles/iam.serviceAccountTokenCreator", "allUsers")
    disabled = double.add_service_account(p, "robot-09", disabled=True)
    s[9] = disabled
    return {"project": p, "sa": s, "keys": (k1, k2a, k2b), "workload": wl}


def test_exact_graph(seeded: dict, make_connector, double: GcpIamDouble) -> None:
    p, s, (k1, k2a, k2b), wl = seeded["project"], seeded["sa"], seeded["keys"], seeded["workload"]
    before = double.calls.get("ListServiceAccounts", 0)
    out = make_connector([p]).collect()

    every = [sid(e) for e in s.values()]
    expected = {
        (f"gcp:service_account_key:{k1}", "authenticates_as", sid(s[1])),
        (f"gcp:service_account_key:{k2a}", "authenticates_as", sid(s[2])),
        (f"gcp:service_account_key:{k2b}", "authenticates_as", sid(s[2])),
        (sid(s[1]), "can_assume", sid(s[2])),
        (sid(s[2]), "can_assume", sid(s[3])),
        (sid(s[3]), "can_assume", sid(s[1])),
        (f"gcp:workload:{wl}", "can_assume", sid(s[4])),
        ("gcp:user:ops@example.com", "can_mint", sid(s[5])),
        (sid("other@elsewhere-proj.iam.gserviceaccount.com"), "can_assume", sid(s[5])),
        (sid(s[7]), "can_assume", sid(s[8])),
        *{("gcp:user:alice@example.com", "can_assume", t) for t in every},
        *{("gcp:user:example.com", "can_assume", t) for t in every},
    }
    got = {e.key for e in out.edges}
    assert got == expected, (got - expected, expected - got)
    assert len(out.edges) == len(got)  # merged, no duplicates

    nodes = {n.id: n for n in out.nodes}
    assert set(nodes) == {
        *every, f"gcp:service_account_key:{k1}", f"gcp:service_account_key:{k2a}",
        f"gcp:service_account_key:{k2b}", f"gcp:workload:{wl}", "gcp:user:ops@example.com",
        "gcp:user:alice@example.com", "gcp:user:example.com",
        sid("other@elsewhere-proj.iam.gserviceaccount.com"),
    }
    assert nodes[f"gcp:workload:{wl}"].kind.value == "workload"
    assert nodes["gcp:user:ops@example.com"].attrs["member_type"] == "group"
    assert nodes["gcp:user:example.com"].attrs["member_type"] == "domain"
    assert nodes[sid(s[9])].status == "disabled"
    assert nodes[f"gcp:service_account_key:{k2b}"].status == "disabled"
    key = nodes[f"gcp:service_account_key:{k1}"]
    assert key.kind.value == "service_account_key" and key.owner == s[1] and key.expires is None
    assert key.attrs["algorithm"] == "KEY_ALG_RSA_2048" and key.created is not None

    edges = {e.key: e for e in out.edges}
    cond = edges[(sid(s[7]), "can_assume", sid(s[8]))]
    assert cond.attrs["conditional"] is True and cond.attrs["conditions"][0]["title"] == "office hours"
    both = edges[("gcp:user:alice@example.com", "can_assume", sid(s[1]))]
    assert both.attrs["via"] == [f"projects/{p}"]
    assert [f.code for f in out.findings] == ["gcp.public_binding"]

    # 9 accounts at 3 per page: the connector followed every page token
    assert out.meta["pages"] == 3 and out.meta["service_accounts"] == 9 and out.meta["keys"] == 3
    assert double.calls["ListServiceAccounts"] - before == 3


def test_demo_seed_graph(make_connector) -> None:
    with GcpIamDouble() as d:
        lab = seed_demo(d)
        out = make_connector([lab["project"]], endpoint=d.endpoint).collect()
    ids = lab["node_ids"]
    assert {e.key for e in out.edges} == {
        (ids["deployer_key"], "authenticates_as", ids["deployer"]),
        (ids["deployer"], "can_assume", ids["admin"]),
    }
    assert lab["config"]["endpoint"] == d.endpoint and '"type": "service_account"' in lab["deployer_key_json"]


def test_unknown_project_is_a_clear_error(make_connector) -> None:
    with pytest.raises(ConnectorError) as err:
        make_connector(["no-such-project"]).collect()
    assert "NOT_FOUND" in str(err.value) and "projects/no-such-project" in str(err.value)
    assert err.value.retryable is False


def test_unreadable_policy_is_a_finding(seeded: dict, make_connector, double: GcpIamDouble) -> None:
    p, s = seeded["project"], seeded["sa"]
    double.deny("Projects.GetIamPolicy", f"projects/{p}")
    double.deny("GetIamPolicy", s[1])
    double.deny("ListServiceAccountKeys", s[2])
    out = make_connector([p]).collect()
    codes = sorted(f.code for f in out.findings)
    assert codes == ["gcp.keys_unreadable", "gcp.policy_unreadable", "gcp.policy_unreadable", "gcp.public_binding"]
    assert {f.severity for f in out.findings} == {"error"}
    assert not any(n.kind.value == "service_account_key" and n.owner == s[2] for n in out.nodes)
    got = {e.key for e in out.edges}
    assert (sid(s[3]), "can_assume", sid(s[1])) not in got  # that policy was not readable
    assert (sid(s[1]), "can_assume", sid(s[2])) in got
    assert not any(src == "gcp:user:alice@example.com" for src, _, _ in got)


def test_collect_retries_throttled_reads(seeded: dict, make_connector, double: GcpIamDouble) -> None:
    double.rate_limit("ListServiceAccountKeys", calls=3, per_seconds=0.3)
    out = make_connector([seeded["project"]], retry_seconds=15, concurrency=4).collect()
    assert out.meta["keys"] == 3


def test_collect_throttled_without_retry_is_retryable(seeded: dict, make_connector, double: GcpIamDouble) -> None:
    double.rate_limit("ListServiceAccounts", calls=1, per_seconds=60)
    with pytest.raises(ConnectorError) as err:
        make_connector([seeded["project"]]).collect()
    assert err.value.retryable is True and "RESOURCE_EXHAUSTED" in str(err.value)
