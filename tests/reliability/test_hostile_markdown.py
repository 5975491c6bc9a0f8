"""Markdown outputs (the sweep and the incident report) hold every interpolated value as literal
text: node ids, names, attestation notes and the incident id carrying each Markdown payload,
checked with a real Markdown parser against the same document built from benign values."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

HOST = "host:ci-runner-7"
PLAYBOOK = str(Path(__file__).resolve().parents[2] / "playbooks" / "compromised-host.yaml")

# --- Markdown: every interpolated value is literal text -----------------------------------------
MARKDOWN = {
    "image": "![x](https://evil.example/t.png)",
    "link": "[click](https://evil.example/)",
    "reference": "[ref]: https://evil.example/",
    "autolink": "<https://evil.example/>",
    "bare-url": "https://evil.example/x",
    "www": "www.evil.example",
    "email": "attacker@evil.example",
    "html": "<img src=x onerror=alert(1)>",
    "entity": "&lt;b&gt;",
    "code-span": "`rm -rf /`",
    "emphasis": "*em* _em_ **strong** __strong__",
    "strikethrough": "~~struck~~",
    "heading": "# heading",
    "quote": "> quote",
    "list": "- item",
    "ordered": "1. item",
    "table-pipe": "a | b",
    "hard-break": "line\\",
    "line-break": "line\n# new heading",
    "maths": "$x^2$",
}
INLINE_FORBIDDEN = {"link_open", "image", "html_inline", "em_open", "strong_open", "s_open", "softbreak", "hardbreak"}


def markdown_parser(linkify: bool) -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True, "linkify": linkify}).enable(["table", "strikethrough"])
    if linkify:
        md.enable("linkify")
    return md


def structure(md: Any, text: str) -> tuple[list[str], list[Any]]:
    tokens = md.parse(text)
    blocks = [t.type for t in tokens if t.type != "inline"]
    inlines = [c for t in tokens if t.type == "inline" for c in (t.children or [])]
    return blocks, inlines


def assert_literal_markdown(md: Any, hostile: str, benign: str, payloads: dict[str, str]) -> None:
    """The hostile document has the benign one's block structure, creates no link, image, HTML,
    emphasis or break from a value, and holds each payload as literal text."""
    blocks, inlines = structure(md, hostile)
    benign_blocks, benign_inlines = structure(md, benign)
    assert blocks == benign_blocks
    created = Counter(t.type for t in inlines if t.type in INLINE_FORBIDDEN)
    assert created == Counter(t.type for t in benign_inlines if t.type in INLINE_FORBIDDEN)  # the document's own
    assert sum(t.type == "code_inline" for t in inlines) == sum(t.type == "code_inline" for t in benign_inlines)
    shown = "".join(t.content for t in inlines if t.type in ("text", "code_inline", "text_special"))
    for name, payload in payloads.items():
        literal = payload.replace("\n", "\\n")
        assert literal in shown, (name, literal)


@pytest.mark.parametrize("linkify", [False, True], ids=["commonmark+gfm-tables", "linkify"])
def test_sweep_markdown_is_literal(tmp_path: Path, linkify: bool) -> None:
    if linkify:
        pytest.importorskip("linkify_it", reason="markdown-it-py[linkify] (the test extra) is not installed")
    md = markdown_parser(linkify)
    docs = {}
    for kind, values in (("hostile", MARKDOWN), ("benign", {k: "x" for k in MARKDOWN})):
        root = tmp_path / kind
        root.mkdir()
        old = (datetime.now(UTC) - timedelta(days=400)).isoformat()
        nodes = [{"id": HOST, "kind": "host"}]
        edges = []
        for i, (name, payload) in enumerate(values.items()):
            nid = f"aws:access_key:AKIAMD{i:02d}" + ("".join(payload.split()) if kind == "hostile" else "x")
            nodes.append({"id": nid, "kind": "access_key", "provider": "aws", "created": old, "name": payload})
            edges.append({"from": HOST, "to": nid, "rel": "stores"})
            if name == "table-pipe":  # a value in the evidence column too
                edges.append({"from": f"host:{payload.replace(' ', '')}", "to": nid, "rel": "stores"})
                nodes.append({"id": f"host:{payload.replace(' ', '')}", "kind": "host"})
        (root / "inventory.json").write_text(json.dumps({"nodes": nodes, "edges": edges}))
        (root / "revoke.yaml").write_text("connectors:\n  - type: inventory\n    path: inventory.json\n")
        from tests.conftest import run_revoke

        kw = {"cwd": root, "store": root / "s.db", "config": root / "revoke.yaml", "in_process": True}
        assert run_revoke("collect", **kw).returncode == 0
        res = run_revoke("sweep", "--format", "md", "--fail-on", "none", **kw)
        assert res.returncode == 0, res
        docs[kind] = res.stdout
    assert_literal_markdown(md, docs["hostile"], docs["benign"],
                            {k: "".join(v.split()) for k, v in MARKDOWN.items()})


@pytest.mark.parametrize("linkify", [False, True], ids=["commonmark+gfm-tables", "linkify"])
def test_incident_report_markdown_is_literal(tmp_path: Path, linkify: bool) -> None:
    """Node ids (code spans), an attestation note and the incident id (prose, a heading) carrying
    every payload: the Markdown report shows each as literal text."""
    if linkify:
        pytest.importorskip("linkify_it", reason="markdown-it-py[linkify] (the test extra) is not installed")
    from tests.conftest import run_revoke

    md = markdown_parser(linkify)
    docs = {}
    for kind in ("hostile", "benign"):
        payloads = MARKDOWN if kind == "hostile" else {k: "x" for k in MARKDOWN}
        root = tmp_path / kind
        root.mkdir()
        nodes = [{"id": HOST, "kind": "host"}]
        edges = []
        for i, payload in enumerate(payloads.values()):
            nid = f"aws:access_key:AKIAMD{i:02d}" + "".join(payload.split())
            nodes.append({"id": nid, "kind": "access_key", "provider": "aws"})
            edges.append({"from": HOST, "to": nid, "rel": "stores"})
        (root / "inventory.json").write_text(json.dumps({"nodes": nodes, "edges": edges}))
        (root / "revoke.yaml").write_text("connectors:\n  - type: inventory\n    path: inventory.json\n")
        kw = {"cwd": root, "store": root / "s.db", "config": root / "revoke.yaml", "in_process": True}
        assert run_revoke("collect", **kw).returncode == 0
        incident = "inc-" + ("".join(MARKDOWN["image"].split()) if kind == "hostile" else "x")
        assert run_revoke("run", PLAYBOOK, "--node", HOST, "--incident", incident, "--execute", **kw).returncode == 0
        for i, payload in enumerate(payloads.values()):
            nid = f"aws:access_key:AKIAMD{i:02d}" + "".join(payload.split())
            res = run_revoke("attest", "--incident", incident, nid, "--note", payload, **kw)
            assert res.returncode == 0, res
        res = run_revoke("report", "--incident", incident, "--format", "md", **kw)
        assert res.returncode == 0, res
        docs[kind] = res.stdout
    assert_literal_markdown(md, docs["hostile"], docs["benign"], MARKDOWN)
    assert "inc-![x](https://evil.example/t.png)" in "".join(
        t.content for t in structure(md, docs["hostile"])[1] if t.type in ("text", "text_special"))
