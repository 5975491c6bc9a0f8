"""The incident report as one self-contained HTML file: inline CSS, an inline SVG picture of the
blast radius, no script, no font, no image and no link to anything outside the file. Every value
from the graph, the journal or a person is escaped."""

from __future__ import annotations

import re
from typing import Any

from revoke.report_graph import LEGEND, STYLES, render_svg
from revoke.report_md import (
    MAX_TIMELINE_ROWS,
    RESULT_LABELS,
    delivery_text,
    escrow_groups,
    outcome_text,
    path_text,
    retired_text,
    verdict,
    when,
)
from revoke.textsafe import html_text

FOLD_ROWS = 40  # longer tables start folded (<details>), so the page stays scannable

CSS = """
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; }
* { box-sizing: border-box; }
body { margin:0; padding:24px 28px 48px; color:var(--ink); background:#f8fafc;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1500px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 14px; margin: 16px 0 6px; color: #334155; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
  overflow-wrap: anywhere; }
.banner { display:flex; gap:18px; align-items:center; padding:14px 18px; border-radius:10px; color:#fff; }
.banner .verdict { font-size: 26px; font-weight: 800; letter-spacing: .5px; white-space: nowrap; }
.banner .statement { font-size: 15px; }
.banner.clean { background:#166534; } .banner.dirty { background:#b91c1c; } .banner.unverified { background:#92400e; }
.chainline { margin: 8px 0 0; color: #334155; }
.chainline .bad { color:#b91c1c; font-weight:700; }
.cards { display:flex; flex-wrap:wrap; gap:8px; margin: 16px 0 4px; }
.card { flex: 1 1 96px; background:#fff; border:1px solid var(--line); border-radius:8px; padding:7px 12px; }
.card .n { font-size: 22px; font-weight: 700; } .card .l { color: var(--muted); font-size: 12px; }
.card.warn .n { color:#b91c1c; } .card.ok .n { color:#166534; }
.picture { background:#fff; border:1px solid var(--line); border-radius:10px; padding:8px; overflow-x:auto; }
.picture svg { width:100%; height:auto; display:block; }
.legend { display:flex; flex-wrap:wrap; gap:6px 16px; margin: 8px 2px 10px; font-size: 12.5px; color:#334155; }
.legend span.sw { display:inline-block; width:14px; height:14px; border-radius:3px; vertical-align:-2px; margin-right:5px; }
table { border-collapse: collapse; width: 100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; vertical-align:top; padding:5px 8px; border-bottom:1px solid var(--line); overflow-wrap:anywhere; }
td:first-child { min-width: 260px; } td.k { white-space: nowrap; overflow-wrap: normal; }
th { background:#f1f5f9; font-size: 12.5px; color:#334155; white-space: nowrap; overflow-wrap: normal; }
td .path { font-size: 12px; color:#475569; margin-top: 2px; overflow-wrap:anywhere; }
td.id { width: 55%; }
.pill { display:inline-block; padding:0 7px; border-radius:9px; font-size:12px; font-weight:600; white-space:nowrap; }
.r-done { background:#dcfce7; color:#14532d; } .r-covered { background:#ecfdf5; color:#065f46; }
.r-manual-attested { background:#dbeafe; color:#1e3a8a; } .r-manual-open { background:#ffedd5; color:#7c2d12; }
.r-skipped { background:#f3f4f6; color:#374151; } .r-failed { background:#fee2e2; color:#7f1d1d; }
.r-pending { background:#fef9c3; color:#713f12; }
details > summary { cursor: pointer; color:#334155; margin: 4px 0; }
.none { color: var(--muted); }
dl.kv { display:grid; grid-template-columns: 190px 1fr; gap: 4px 12px; background:#fff; border:1px solid var(--line);
  border-radius:8px; padding:10px 14px; margin:0; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin:0; }
footer { margin-top: 28px; color: var(--muted); font-size: 12px; }
"""


def e(value: Any) -> str:
    return html_text(value)


def c(value: Any) -> str:
    return f"<code>{e(value)}</code>" if value not in (None, "") else ""


def pill(result: str | None) -> str:
    if not result:
        return ""
    return f'<span class="pill r-{e(result)}">{e(RESULT_LABELS.get(result, result))}</span>'


def with_path(node: str, x: dict[str, Any]) -> str:
    return f'{c(node)}<div class="path">{e(path_text(x["path"], x.get("rels")))}</div>'


def _cls(i: int, v: str, head: list[str]) -> str:
    if i == 0 and "path" in head[0]:
        return " class=id"
    # a short label (a kind, a status, a time) is never broken inside a word
    text = re.sub(r"<[^>]*>", "", v)
    return " class=k" if len(text) <= 26 and "<code>" not in v else ""


def table(head: list[str], rows: list[list[str]], *, empty: str = "Nothing.", fold: int = FOLD_ROWS,
          what: str = "rows") -> str:
    if not rows:
        return f'<p class="none">{e(empty)}</p>'
    body = "".join("<tr>" + "".join(f"<td{_cls(i, v, head)}>{v}</td>" for i, v in enumerate(r)) + "</tr>" for r in rows)
    tab = "<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + f"</tr></thead><tbody>{body}</tbody></table>"
    if len(rows) > fold:
        return f"<details><summary>{len(rows)} {e(what)} (click to show)</summary>{tab}</details>"
    return tab


def render_html(report: dict[str, Any]) -> str:
    inc, s, j = report["incident"], report["summary"], report["journal"]
    head, sentence = verdict(report)
    cls = {"CLEAN": "clean", "NOT CLEAN": "dirty", "NOT VERIFIED": "unverified"}[head]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # no network: forbid every fetch even if a viewer tried one
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>Incident report: {e(inc['id'])}</title><style>{CSS}</style></head><body><main>",
        f"<h1>Incident report: {c(inc['id'])}</h1>",
        f'<div class="banner {cls}"><div class="verdict">{e(head)}</div><div class="statement">{e(sentence)}</div></div>',
        '<p class="chainline">Journal: '
        + (e(j["message"]) if j["intact"] else f'<span class="bad">BROKEN: {e(j["message"])}</span>')
        + f" · final hash {c(j['final_hash'])}</p>",
        _cards(s),
        _incident(inc),
        "<h2>Blast radius</h2>",
        _legend(),
        f'<div class="picture">{render_svg(report["blast_radius"])}</div>',
        _radius_tables(report),
        _timeline(report),
        _sections(report),
        _verification(report),
        _chain(j),
        f"<footer>Generated {e(when(report['generated_at']))} from the incident journal and the recorded plan "
        f"({e(report['format'])}). The JSON report holds every record of the hash chain.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _cards(s: dict[str, Any]) -> str:
    r = s["results"]
    items = [
        (s["credentials_reached"], "credentials reached", ""), (s["holders_reached"], "holders exposed", ""),
        (s["revoked"], "revoked", "ok"), (s["rotated"], "rotated", "ok"), (s["reissued"], "reissued", "ok"),
        (s["covered"], "covered", ""), (s["skipped"], "skipped", ""),
        (r["manual-attested"], "manual, attested", ""), (r["manual-open"], "manual, open", "warn" if r["manual-open"] else ""),
        (s["failed"] + s["pending"], "failed / not done", "warn" if s["failed"] + s["pending"] else "ok"),
    ]
    cards = "".join(f'<div class="card {k}"><div class="n">{n}</div><div class="l">{e(label)}</div></div>'
                    for n, label, k in items)
    return f'<div class="cards">{cards}</div>'


def _incident(inc: dict[str, Any]) -> str:
    rows = [("incident", c(inc["id"])), ("playbook", f"{e(inc['playbook'])} {c(inc['playbook_file'])}"),
            ("playbook digest", c(inc["playbook_digest"])), ("compromised sources", ", ".join(c(x) for x in inc["sources"])),
            ("exposure window", e(inc["window"] or "none (everything reachable now)")),
            ("emergency mode", "yes" if inc["emergency"] else "no"),
            ("declared by", e(inc["declared_by"])), ("declared at", e(when(inc["declared_at"])))]
    return "<h2>Incident</h2><dl class=\"kv\">" + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _legend() -> str:
    out = []
    for style, label in LEGEND:
        fill, stroke, _, dashed, _ = STYLES[style]
        border = f"2px {'dashed' if dashed else 'solid'} {stroke}"
        radius = "7px" if style == "holder" else "3px"
        out.append(f'<span><span class="sw" style="background:{fill};border:{border};border-radius:{radius}"></span>'
                   f"{e(label)}</span>")
    return ('<div class="legend">' + "".join(out) + "<span>· hover a box for its full id; boxes marked with a "
            "stack and a count group nodes of the same kind and outcome at the same depth</span></div>")


def _radius_tables(report: dict[str, Any]) -> str:
    br = report["blast_radius"]
    head = ["credential, and the path that exposed it", "kind", "depth", "plan", "result"]

    def row(x: dict[str, Any]) -> list[str]:
        return [with_path(x["id"], x), e(x["kind"]), str(x["depth"]), e(", ".join(x["verbs"])), pill(x["result"])]

    creds = table(head, [row(x) for x in br["credentials"]], what="credentials")
    if len(br["credentials"]) > FOLD_ROWS:
        # a long list folds; what still needs someone stays in view
        attention = [row(x) for x in br["credentials"] if x["result"] not in ("done", "covered", "skipped")]
        creds = (table(head, attention, empty="Every credential was acted on, covered or skipped.", fold=10**6)
                 if attention else "") + creds
    holders = table(["holder, and the path that exposed it", "kind", "depth", "plan"],
                    [[with_path(x["id"], x), e(x["kind"]), str(x["depth"]), e(", ".join(x["verbs"]) or "exposed")]
                     for x in br["holders"]], what="holders", empty="None.")
    return f"<h3>Credentials reached</h3>{creds}<h3>Holders and identities</h3>{holders}"


def _timeline(report: dict[str, Any]) -> str:
    rows = []
    for ev in report["timeline"][:MAX_TIMELINE_ROWS]:
        if ev["event"] == "action":
            rows.append([e(when(ev["intent_at"] or ev["at"])), e(ev["verb"]), c(ev["node"]), e(ev["status"]),
                         e(when(ev["outcome_at"])), e(ev["detail"])])
        else:
            rows.append([e(when(ev["at"])), f"<b>{e(ev['event'])}</b>", c(ev["node"]), "", "", e(ev["detail"])])
    more = len(report["timeline"]) - MAX_TIMELINE_ROWS
    tail = f'<p class="none">... {more} more events: see the JSON report.</p>' if more > 0 else ""
    head = ["time", "event", "node", "result", "outcome at", "detail"]
    full = table(head, rows, fold=80, what="events (every action)")
    if len(rows) <= 80:
        return "<h2>Timeline</h2>" + full + tail
    # many actions: the milestones and whatever went wrong first, every action folded below
    key = [r for ev, r in zip(report["timeline"], rows, strict=False)
           if ev["event"] != "action" or ev["status"] != "done"]
    return "<h2>Timeline</h2>" + table(head, key, fold=10**6) + full + tail


def _stores(x: dict[str, Any]) -> str:
    out = []
    for t in x.get("stores") or []:
        if t["mode"] == "write":
            out.append(f"{c(t['store'])}: " + (f"written {e(when(t['at']))}" if t["written"] else "<b>NOT written</b>"))
        elif t["mode"] == "manual":
            out.append(f"{c(t['store'])}: by hand (manual task)")
        else:
            out.append(f"{c(t['store'])}: not written ({e(t['reason'])})")
    if x.get("escrow"):
        out.append(f"escrow {c(x['escrow'])}")
    return "<br>".join(out) or '<span class="none">no store held it</span>'


def _escrowed(report: dict[str, Any]) -> list[str]:
    out = ["<h2>Escrowed</h2>"]
    if not report.get("escrowed"):
        return [*out, '<p class="none">Nothing.</p>']
    for kind, items in escrow_groups(report):
        rows = [[c(x["escrow"]) + ("" if x["escrowed"] else " <b>(NOT escrowed)</b>"), c(x["replaces"]),
                 c(x["new"]) or "-", c(x["fingerprint"]) or "-", e(delivery_text(x))] for x in items]
        out += [f"<h3>{e(kind)} ({len(items)})</h3>",
                table(["escrow item", "replaces", "new", "fingerprint", "deliver to"], rows, what="escrowed")]
    return out


def _sections(report: dict[str, Any]) -> str:
    out = ["<h2>Revoked</h2>", table(["credential / identity", "kind", "action", "result", "at"],
                                     [[c(x["node"]), e(x["kind"]), e(x["verb"]), e(outcome_text(x)), e(when(x["outcome_at"]))]
                                      for x in report["revoked"]], what="revoked")]
    for title, key in (("Rotated", "rotated"), ("Reissued", "reissued")):
        rows = []
        for x in report[key]:
            retired = e(retired_text(x))
            if x.get("discarded"):
                retired += "<br>discarded after a restart: " + ", ".join(c(d) for d in x["discarded"])
            rows.append([c(x["node"]), c(x.get("new")) or "-", e(outcome_text(x)), _stores(x), retired])
        out += [f"<h2>{title}</h2>", table(["old", "new", "result", "stores", "old retired"], rows, what=key)]
    out += _escrowed(report)
    out += ["<h2>Skipped</h2>", table(["node", "kind", "why"], [[c(x["node"]), e(x["kind"]), e(x["reason"])]
                                                              for x in report["skipped"]], what="skipped"),
            "<h2>Covered</h2>", table(["node", "kind", "covered by", "why"],
                                      [[c(x["node"]), e(x["kind"]), c(x.get("covered_by")), e(x["reason"])]
                                       for x in report["covered"]], what="covered"),
            "<h2>Manual tasks</h2>", table(["node, and the path that exposed it", "kind", "why", "status"],
                                           [[with_path(x["node"], x), e(x["kind"]), e(x["reason"]),
                                             pill(x["result"]) + "<br>" + e(outcome_text(x))]
                                            for x in report["manual"]], empty="None.", what="manual tasks")]
    if report.get("trust_removed"):
        out += ["<h2>Trust removed</h2>", table(
            ["holder", "dropped CA", "trust store", "trusts now", "verified"],
            [[c(t["holder"]), e(f"{t['dropped_name']} ({t['fingerprint']})"), e(", ".join(t["paths"])),
              "<br>".join(c(n) for n in t["trusts_now"]) or "-", e(t["verified"])] for t in report["trust_removed"]],
            what="trust stores")]
    bad = report["failed"] + report["pending"]
    out += ["<h2>Failed or not done</h2>", table(["action", "node", "result"],
                                                 [[c(x["step"]), c(x["node"]), e(outcome_text(x))] for x in bad],
                                                 empty="Nothing failed.", what="actions")]
    if report["after"]:
        out += ["<h2>After containment (finalize, rollback)</h2>",
                table(["action", "status", "at", "detail"], [[c(a["action"]), e(a["status"]), e(when(a["at"])), e(a["detail"])]
                                                            for a in report["after"]], what="actions")]
    return "\n".join(out)


def _verification(report: dict[str, Any]) -> str:
    v = report["verification"]
    last = v["last"]
    out = ["<h2>Verification</h2>", f"<p><b>{e(v['statement'])}</b></p>"]
    if last is None:
        return "".join([*out, '<p class="none">No <code>revoke verify</code> was recorded for this incident.</p>'])
    rows = [("last run", f"{e(when(last['at']))} ({len(v['runs'])} run(s) in all)"),
            ("result", "clean" if last["clean"] else "<b>NOT clean</b>" + "".join(f"<br>{e(r)}" for r in last["reasons"])),
            ("probes", e(last["probes"])),
            ("live credentials still reachable", str(len(last["survivors"]))),
            ("open manual tasks", str(len(last["open_manual"])) + "".join(f"<br>{c(n)}" for n in last["open_manual"]))]
    if last["failed_steps"]:
        rows.append(("actions not done", "<br>".join(c(x) for x in last["failed_steps"])))
    if last["records_after"]:
        rows.append(("note", f"{last['records_after']} journal record(s) were written after this verification; "
                             "run <code>revoke verify</code> again for a current result"))
    out.append('<dl class="kv">' + "".join(f"<dt>{e(k)}</dt><dd>{val}</dd>" for k, val in rows) + "</dl>")
    if last["survivors"]:
        rows_s = [[with_path(x["node"], x), e(x["kind"])] for x in last["survivors"]]
        out.append("<h3>Survivors</h3>" + table(["credential, and the path that exposed it", "kind"], rows_s, what="survivors"))
    return "".join(out)


def _chain(j: dict[str, Any]) -> str:
    rows = [("status", "intact" if j["intact"] else "<b>BROKEN</b>"), ("check", e(j["message"])), ("records", str(j["records"])),
            ("final hash", c(j["final_hash"]))]
    if not j["intact"]:
        rows += [("first bad record", e(j["broken_at"])), ("last hash that checks", c(j["verified_through"]))]
    return "<h2>Journal hash chain</h2><dl class=\"kv\">" + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"
