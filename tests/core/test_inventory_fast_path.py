"""A JSON inventory's plain edges take one tight loop that frees the parsed entries as it goes;
anything else puts the document back and takes the careful path, which names the line."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from connectors.inventory import parse_inventory
from revoke.errors import InputError
from revoke.yamlio import load_file

DOC = {"nodes": [{"id": "host:a", "kind": "host"}, {"id": "aws:access_key:AKIAX", "kind": "access_key", "provider": "aws"}],
       "edges": [{"from": "host:a", "to": "aws:access_key:AKIAX", "rel": "stores"},
                 {"from": "host:a", "to": "vault:token:t", "rel": "stores"},
                 {"from": "vault:token:t", "to": "aws:user:u", "rel": "can_read"}]}


def _summary(collected):
    return ([e.key for e in collected.edges], [(r["node"], r["where"]) for r in collected.meta.get("references", [])])


def test_consuming_parse_equals_the_careful_one_and_frees_the_entries() -> None:
    doc = copy.deepcopy(DOC)
    fast = parse_inventory(doc, "inv.json", consume=True)
    assert doc["edges"] == []
    careful = parse_inventory(copy.deepcopy(DOC), "inv.json")
    assert _summary(fast) == _summary(careful)
    assert _summary(fast)[1] == [("aws:access_key:AKIAX", "nodes[1]"), ("vault:token:t", "edges[1]"),
                                 ("vault:token:t", "edges[2]"), ("aws:user:u", "edges[2]")]
    # the edges name the declared node's own id string, not the parser's copy
    assert fast.edges[0].src is fast.nodes[0].id


@pytest.mark.parametrize("bad", [{"from": "host:a", "to": "host:a", "rel": "owns"},
                                 {"from": "host:a", "to": "not an id", "rel": "stores"},
                                 {"from": "host:a", "to": "host:a", "rel": "stores", "since": 5}])
def test_an_unusual_entry_puts_the_document_back_and_names_its_line(tmp_path: Path, bad: dict) -> None:
    doc = copy.deepcopy(DOC)
    doc["edges"].insert(1, bad)
    path = tmp_path / "inv.json"
    path.write_text(json.dumps(doc, indent=1))
    loaded = load_file(path)
    with pytest.raises(InputError) as err:
        parse_inventory(loaded, str(path), consume=True)
    assert "edges[1]" in str(err.value) and err.value.line is not None
    assert loaded["edges"] == doc["edges"]
