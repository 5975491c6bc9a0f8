"""The incident report as Markdown, and the wording shared with the HTML renderer.

Every value that came from the graph or a person (ids, reasons, attestation notes, certificate
subjects) goes through `cell()` (literal text) or `code()` (a code span), the Markdown escapers of
`revoke.textsafe`, in table cells and in prose alike: a `|`, a backtick, raw HTML, a link, an image,
emphasis, a heading or a control character in a value cannot break the table, inject markup into a
Markdown viewer or reach the terminal of someone who reads the file with `cat`.
"""

from __future__ import annotations

from typing import Any

from revoke.textsafe import md_code, md_text

RESULT_LABELS = {
    "done": "done", "covered": "covered", "manual-attested": "attested, not probed", "manual-open": "manual, OPEN",
    "skipped": "skipped", "failed": "FAILED", "pending": "not done",
}
VERB_LABELS = {
    "revoke": "revoked", "disable": "disabled", "revoke_sessions": "sessions revoked", "retire_ca": "CA retired",
    "rotate": "rotated", "reissue": "reissued", "create_ca": "new CA issued",
}
MAX_TIMELINE_ROWS = 400


def when(ts: str | None) -> str:
    """ISO-8601 UTC to a compact, still unambiguous form: 2026-11-23 10:48:27.594Z."""
    if not ts:
        return "-"
    text = ts.replace("T", " ").replace("+00:00", "Z")
    if "." in text:
        head, _, tail = text.partition(".")
        frac = tail.rstrip("Z")[:3]
        text = f"{head}.{frac}Z" if text.endswith("Z") else f"{head}.{frac}"
    return text


def path_text(path: list[str], rels: list[str | None] | None = None) -> str:
    """`a —stores→ b —can_read→ c`; a hop whose relation the store no longer knows is a bare `→`
    (arrows that need no escaping in Markdown or HTML)."""
    if not path:
        return ""
    rels = rels or [None] * (len(path) - 1)
    out = [path[0]]
    for rel, nid in zip(rels, path[1:], strict=False):
        out.append(f" —{rel}→ {nid}" if rel else f" → {nid}")
    return "".join(out)


def verdict(report: dict[str, Any]) -> tuple[str, str]:
    """(headline, sentence) for the top of the report."""
    s = report["summary"]
    head = {"clean": "CLEAN", "not clean": "NOT CLEAN", "not verified": "NOT VERIFIED"}[s["verdict"]]
    return head, report["verification"]["statement"]


def outcome_text(e: dict[str, Any]) -> str:
    """One line for what happened to a step."""
    if e["verb"] == "manual":
        a = e.get("attestation")
        return f"attested, not probed: by {a['by']} at {when(a['at'])}: {a['note']}" if a else "OPEN: not attested"
    if e["verb"] == "covered":
        return f"covered by {e.get('covered_by')}"
    if e["verb"] == "skip":
        return "skipped"
    status = e["status"]
    if status == "done":
        detail = (e["outcome"] or {}).get("detail")
        return VERB_LABELS.get(e["verb"], e["verb"]) + (f" ({detail})" if detail else "")
    if status == "failed":
        return f"FAILED after {e['tries']} tr{'y' if e['tries'] == 1 else 'ies'}: {(e['outcome'] or {}).get('error', '')}"
    if status == "blocked":
        return f"BLOCKED: {e['blocked']}"
    if status == "interrupted":
        return "INTERRUPTED: intent recorded, no outcome (resume the run)"
    return "not run"


cell = md_text
code = md_code


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


def render_md(report: dict[str, Any]) -> str:
    inc, s, j = report["incident"], report["summary"], report["journal"]
    head, sentence = verdict(report)
    lines = [f"# Incident report: {cell(inc['id'])}", "",
             f"**{head}**: {cell(sentence)}", "",
             f"Journal: {cell(j['message'])}; final hash {code(j['final_hash'])}. "
             f"Report generated {when(report['generated_at'])}.", ""]
    r = s["results"]
    lines += ["## Summary", ""]
    lines += _table(["credentials reached", "holders reached", "revoked", "rotated", "reissued", "skipped",
                     "covered", "manual attested", "manual open", "failed / not done"],
                    [[str(s["credentials_reached"]), str(s["holders_reached"]), str(s["revoked"]), str(s["rotated"]),
                      str(s["reissued"]), str(s["skipped"]), str(s["covered"]), str(r["manual-attested"]),
                      str(r["manual-open"]), str(s["failed"] + s["pending"])]])
    lines += ["## Incident", ""]
    lines += _table(["field", "value"], [
        ["incident", code(inc["id"])], ["playbook", f"{cell(inc['playbook'])} ({code(inc['playbook_file'])})"],
        ["playbook digest", code(inc["playbook_digest"])],
        ["compromised sources", ", ".join(code(x) for x in inc["sources"])],
        ["exposure window", cell(inc["window"] or "none (everything reachable now)")],
        ["emergency mode", "yes" if inc["emergency"] else "no"],
        ["declared by", cell(inc["declared_by"])], ["declared at", when(inc["declared_at"])]])
    lines += _timeline(report)
    lines += _radius(report)
    lines += _sections(report)
    if "observed" in report:
        from revoke.report_observed import render_md as observed_md

        lines += observed_md(report["observed"], cell, code, _table)
    lines += _verification(report)
    lines += ["## Journal hash chain", "",
              f"- {'intact' if j['intact'] else '**BROKEN**'}: {cell(j['message'])}",
              f"- records: {j['records']}", f"- final hash: {code(j['final_hash'])}"]
    if not j["intact"]:
        lines.append(f"- first bad record: {j['broken_at']}; last hash that checks: {code(j['verified_through'])}")
    lines += ["", "The full chain (seq, type, action, node, hash, prev) is in the JSON report.", ""]
    return "\n".join(lines)


def _timeline(report: dict[str, Any]) -> list[str]:
    rows = []
    for e in report["timeline"][:MAX_TIMELINE_ROWS]:
        if e["event"] == "action":
            rows.append([when(e["intent_at"] or e["at"]), cell(e["verb"]), code(e["node"]), cell(e["status"]),
                         when(e["outcome_at"]), cell(e["detail"])])
        else:
            rows.append([when(e["at"]), cell(e["event"]), code(e["node"]) if e["node"] else "", "", "", cell(e["detail"])])
    out = ["## Timeline", ""]
    out += _table(["time", "event", "node", "result", "outcome at", "detail"], rows)
    more = len(report["timeline"]) - MAX_TIMELINE_ROWS
    if more > 0:
        out += [f"... {more} more events: see the JSON report.", ""]
    return out


def _radius(report: dict[str, Any]) -> list[str]:
    br = report["blast_radius"]
    out = ["## Blast radius", "",
           "Compromised: " + ", ".join(code(x["id"]) for x in br["sources"]) + ". "
           f"{len(br['credentials'])} credentials and {len(br['holders'])} holders reached.", "",
           "### Credentials", ""]
    out += _table(["credential", "kind", "depth", "plan", "result", "path"],
                  [[code(c["id"]), cell(c["kind"]), str(c["depth"]), cell(", ".join(c["verbs"])),
                    cell(RESULT_LABELS.get(c["result"] or "", "")), cell(path_text(c["path"], c["rels"]))]
                   for c in br["credentials"]])
    out += ["### Holders and identities", ""]
    out += _table(["holder", "kind", "depth", "plan", "path"],
                  [[code(h["id"]), cell(h["kind"]), str(h["depth"]), cell(", ".join(h["verbs"]) or "exposed"),
                    cell(path_text(h["path"], h["rels"]))] for h in br["holders"]])
    return out


def _stores_text(e: dict[str, Any]) -> str:
    parts = []
    for t in e.get("stores") or []:
        if t["mode"] == "write":
            parts.append(f"{t['store']}: " + (f"written {when(t['at'])}" if t["written"] else "NOT written"))
        elif t["mode"] == "manual":
            parts.append(f"{t['store']}: by hand (manual task)")
        else:
            parts.append(f"{t['store']}: not written ({t['reason']})")
    if e.get("escrow"):
        parts.append(f"escrow {e['escrow']}")
    return "; ".join(parts) or "no store held it"


def retired_text(e: dict[str, Any]) -> str:
    """What became of the old credential: deleted (it cannot come back) or retired by a verb."""
    deleted = e.get("deleted")
    if deleted and deleted == e["node"]:
        return "deleted (to make room for its replacement; it cannot come back)"
    text = f"{e['retired']['verb']} at {when(e['retired']['at'])}" if e.get("retired") else "-"
    if deleted:
        text += f"; {deleted} deleted to make room"
    return text


def escrow_groups(report: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Escrowed items grouped by credential kind (a fleet's device certificates together)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for x in report.get("escrowed") or []:
        groups.setdefault(x["kind"], []).append(x)
    return sorted(groups.items())


def delivery_text(x: dict[str, Any]) -> str:
    if not x["deliver_to"]:
        return "kept (no holder to deliver it to)"
    return "; ".join(f"{d['node']}: {'attested' if d['attested'] else 'OPEN'}" for d in x["deliver_to"])


def _escrowed(report: dict[str, Any]) -> list[str]:
    out = ["## Escrowed", ""]
    if not report.get("escrowed"):
        return [*out, "Nothing.", ""]
    out += ["Replacements no store could receive, kept in the escrow until delivered (names and "
            "fingerprints only; the values are in the escrow).", ""]
    for kind, items in escrow_groups(report):
        out += [f"### {cell(kind)} ({len(items)})", ""]
        out += _table(["escrow item", "replaces", "new", "fingerprint", "deliver to"],
                      [[code(x["escrow"]) + ("" if x["escrowed"] else " (NOT escrowed)"), code(x["replaces"]),
                        code(x["new"]) or "-", code(x["fingerprint"]) or "-", cell(delivery_text(x))] for x in items])
    return out


def _sections(report: dict[str, Any]) -> list[str]:
    out = ["## Revoked", ""]
    out += _table(["credential / identity", "kind", "action", "result", "at"],
                  [[code(e["node"]), cell(e["kind"]), cell(e["verb"]), cell(outcome_text(e)), when(e["outcome_at"])]
                   for e in report["revoked"]]) if report["revoked"] else ["Nothing.", ""]
    for title, key in (("Rotated", "rotated"), ("Reissued", "reissued")):
        out += [f"## {title}", ""]
        if not report[key]:
            out += ["Nothing.", ""]
            continue
        out += _table(["old", "new", "result", "stores", "old retired"],
                      [[code(e["node"]), code(e.get("new")) or "-", cell(outcome_text(e)), cell(_stores_text(e)),
                        cell(retired_text(e))
                        + (cell(f"; discarded after a restart: {', '.join(e['discarded'])}") if e.get("discarded") else "")]
                       for e in report[key]])
    out += _escrowed(report)
    out += ["## Skipped", ""]
    out += _table(["node", "kind", "why"], [[code(e["node"]), cell(e["kind"]), cell(e["reason"])]
                                           for e in report["skipped"]]) if report["skipped"] else ["Nothing.", ""]
    out += ["## Covered", ""]
    out += _table(["node", "kind", "covered by", "why"],
                  [[code(e["node"]), cell(e["kind"]), code(e.get("covered_by")), cell(e["reason"])]
                   for e in report["covered"]]) if report["covered"] else ["Nothing.", ""]
    out += ["## Manual tasks", ""]
    out += _table(["node", "kind", "why", "status", "path"],
                  [[code(e["node"]), cell(e["kind"]), cell(e["reason"]), cell(outcome_text(e)),
                    cell(path_text(e["path"], e["rels"]))] for e in report["manual"]]) if report["manual"] else ["None.", ""]
    if report.get("trust_removed"):
        out += ["## Trust removed", ""]
        out += _table(["holder", "dropped CA", "trust store", "trusts now", "verified"],
                      [[code(t["holder"]), cell(f"{t['dropped_name']} ({t['fingerprint']})"), cell(", ".join(t["paths"])),
                        cell(", ".join(t["trusts_now"]) or "-"), cell(t["verified"])] for t in report["trust_removed"]])
    out += ["## Failed or not done", ""]
    bad = report["failed"] + report["pending"]
    out += _table(["action", "node", "result"], [[code(e["step"]), code(e["node"]), cell(outcome_text(e))]
                                                for e in bad]) if bad else ["Nothing failed.", ""]
    if report["after"]:
        out += ["## After containment (finalize, rollback)", ""]
        out += _table(["action", "status", "at", "detail"], [[code(a["action"]), cell(a["status"]), when(a["at"]),
                                                             cell(a["detail"])] for a in report["after"]])
    return out


def _verification(report: dict[str, Any]) -> list[str]:
    v = report["verification"]
    out = ["## Verification", "", f"{cell(v['statement'])}", ""]
    last = v["last"]
    if last is None:
        return [*out, "No `revoke verify` was recorded for this incident.", ""]
    out += [f"- last run: {when(last['at'])} ({len(v['runs'])} run(s) in all): "
            f"{'clean' if last['clean'] else 'NOT clean'}, {last['probes']} probes",
            *[f"  - {cell(r)}" for r in last["reasons"]],
            f"- live credentials still reachable: {len(last['survivors'])}"]
    out += [f"  - {code(x['node'])} ({cell(x['kind'])}) via {cell(path_text(x['path']))}" for x in last["survivors"]]
    out.append(f"- open manual tasks: {len(last['open_manual'])}")
    out += [f"  - {code(n)}" for n in last["open_manual"]]
    if last["failed_steps"]:
        out.append(f"- actions not done: {', '.join(code(x) for x in last['failed_steps'])}")
    if last["records_after"]:
        out.append(f"- note: {last['records_after']} journal record(s) were written after this verification; "
                   "run `revoke verify` again for a current result")
    return [*out, ""]
