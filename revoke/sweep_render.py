"""Sweep findings for people and machines: a rich table, TSV, JSON, Markdown, and one self-contained
HTML file (inline CSS, no script, no network). Every value from the graph is escaped for where it
goes: `revoke.tables.cell` for the table, `revoke.textsafe` for TSV, Markdown and HTML."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from revoke.sweep import Finding, RuleConfig, builtin_rules, severity_counts
from revoke.tables import IdCells, cell, short_path
from revoke.textsafe import html_text, md_code, md_text, tsv

COLOURS = {"critical": "#7f1d1d", "high": "#b91c1c", "medium": "#b45309", "low": "#1d4ed8", "info": "#4b5563"}


def to_json(findings: list[Finding], config: dict[str, RuleConfig], *, generated: datetime | None = None,
            fail_on: str | None = None) -> dict[str, Any]:
    from revoke.sweep_config import config_to_dict

    return {
        "generated": (generated or datetime.now(UTC)).isoformat(),
        "summary": severity_counts(findings),
        "fail_on": fail_on,
        "rules": config_to_dict(config),
        "findings": [f.to_dict() for f in findings],
    }


def table(console: Any, findings: list[Finding], *, ids: IdCells | None = None, limit: int = 1000) -> None:
    from rich.table import Table

    from revoke.tables import column

    ids = ids or IdCells(short=False)
    counts = severity_counts(findings)
    console.print("Sweep: " + (", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"))
    if not findings:
        return
    t = Table(show_lines=False)
    # on a terminal the reason goes under the node, so 80 columns hold whole ids
    cols = ("severity", "rule", "node") if ids.short else ("severity", "rule", "node", "reason")
    for col in cols:
        column(t, col, ids)
    for f in findings[:limit]:
        severity = f"[{COLOURS[f.severity.value]}]{f.severity.value}[/]"
        if ids.short:
            t.add_row(severity, cell(f.rule), ids.stacked(f.node, "", [f.reason]))
        else:
            t.add_row(severity, cell(f.rule), ids(f.node), cell(f.reason))
    console.print(t)
    if len(findings) > limit:
        console.print(f"... {len(findings) - limit} more findings (use --format json for all)")
    ids.print_full(console)


def tsv_text(findings: list[Finding]) -> str:
    return tsv(["severity", "rule", "node", "reason"], [[f.severity.value, f.rule, f.node, f.reason] for f in findings])


def _evidence_text(f: Finding, *, limit: int = 6) -> str:
    """The evidence as `key=value` pairs, long lists shortened (the JSON output has everything)."""
    parts = []
    for key, value in f.evidence.items():
        if isinstance(value, list):
            shown = [json.dumps(v, default=str) if isinstance(v, dict) else str(v) for v in value[:limit]]
            more = f", +{len(value) - limit} more" if len(value) > limit else ""
            parts.append(f"{key}=[{', '.join(shown)}{more}]")
        elif isinstance(value, dict):
            parts.append(f"{key}={json.dumps(value, default=str, sort_keys=True)}")
        else:
            parts.append(f"{key}={value}")
    if f.path:
        parts.append("path=" + short_path(f.path))
    return "; ".join(parts)


def settings_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}=[{', '.join(map(str, v))}]" if isinstance(v, list) else f"{k}={v}" for k, v in params.items())


def markdown(findings: list[Finding], config: dict[str, RuleConfig], *, generated: datetime | None = None) -> str:
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    counts = severity_counts(findings)
    lines = [f"# Credential hygiene sweep ({when})", "",
             "| severity | findings |", "|---|---|", *[f"| {s} | {n} |" for s, n in counts.items()], ""]
    if not findings:
        lines += ["No findings.", ""]
    for sev in counts:
        group = [f for f in findings if f.severity.value == sev]
        if not group:
            continue
        lines += [f"## {sev.capitalize()} ({len(group)})", "", "| rule | node | reason | evidence |", "|---|---|---|---|"]
        lines += [f"| {md_text(f.rule)} | {md_code(f.node)} | {md_text(f.reason)} | {md_text(_evidence_text(f))} |"
                  for f in group]
        lines.append("")
    lines += ["## Rules", "", "| rule | enabled | severity | settings | checks |", "|---|---|---|---|---|"]
    rules = builtin_rules()
    for rid, cfg in config.items():
        settings = settings_text(cfg.params)
        lines.append(f"| {md_text(rid)} | {'yes' if cfg.enabled else 'no'} | {cfg.severity.value} | {md_text(settings)} | "
                     f"{md_text(rules[rid].summary)} |")
    return "\n".join(lines) + "\n"


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#111827;background:#fff}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}
.sub{color:#6b7280;margin-bottom:1.5rem}
.cards{display:flex;gap:.75rem;flex-wrap:wrap}
.card{border-radius:8px;padding:.6rem 1rem;color:#fff;min-width:7rem}
.card b{display:block;font-size:1.6rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #e5e7eb;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.sev{display:inline-block;border-radius:4px;padding:0 .4rem;color:#fff;font-size:12px}
.ev{color:#374151;font-size:12px;word-break:break-word}
"""


def html_report(findings: list[Finding], config: dict[str, RuleConfig], *, generated: datetime | None = None) -> str:
    esc = html_text
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    counts = severity_counts(findings)
    cards = "".join(f'<div class="card" style="background:{COLOURS[s]}"><b>{n}</b>{esc(s)}</div>' for s, n in counts.items())
    body = [f"<h1>Credential hygiene sweep</h1><div class=sub>{esc(when)} &middot; {len(findings)} findings</div>",
            f'<div class="cards">{cards}</div>']
    if not findings:
        body.append("<p>No findings.</p>")
    for sev in counts:
        group = [f for f in findings if f.severity.value == sev]
        if not group:
            continue
        rows = "".join(
            f"<tr><td>{esc(f.rule)}</td><td><code>{esc(f.node)}</code></td><td>{esc(f.reason)}</td>"
            f'<td class="ev">{esc(_evidence_text(f))}</td></tr>'
            for f in group
        )
        body.append(f'<h2><span class="sev" style="background:{COLOURS[sev]}">{esc(sev)}</span> {len(group)} findings</h2>'
                    f"<table><tr><th>rule</th><th>node</th><th>reason</th><th>evidence</th></tr>{rows}</table>")
    rules = builtin_rules()
    rule_rows = "".join(
        f"<tr><td>{esc(rid)}</td><td>{'yes' if c.enabled else 'no'}</td><td>{esc(c.severity.value)}</td>"
        f"<td>{esc(settings_text(c.params))}</td><td>{esc(rules[rid].summary)}</td></tr>"
        for rid, c in config.items()
    )
    body.append("<h2>Rules</h2><table><tr><th>rule</th><th>enabled</th><th>severity</th><th>settings</th><th>checks</th></tr>"
                f"{rule_rows}</table>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>revoke sweep {esc(when)}</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")
