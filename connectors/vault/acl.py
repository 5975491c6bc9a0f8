"""ACL evaluation from policy text, used only when `sys/capabilities-accessor` is refused
(a non-root collector token gets 403 there).

Follows Vault's rules: the rules of all a token's policies are merged per path pattern; an
exact pattern wins, else the most specific matching glob (`*` suffix, `+` one segment) by
Vault's documented priority; `deny` wins within the chosen rule. Identity-group policies and
namespaces are not visible this way, so the caller reports this as a fallback.
"""

from __future__ import annotations

import json
import re
from typing import Any

from connectors.vault.client import VaultApi
from revoke.connector import ConnectorError

RULE_RE = re.compile(r'path\s+"([^"]+)"\s*\{(.*?)\}', re.S)
CAPS_RE = re.compile(r"capabilities\s*=\s*\[(.*?)\]", re.S)
OLD_POLICY_RE = re.compile(r'policy\s*=\s*"(\w+)"')
OLD_POLICY = {
    "deny": {"deny"},
    "read": {"read", "list"},
    "write": {"create", "read", "update", "delete", "list"},
    "sudo": {"create", "read", "update", "delete", "list", "sudo"},
}


def parse_policy(text: str) -> dict[str, set[str]]:
    """Path pattern -> capabilities, from HCL or JSON policy text."""
    rules: dict[str, set[str]] = {}
    stripped = text.strip()
    if stripped.startswith("{"):
        doc = json.loads(stripped)
        for pattern, body in (doc.get("path") or {}).items():
            caps = set(body.get("capabilities") or []) | OLD_POLICY.get(str(body.get("policy") or ""), set())
            rules.setdefault(pattern, set()).update(caps)
        return rules
    for pattern, body in RULE_RE.findall(text):
        found: set[str] = set()
        m = CAPS_RE.search(body)
        if m:
            found |= {c.strip().strip('"') for c in m.group(1).split(",") if c.strip()}
        old = OLD_POLICY_RE.search(body)
        if old:
            found |= OLD_POLICY.get(old.group(1), set())
        rules.setdefault(pattern, set()).update(found)
    return rules


def _matches(pattern: str, path: str) -> bool:
    glob = pattern.endswith("*")
    pat = pattern[:-1] if glob else pattern
    if "+" not in pat:
        return path.startswith(pat) if glob else path == pat
    regex = "/".join("[^/]+" if seg == "+" else re.escape(seg) for seg in pat.split("/"))
    return re.fullmatch(regex + (".*" if glob else ""), path, re.S) is not None


def _priority(pattern: str) -> tuple[int, bool, int, int, str]:
    positions = [i for i in (pattern.find("+"), pattern.find("*")) if i >= 0]
    return (min(positions) if positions else len(pattern) + 1, not pattern.endswith("*"), -pattern.count("+"),
            len(pattern), pattern)


def capabilities(rules: dict[str, set[str]], path: str) -> list[str]:
    if path in rules and "+" not in path and not path.endswith("*"):
        caps = rules[path]
    else:
        matching = [p for p in rules if _matches(p, path)]
        if not matching:
            return ["deny"]
        caps = rules[max(matching, key=_priority)]
    return ["deny"] if "deny" in caps else sorted(caps)


def merged_rules(policy_texts: list[str]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for text in policy_texts:
        for pattern, caps in parse_policy(text).items():
            merged.setdefault(pattern, set()).update(caps)
    return merged


def fallback_capabilities(api: VaultApi, lookups: dict[str, dict[str, Any]], paths: list[str]
                          ) -> tuple[dict[str, dict[str, list[str]]], str]:
    """accessor -> path -> capabilities from the tokens' policies; ({}, reason) when even the
    policies cannot be read."""
    texts: dict[str, str] = {}
    for data in lookups.values():
        for name in data.get("policies") or []:
            if name in texts or name == "root":
                continue
            try:
                body = api.get(f"sys/policies/acl/{name}") or {}
            except ConnectorError as exc:
                if exc.code in ("401", "403"):
                    return {}, f"policy {name} unreadable too, so no can_read edges"
                raise
            texts[name] = str((body.get("data") or {}).get("policy") or "")
    out: dict[str, dict[str, list[str]]] = {}
    for acc, data in lookups.items():
        names = data.get("policies") or []
        if "root" in names:
            out[acc] = {p: ["root"] for p in paths}
            continue
        rules = merged_rules([texts[n] for n in names if n in texts])
        out[acc] = {p: capabilities(rules, p) for p in paths}
    return out, "policies read from sys/policies/acl and evaluated locally"
