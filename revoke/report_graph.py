"""The blast-radius picture: a layered layout computed here (no JavaScript, no layout library) and
drawn as inline SVG.

Columns are depths (the compromised sources on the left), edges are the explanation paths of the
recorded plan (a tree: every edge joins adjacent columns). A child is placed as close as it can to
the mean height of its parents, then pushed down to avoid overlaps, which keeps a tree's branches
together. Nodes of the same kind and outcome at the same depth are folded into one box with a
count once there are more than a handful, so 200 reissued certificates are one readable box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from revoke.idtext import short_label
from revoke.report_md import VERB_LABELS
from revoke.textsafe import html_text

BOX_W, BOX_H, GAP_Y, COL_GAP, MARGIN, HEAD = 172, 40, 10, 34, 14, 26
GROUP_AT = 5          # a bucket with more members than this is drawn as one box
MAX_BOXES = 120       # past this, fold every bucket of 2 or more as well
TIMES = "\u00d7"  # the multiplication sign of "200 x certificate"

# fill, stroke, text colour, dashed, stroke width
STYLES: dict[str, tuple[str, str, str, bool, float]] = {
    "source": ("#7f1d1d", "#450a0a", "#ffffff", False, 2.0),
    "done": ("#dcfce7", "#15803d", "#14532d", False, 1.6),
    "covered": ("#ecfdf5", "#10b981", "#065f46", True, 1.4),
    "manual-attested": ("#dbeafe", "#1d4ed8", "#1e3a8a", False, 1.6),
    "manual-open": ("#ffedd5", "#ea580c", "#7c2d12", False, 2.6),
    "skipped": ("#f3f4f6", "#9ca3af", "#374151", True, 1.2),
    "failed": ("#fee2e2", "#dc2626", "#7f1d1d", False, 2.8),
    "pending": ("#fef9c3", "#ca8a04", "#713f12", True, 1.8),
    "holder": ("#ffffff", "#64748b", "#1e293b", False, 1.2),
    "holder-done": ("#ffffff", "#15803d", "#14532d", False, 1.8),
    "holder-failed": ("#ffffff", "#dc2626", "#7f1d1d", False, 2.4),
}
LEGEND = [
    ("source", "compromised source"), ("done", "revoked / rotated / reissued"), ("covered", "covered by another action"),
    ("manual-attested", "manual, attested (not probed)"), ("manual-open", "manual, OPEN"), ("skipped", "skipped"),
    ("failed", "failed or blocked"), ("pending", "not done"), ("holder", "holder / identity (exposed)"),
]
SHORT = {"covered": "covered", "manual-attested": "attested", "manual-open": "OPEN manual", "skipped": "skipped",
         "failed": "FAILED", "pending": "not done"}


@dataclass
class Box:
    key: str
    depth: int
    role: str
    kind: str
    style: str
    sub: str
    members: list[str] = field(default_factory=list)
    x: float = 0.0
    y: float = 0.0

    @property
    def grouped(self) -> bool:
        return len(self.members) > 1

    @property
    def label(self) -> str:
        return f"{len(self.members)} {TIMES} {self.kind}" if self.grouped else short_label(self.members[0], self.kind)


def _style_and_sub(entry: dict[str, Any], role: str) -> tuple[str, str]:
    result = entry.get("result")
    kind = entry["kind"]
    if role == "holder":
        if result is None:
            return "holder", f"{kind} · exposed"
        if result == "done":
            return "holder-done", f"{kind} · {_verb_label(entry)}"
        if result in ("failed", "pending"):
            return "holder-failed", f"{kind} · {SHORT[result]}"
        # a manual re-provisioning task on a store, or a skipped holder action: the task's colour
    if result == "done":
        return "done", f"{kind} · {_verb_label(entry)}"
    if result == "failed" and "failed" not in entry.get("statuses", []):
        return "failed", f"{kind} · BLOCKED"
    result = result or "pending"
    return result, f"{kind} · {SHORT.get(result, result)}"


def _verb_label(entry: dict[str, Any]) -> str:
    verbs = [v for v in entry.get("verbs", []) if v in VERB_LABELS]
    if "create_ca" in verbs and "retire_ca" in verbs:
        return "reissued, retired"
    return VERB_LABELS[verbs[0]] if verbs else "done"


def build_boxes(radius: dict[str, Any]) -> tuple[list[Box], list[tuple[str, str, int]]]:
    """Boxes (grouped) and box-to-box edges with the number of node edges each one stands for."""
    entries: list[tuple[dict[str, Any], str, int]] = [
        ({"id": s["id"], "kind": s["kind"]}, "source", 0) for s in radius["sources"]]
    entries += [(c, "credential", c["depth"]) for c in radius["credentials"]]
    entries += [(h, "holder", h["depth"]) for h in radius["holders"]]
    buckets: dict[tuple[Any, ...], list[tuple[dict[str, Any], str, int]]] = {}
    for entry, role, depth in entries:
        style, sub = ("source", f"{entry['kind']} · compromised") if role == "source" else _style_and_sub(entry, role)
        buckets.setdefault((depth, role, entry["kind"], style, sub), []).append((entry, role, depth))
    for limit in (GROUP_AT, 1):
        boxes, box_of = _fold(buckets, limit)
        if len(boxes) <= MAX_BOXES:
            break
    counts: dict[tuple[str, str], int] = {}
    for a, b in radius["edges"]:
        if a in box_of and b in box_of and box_of[a] != box_of[b]:
            key = (box_of[a], box_of[b])
            counts[key] = counts.get(key, 0) + 1
    return boxes, [(a, b, n) for (a, b), n in sorted(counts.items())]


def _fold(buckets: dict[tuple[Any, ...], list[Any]], limit: int) -> tuple[list[Box], dict[str, str]]:
    boxes: list[Box] = []
    box_of: dict[str, str] = {}
    for (depth, role, kind, style, sub), members in buckets.items():
        ids = [m[0]["id"] for m in members]
        if role != "source" and len(ids) > limit:
            key = f"group:{depth}:{role}:{kind}:{style}:{sub}"
            boxes.append(Box(key, depth, role, kind, style, sub, ids))
            box_of.update(dict.fromkeys(ids, key))
        else:
            for nid in ids:
                boxes.append(Box(nid, depth, role, kind, style, sub, [nid]))
                box_of[nid] = nid
    return boxes, box_of


def layout(boxes: list[Box], edges: list[tuple[str, str, int]]) -> tuple[int, int]:
    """Place boxes in depth columns; returns (width, height)."""
    parents: dict[str, list[str]] = {}
    for parent, child, _ in edges:
        parents.setdefault(child, []).append(parent)
    by_key = {b.key: b for b in boxes}
    columns: dict[int, list[Box]] = {}
    for b in boxes:
        columns.setdefault(b.depth, []).append(b)
    role_order = {"source": 0, "credential": 1, "holder": 2}
    height = 0.0
    for depth in sorted(columns):
        col = columns[depth]
        x = MARGIN + depth * (BOX_W + COL_GAP)

        def want(b: Box) -> float:
            ps = [by_key[p] for p in parents.get(b.key, []) if p in by_key and by_key[p].depth < b.depth]
            return sum(p.y for p in ps) / len(ps) if ps else 0.0

        wanted = {b.key: want(b) for b in col}
        col.sort(key=lambda b: (wanted[b.key], role_order[b.role], b.kind, b.style, b.label))
        # siblings (same wanted height) form a run centred on their parent, pushed down past the run above
        runs: list[list[Box]] = []
        for b in col:
            if runs and wanted[runs[-1][0].key] == wanted[b.key]:
                runs[-1].append(b)
            else:
                runs.append([b])
        bottom: float = MARGIN + HEAD - GAP_Y
        for run in runs:
            span = len(run) * (BOX_H + GAP_Y) - GAP_Y
            top = max(wanted[run[0].key] - (span - BOX_H) / 2, bottom + GAP_Y)
            for i, b in enumerate(run):
                b.x, b.y = x, top + i * (BOX_H + GAP_Y)
            bottom = top + span
        height = max(height, bottom)
    width = MARGIN * 2 + (max(columns) + 1 if columns else 1) * (BOX_W + COL_GAP) - COL_GAP
    return int(width), int(height + MARGIN)


def _esc(text: Any) -> str:
    return html_text(text)


def render_svg(radius: dict[str, Any]) -> str:
    """The picture; it shrinks to fit the page down to 80% of its size, then scrolls sideways (a deep
    radius), so labels stay readable."""
    boxes, edges = build_boxes(radius)
    width, height = layout(boxes, edges)
    by_key = {b.key: b for b in boxes}
    out = [f'<svg class="radius" role="img" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" style="max-width:{width}px;min-width:{int(width * 0.8)}px" '
           'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif">',
           "<title>Blast radius: compromised sources on the left, each column one hop further</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
           'markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
           '<path d="M0,0 L10,5 L0,10 z" fill="#94a3b8"/></marker></defs>']
    for depth in sorted({b.depth for b in boxes}):
        x = MARGIN + depth * (BOX_W + COL_GAP) + BOX_W / 2
        label = "compromised" if depth == 0 else f"{depth} hop{'s' if depth > 1 else ''} away"
        out.append(f'<text x="{x:.0f}" y="{MARGIN + 12}" text-anchor="middle" font-size="12" fill="#64748b" '
                   f'font-weight="600">{label}</text>')
    for src, dst, n in edges:
        pa, pb = by_key[src], by_key[dst]
        x1, y1 = pa.x + BOX_W, pa.y + BOX_H / 2
        x2, y2 = pb.x - 2, pb.y + BOX_H / 2
        mid = (x1 + x2) / 2
        # a folded edge is a little thicker; the count itself is on the box
        width_px = 1.2 if n == 1 else min(1.2 + n / 50, 3.2)
        out.append(f'<path d="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" fill="none" '
                   f'stroke="#94a3b8" stroke-width="{width_px:.1f}" marker-end="url(#arrow)"><title>{n} path(s)</title></path>')
    for b in boxes:
        out.append(_box(b))
    out.append("</svg>")
    return "\n".join(out)


def _fit(text: str, size: float) -> str:
    """Squeeze a label that would overflow its box (no font metrics without a browser: a generous
    per-character estimate, upper case and digits being the widest)."""
    est = sum(0.7 if ch.isupper() or ch.isdigit() else 0.36 if ch in ".:/-_ il" else 0.58 for ch in text) * size
    room = BOX_W - 14
    return f' textLength="{room}" lengthAdjust="spacingAndGlyphs"' if est > room else ""


def _box(b: Box) -> str:
    fill, stroke, ink, dashed, sw = STYLES[b.style]
    rx = 20 if b.role == "holder" else 6
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    shown = b.members[:25]
    title = "\n".join(shown) + (f"\n… and {len(b.members) - len(shown)} more" if len(b.members) > len(shown) else "")
    parts = [f'<g class="node {b.style}" data-id="{_esc(b.key)}"><title>{_esc(title)}</title>']
    if b.grouped:  # a stack: two offset outlines behind the box say "many"
        for off in (6, 3):
            parts.append(f'<rect x="{b.x + off:.1f}" y="{b.y - off:.1f}" width="{BOX_W}" height="{BOX_H}" rx="{rx}" '
                         f'fill="{fill}" stroke="{stroke}" stroke-width="1"{dash}/>')
    parts.append(f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="{rx}" fill="{fill}" '
                 f'stroke="{stroke}" stroke-width="{sw}"{dash}/>')
    cx = b.x + BOX_W / 2
    weight = "700" if b.grouped or b.role == "source" else "600"
    parts.append(f'<text x="{cx:.1f}" y="{b.y + 17:.1f}" text-anchor="middle" font-size="12.5" font-weight="{weight}" '
                 f'fill="{ink}"{_fit(b.label, 12.5)}>{_esc(b.label)}</text>')
    parts.append(f'<text x="{cx:.1f}" y="{b.y + 32:.1f}" text-anchor="middle" font-size="11" fill="{ink}" '
                 f'opacity="0.85"{_fit(b.sub, 11)}>{_esc(b.sub)}</text>')
    parts.append("</g>")
    return "".join(parts)
