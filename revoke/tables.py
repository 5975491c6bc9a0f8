"""Tables for people (Rich) and for pipelines (TSV); JSON goes straight to stdout elsewhere.

Every value in a Rich table goes through `cell()` (terminal-safe, Rich markup escaped), and every
table is printed on a `safe_console()`, which shows any control or bidi character left in a
string escaped, whoever built the string. On a terminal a long id is shortened in its cell
(`revoke.idtext`) and printed whole on a line after the table, so it is never split in the middle;
off a terminal ids are printed whole and nothing is folded. Every TSV output is written by
`revoke.textsafe.tsv` (one header row, escaped fields).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from revoke.idtext import short_id
from revoke.textsafe import safe, tsv

MAX_PATH_SHOWN = 6
NO_WRAP_WIDTH = 1 << 20  # off a terminal: wide enough that Rich never folds a line


def short_path(path: list[str], show: Any = None, length: int | None = None) -> str:
    """A path on one line, its middle elided past MAX_PATH_SHOWN hops; `show` renders each id
    (default: as is). `length` is the whole path's when `path` was already shortened (it then
    holds "…", see revoke.blast); unknown, the count is left out."""
    show = show or (lambda nid: nid)
    if len(path) <= MAX_PATH_SHOWN:
        return " -> ".join(show(p) for p in path)
    more = "... more ..." if length is None and "…" in path else f"... {(length or len(path)) - 4} more ..."
    return " -> ".join([*(show(p) for p in path[:2]), more, *(show(p) for p in path[-2:])])


def cell(value: Any, *, newlines: bool = False) -> str:
    """A value for a Rich table cell or a Rich print: shown safely, its `[...]` never read as markup."""
    from rich.markup import escape

    return escape(safe(value, newlines=newlines))


@functools.cache
def _safe_console_class() -> type:
    from rich.console import Console

    class SafeConsole(Console):
        """A Rich console that shows control and bidi characters escaped in every string it renders
        (prints, table cells, titles): a value a caller forgot to pass through `cell()` still cannot
        move the cursor, clear the screen or reorder the line. Markup is the caller's business."""

        def render_str(self, text: str, **kwargs: Any) -> Any:
            return super().render_str(safe(text, newlines=True), **kwargs)

    return SafeConsole


def safe_console(*, terminal: bool, **kwargs: Any) -> Any:
    """The console every table is printed on. Off a terminal it is wide enough never to fold."""
    if not terminal and kwargs.get("width") is None:
        kwargs["width"] = NO_WRAP_WIDTH
    return _safe_console_class()(emoji=False, highlight=False, **kwargs)


class IdCells:
    """How the ids of one output are shown: shortened on a terminal (each full id then printed by
    `print_full()` on its own line, unwrapped, ready to copy), whole off a terminal."""

    def __init__(self, *, short: bool, names: dict[str, str] | None = None) -> None:
        self.short = short
        self.names = names or {}
        self.full: dict[str, str] = {}

    def text(self, node_id: str, kind: str = "", *, named: bool = True) -> str:
        """The id as shown (not yet escaped); `named` adds the node's name to a shortened id."""
        if not self.short:
            return node_id
        # shortened once shown safely, so the bound holds for what the terminal shows
        shown = short_id(safe(node_id), kind, self.names.get(node_id) if named else None)
        if shown != node_id:
            self.full.setdefault(node_id, short_id(safe(node_id), kind))
        return shown

    def __call__(self, node_id: str, kind: str = "") -> str:
        return cell(self.text(node_id, kind))

    def path(self, path: list[str], length: int | None = None) -> str:
        return cell(short_path(path, lambda nid: self.text(nid, named=False), length))

    def step(self, step_id: str) -> str:
        """A plan step id (`verb:node id`), its node shortened."""
        verb, sep, node = step_id.partition(":")
        return f"{verb}{sep}{self.text(node, named=False)}" if sep else step_id

    def stacked(self, node_id: str, kind: str, lines: list[str]) -> str:
        """On a terminal, what would need columns of its own goes under the id, one line each,
        so the table fits 80 columns and the id column stays as wide as its longest id."""
        return "\n".join([self(node_id, kind), *(f"[dim]{cell(line)}[/]" for line in lines if line)])

    def print_full(self, console: Any) -> None:
        if not self.full:
            return
        console.print("full ids of the shortened ones above:")
        for node_id, shown in self.full.items():
            # soft_wrap: the terminal wraps a long id itself, so a copy gets it whole
            console.print(f"  {cell(shown)}  {cell(node_id)}", soft_wrap=True)


def column(table: Any, name: str, ids: IdCells) -> None:
    """On a terminal a column wraps only between words (an id is one word), and Rich keeps a
    wrapping column as wide as its longest word while the table fits; off a terminal nothing wraps."""
    table.add_column(name, no_wrap=not ids.short, overflow="fold")


def _path_line(ids: IdCells, path: list[str], length: int | None = None) -> str:
    return "via " + short_path(path[:-1], lambda nid: ids.text(nid, named=False), length) if len(path) > 1 else ""


def blast_table(console: Any, data: dict[str, Any], *, ids: IdCells | None = None, limit: int = 500) -> None:
    from rich.table import Table

    ids = ids or IdCells(short=False)
    creds, holders = data["credentials"], data["holders"]
    console.print(f"Blast radius of {', '.join(ids(s) for s in data['sources'])}: "
                  f"{len(creds)} credentials to act on, {len(holders)} holders/identities exposed")
    cols: tuple[str, ...] = ("kind", "depth") if ids.short else ("kind", "provider", "depth", "path")
    if any("observed" in c for c in creds):  # blast-radius --observed: the latest use, by whom
        cols = (*cols, "observed")
    table = Table(title="Credentials", show_lines=False)
    for col in ("id", *cols):
        column(table, col, ids)
    for item in creds[:limit]:
        values = {"kind": cell(item["kind"]), "provider": cell(item["provider"]), "depth": str(item["depth"]),
                  "path": ids.path(item["path"], item.get("path_length")),
                  "observed": _observed_cell(ids, item.get("observed") or [])}
        first = (ids.stacked(item["id"], item["kind"], [_path_line(ids, item["path"], item.get("path_length"))])
                 if ids.short else ids(item["id"]))
        table.add_row(first, *(values[c] for c in cols))
    console.print(table)
    if len(creds) > limit:
        console.print(f"... {len(creds) - limit} more credentials (use --format json for all)")
    table = Table(title="Holders and identities")
    for col in ("id", "kind", "depth"):
        column(table, col, ids)
    for item in holders[:limit]:
        table.add_row(ids(item["id"], item["kind"]), cell(item["kind"]), str(item["depth"]))
    console.print(table)
    if len(holders) > limit:
        console.print(f"... {len(holders) - limit} more holders (use --format json for all)")
    ids.print_full(console)


def _observed_cell(ids: IdCells, seen: list[dict[str, Any]]) -> str:
    if not seen:
        return ""
    last = seen[0]
    return cell(f"{len(seen)}x, last {last['at'][:19]} by {ids.text(last['by'], named=False)} ({last['action']})")


def plan_table(console: Any, plan: Any, status: dict[str, str] | None = None, *, ids: IdCells | None = None) -> None:
    """The plan's steps in order; on a terminal the why, the stores, the steps it waits for and the
    path go under the node."""
    from rich.table import Table

    ids = ids or IdCells(short=False)
    sources = ", ".join(ids.text(x, named=False) for x in plan.sources)
    table = Table(title=cell(f"Plan: {plan.playbook_name} from {sources}"))
    cols = ("#", "action", "node") if ids.short else ("#", "action", "node", "via", "after", "reversible", "why")
    for col in cols:
        column(table, col, ids)
    for n, s in enumerate(plan.steps, 1):
        label = s.verb if status is None else f"{s.verb} [{status.get(s.id, '')}]"
        if getattr(s, "reversible", True) is False:
            label += " (irreversible)"
        stores = ", ".join(f"{ids.text(t['store'], named=False)} ({t['mode']})" for t in s.stores)
        escrow = (getattr(s, "escrow", None) or {}).get("where")
        why = "; ".join(x for x in (s.reason, f"stores: {stores}" if stores else "", f"escrow: {escrow}" if escrow else "",
                                    f"cannot be undone: {s.irreversible}" if getattr(s, "irreversible", "") else "") if x)
        after = ", ".join(ids.step(d) for d in s.depends_on[:3]) + (" ..." if len(s.depends_on) > 3 else "")
        if ids.short:
            node = ids.stacked(s.node, s.kind, [why, f"after {after}" if after else "", _path_line(ids, s.path)])
            table.add_row(str(n), cell(label) + (f"\n[dim]{cell(s.connector)}[/]" if s.connector else ""), node)
        else:
            rev = "-" if not s.executable else "yes" if getattr(s, "reversible", True) else "NO"
            table.add_row(str(n), cell(label), ids(s.node), cell(s.connector or "-"), cell(after), rev,
                          cell(why) + ("\n" if why else "") + ids.path(s.path))
    console.print(table)
    counts = plan.to_json()["summary"]
    console.print(cell("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))))
    ids.print_full(console)


# --- TSV, one writer (revoke.textsafe.tsv) for every command that offers --format tsv --------------
def blast_tsv(data: dict[str, Any]) -> str:
    """One row per reached node; `via` is the node before it on its path (`explain` gives the whole path)."""
    observed = any("observed" in c for c in data["credentials"])  # --observed: uses seen, latest one

    def rows(role: str, items: Iterable[dict[str, Any]]) -> Iterable[list[Any]]:
        for item in items:
            path = item.get("path") or []
            row = [role, item["id"], item["kind"], item.get("provider"), item["depth"], item.get("live"),
                   item.get("status"), path[-2] if len(path) > 1 else ""]
            if observed:
                seen = item.get("observed") or []
                row += [len(seen), seen[0]["at"] if seen else ""]
            yield row

    head = ["role", "id", "kind", "provider", "depth", "live", "status", "via"]
    return tsv([*head, "observed", "last_observed"] if observed else head,
               [*rows("credential", data["credentials"]), *rows("holder", data["holders"])])


def plan_tsv(plan: dict[str, Any]) -> str:
    """One row per step of `plan --format json`."""
    return tsv(["n", "step", "verb", "node", "kind", "provider", "connector", "reversible", "depends_on", "reason"],
               [[n, s["id"], s["verb"], s["node"], s["kind"], s["provider"], s.get("connector"), s.get("reversible"),
                 ",".join(s.get("depends_on") or []), s.get("reason")] for n, s in enumerate(plan["steps"], 1)])


def verify_tsv(result: dict[str, Any]) -> str:
    """One row per finding of `verify --format json` (probe, survivor, manual task, reason...) and
    a last `verdict` row."""
    rows: list[list[Any]] = []
    for p in result.get("probes") or []:
        state = {True: "live", False: "dead"}.get(p.get("live"), "unknown")
        rows.append(["probe", p["node"], state, p.get("problem") or p.get("signal")])
    for s in result.get("survivors") or []:
        rows.append(["survivor", s["node"], s.get("kind"), s.get("reason")])
    for m in result.get("open_manual") or []:
        rows.append(["open_manual", m.get("node"), "open", m.get("reason")])
    for a in result.get("attested") or []:
        rows.append(["attested", a.get("node"), a.get("by"), a.get("note")])
    rows += [["not_done", sid, "", ""] for sid in result.get("failed_steps") or []]
    rows += [["collection_failed", name, "", err] for name, err in (result.get("collect_failures") or {}).items()]
    rows += [["problem", "", "", msg] for msg in result.get("problems") or []]
    rows += [["reason", "", "", why] for why in result.get("reasons") or []]
    rows.append(["verdict", "", "clean" if result.get("clean") else "not clean", ""])
    return tsv(["item", "node", "state", "detail"], rows)
