"""PyPI tokens are read offline (their caveats) and become manual tasks; GitHub and PyPI token
shapes are recognised inside other stores' values, by fingerprint only."""

from __future__ import annotations

from connectors import pypi
from connectors.recognize import recognize
from revoke.model import NodeKind, Relation, fingerprint
from tests.github.github_testlib import pypi_token


def test_project_scoped_token_can_publish_its_projects() -> None:
    value = pypi_token(["ai-gateway", "ai-gateway-sdk"])
    nodes, edges, findings = pypi.token_graph(value)
    token = nodes[0]
    assert token.id == f"pypi:api_token:{fingerprint(value).removeprefix('sha256:')}" and token.kind is NodeKind.TOKEN
    assert {(e.src, e.rel, e.dst) for e in edges} == {
        (token.id, Relation.CAN_PUBLISH, "pypi:package:ai-gateway"),
        (token.id, Relation.CAN_PUBLISH, "pypi:package:ai-gateway-sdk")}
    hint = token.attrs["manual_hint"]
    assert "https://pypi.org/manage/account/#api-tokens" in hint and token.attrs["identifier"] in hint
    assert "Trusted Publishing" in hint
    assert {f.code for f in findings} == {"pypi.trusted_publishing"}
    assert value not in repr((nodes, edges, findings))


def test_account_wide_token_reaches_its_account() -> None:
    _nodes, edges, findings = pypi.token_graph(pypi_token(None))
    assert edges[0].dst.startswith("pypi:user:") and edges[0].rel is Relation.CAN_PUBLISH
    assert any(f.code == "pypi.account_wide_token" and f.severity == "error" for f in findings)


def test_unreadable_pypi_value_is_a_finding() -> None:
    nodes, edges, findings = pypi.token_graph("pypi-" + "A" * 60)
    assert not nodes and not edges and findings[0].code == "pypi.token_unreadable"


def test_recognise_github_and_pypi_tokens_in_a_store_value() -> None:
    gh_tokens = {"classic": "ghp_" + "a" * 36, "fine": "github_pat_" + "B1_" * 20, "oauth": "gho_" + "c" * 36,
                 "user": "ghu_" + "d" * 36, "inst": "ghs_" + "e" * 36, "refresh": "ghr_" + "f" * 36}
    value = {**gh_tokens, "publish": pypi_token(["ai-gateway"])}
    found = {f.fields[0]: f for f in recognize(value)}
    for field, token in gh_tokens.items():
        assert found[field].ref == f"github:token:{fingerprint(token).removeprefix('sha256:')}"
        assert found[field].kind is NodeKind.TOKEN
    assert found["publish"].ref == f"pypi:api_token:{fingerprint(value['publish']).removeprefix('sha256:')}"
    assert all(v not in repr(found) for v in value.values())
