"""Incident commands: plan, run, verify, attest, rollback."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from revoke.cli_context import G, check_format, console, is_terminal, open_store, out
from revoke.errors import InputError
from revoke.textsafe import safe as one  # free text (a note, a reason, a provider's error) on one line


def _plan_table(c: Any, plan: Any, status: dict[str, str] | None = None) -> None:
    from revoke.tables import IdCells, plan_table

    plan_table(c, plan, status, ids=IdCells(short=is_terminal()))
    final = [s for s in plan.executable() if not s.reversible]
    if final:
        out(f"{len(final)} action(s) cannot be undone (reversible: no); `run --execute` needs --approve:")
        by_reason: dict[str, list[str]] = {}
        for s in final:
            by_reason.setdefault(s.irreversible, []).append(s.id)
        for why, ids in by_reason.items():  # a fleet's reissues share one line
            more = f" and {len(ids) - 1} more like it" if len(ids) > 1 else ""
            out(f"  {one(ids[0])}{more}: {one(why)}")


def plan_cmd(
    ctx: typer.Context,
    playbook: Annotated[str, typer.Argument(help="Playbook file (or a shipped playbook's name).")],
    node: Annotated[list[str], typer.Option("--node", help="Compromised node id (repeatable).")],
    window: Annotated[str | None, typer.Option("--window")] = None,
    emergency: Annotated[bool, typer.Option(help="Revoke before reissuing.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, json or tsv.")] = "table",
) -> None:
    """What would be done, in order, and why."""
    from revoke.incident import optional_config
    from revoke.plan import build_plan
    from revoke.playbook import load_playbook

    check_format(fmt, ("table", "json", "tsv"))
    g = G(ctx)
    pb = load_playbook(playbook)
    store = open_store(g)
    config = optional_config(g.config)
    plan = build_plan(pb, store, store.load_compiled(), config, node, window=window, emergency=emergency)
    from revoke.collection_gaps import warn_gaps

    warn_gaps(store, config)
    if fmt == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(plan.to_json()) + b"\n")
    elif fmt == "tsv":
        from revoke.tables import plan_tsv

        sys.stdout.write(plan_tsv(plan.to_json()))
    else:
        _plan_table(console(), plan)


def _progress_cb(c: Any, plan: Any) -> tuple[Any, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=c, transient=False, disable=not c.is_terminal)
    tasks: dict[str, Any] = {}
    for s in plan.executable():
        p = s.provider or "-"
        if p not in tasks:
            tasks[p] = progress.add_task(p, total=0)
        progress.update(tasks[p], total=progress.tasks[tasks[p]].total + 1)

    def cb(step: Any, outcome: str) -> None:
        progress.update(tasks[step.provider or "-"], advance=1)

    return progress, cb


def run_cmd(
    ctx: typer.Context,
    playbook: Annotated[str, typer.Argument(help="Playbook file (or a shipped playbook's name).")],
    incident: Annotated[str, typer.Option("--incident", help="Incident id; re-running the same id resumes.")],
    node: Annotated[list[str] | None, typer.Option("--node", help="Compromised node id (repeatable).")] = None,
    execute: Annotated[bool, typer.Option("--execute", help="Act for real. Without it: a dry run.")] = False,
    approve: Annotated[bool, typer.Option(help="Approve a plan above the playbook's approval limit.")] = False,
    emergency: Annotated[bool, typer.Option(help="Revoke before reissuing.")] = False,
    finalize: Annotated[bool, typer.Option("--finalize", help="Irreversible clean-up after a clean verify + grace.")] = False,
    from_sweep: Annotated[bool, typer.Option("--from-sweep", help="Take the nodes from `revoke sweep` findings.")] = False,
    rules: Annotated[str | None, typer.Option("--rules", help="With --from-sweep: the sweep's rules file.")] = None,
    min_severity: Annotated[str, typer.Option(
        "--min-severity", help="With --from-sweep: hand over findings at or above this severity.")] = "medium",
    window: Annotated[str | None, typer.Option("--window")] = None,
    allow_partial: Annotated[bool, typer.Option("--allow-partial", help="Act despite a failed collection.")] = False,
    workers: Annotated[bool, typer.Option("--workers", help="With --execute: enqueue each ready step for `revoke "
                                          "worker` processes (postgresql:// store); this process walks the plan "
                                          "and waits.")] = False,
) -> None:
    """Run a playbook for an incident: a dry run unless --execute; resumable by --incident."""
    from revoke import incident as inc
    from revoke.journal import Journal
    from revoke.playbook import load_playbook

    g = G(ctx)
    if workers and (finalize or not execute):
        raise InputError("--workers runs the plan's steps on `revoke worker` processes: it needs --execute "
                         "(and is not for --finalize)")
    if workers:
        from revoke.errors import StoreError
        from revoke.jobs import QUEUE_NEEDED
        from revoke.store import is_postgres

        if not is_postgres(g.store):
            raise StoreError(QUEUE_NEEDED)
    pb = load_playbook(playbook)
    store = open_store(g)
    journal = Journal(store, incident)
    c = console()
    nodes = list(node or [])
    if from_sweep:
        swept = _sweep_nodes(store, rules, min_severity)
        if not swept and not nodes and journal.info() is None:
            raise InputError(f"--from-sweep: no finding at or above {min_severity} names a credential to act on")
        nodes += swept
    elif rules is not None:
        raise InputError("--rules is for --from-sweep (the sweep that picks the nodes)")
    if finalize:
        final_config = inc.require_config(g.config)
        journal.require()
        if not execute:
            out("dry run: finalize would delete what containment disabled; re-run with --execute")
            return
        res = inc.finalize(store, journal, pb, final_config)
        out(f"finalized {len(res['done'])}, nothing to finalize for {len(res['not_supported'])}, "
            f"failed {len(res['failed'])}, refused {len(res['refused'])}")
        for nid, err in res["failed"].items():
            out(f"  failed {nid}: {one(err)}")
        for nid, why in res["refused"].items():
            out(f"  refused {nid}: {one(why)}")
        raise typer.Exit(1 if res["failed"] or res["refused"] else 0)
    if not nodes and journal.info() is None:
        raise typer.BadParameter("give at least one --node (or --from-sweep)", param_hint="--node")
    config = inc.optional_config(g.config) if not execute else inc.require_config(g.config)
    plan, fresh = inc.prepare(store, journal, pb, nodes, config, window=window, emergency=emergency)
    if not execute:
        status = None if fresh else inc.step_status(journal, plan)
        _plan_table(c, plan, status)
        if fresh:  # a resumed incident shows its recorded plan, not one drawn from the graph now
            from revoke.collection_gaps import warn_gaps

            warn_gaps(store, config)
        out("dry run: nothing was changed. Re-run with --execute to act.")
        return
    assert config is not None
    if fresh:
        inc.check_complete(store, config, allow_partial=allow_partial)
        inc.check_approval(pb, plan, approve)
        inc.declare(journal, pb, plan, nodes, emergency=emergency)
    progress, cb = _progress_cb(c, plan)
    with progress:
        stats = inc.execute(store, journal, pb, plan, config, emergency=emergency, progress=cb, workers=workers,
                            jobs_progress=_jobs_progress(c) if workers else None)
    out(f"incident {incident}: {stats.done} actions done, {stats.skipped_done} already done, "
        f"{len(stats.failed)} failed, {len(stats.blocked)} blocked, {stats.retries} retries, {stats.seconds:.2f}s"
        + (f"; {len(stats.waiting)} waiting for attestations" if stats.waiting else ""))
    for sid, err in stats.failed.items():
        out(f"  FAILED {sid}: {one(err)}")
    for sid, why in stats.blocked.items():
        out(f"  BLOCKED {sid}: {one(why)}")
    for sid, why in stats.waiting.items():
        out(f"  WAITING {sid}: {one(why)}")
    from revoke.incident_state import IncidentState

    attested = IncidentState.read(journal).attestations
    manual = [s for s in plan.manual() if s.node not in attested]
    if manual:
        out(f"{len(manual)} manual task(s) to do and attest (`revoke attest --incident {incident} NODE --note ...`):")
        for s in manual:
            out(f"  {s.node}: {one(s.reason)}")
    if stats.waiting and not stats.failed and not stats.blocked:
        out("the incident stays open: attest the manual task(s) the waiting steps name, then re-run the same "
            "command to resume")
        raise typer.Exit(1)
    if not stats.ok:
        out("the incident stays open; fix the cause and re-run the same command to resume")
        raise typer.Exit(1)


def _jobs_progress(c: Any) -> Any:
    def shown(counts: dict[str, int]) -> None:
        c.print("step jobs: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))

    return shown


def _sweep_nodes(store: Any, rules: str | None, min_severity: str) -> list[str]:
    from revoke.sweep import parse_severity, targets_from_store

    return list(targets_from_store(store, parse_severity(min_severity, where="--min-severity"), rules=rules))


def verify_cmd(
    ctx: typer.Context,
    incident: Annotated[str, typer.Option("--incident")],
    fmt: Annotated[str, typer.Option("--format", help="table, json or tsv.")] = "table",
    no_collect: Annotated[bool, typer.Option("--no-collect", help="Skip re-collection (probes only).")] = False,
    full: Annotated[bool, typer.Option("--full", help="Re-collect every connector, even a file source that did "
                                       "not change since its snapshot.")] = False,
    workers: Annotated[bool, typer.Option("--workers", help="Re-collect through `revoke worker` processes (one "
                                          "job per connector, account or project; postgresql:// store).")] = False,
) -> None:
    """Probe every acted-on credential and walk the re-collected graph; exit 1 if anything is live."""
    from revoke.incident import require_config
    from revoke.jobs import QUEUE_NEEDED
    from revoke.journal import Journal
    from revoke.store import is_postgres
    from revoke.verify import verify

    check_format(fmt, ("table", "json", "tsv"))
    if workers and no_collect:
        raise InputError("--workers re-collects through workers; --no-collect collects nothing: pass one of them")
    g = G(ctx)
    if workers and not is_postgres(g.store):
        raise InputError(QUEUE_NEEDED)
    store = open_store(g)
    config = require_config(g.config)
    result = verify(Journal(store, incident), store, config, recollect=not no_collect, full=full, workers=workers,
                    progress=_collect_progress if workers else None)
    if fmt == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(result.to_json()) + b"\n")
    elif fmt == "tsv":
        from revoke.tables import verify_tsv

        sys.stdout.write(verify_tsv(result.to_json()))
    else:
        _verify_text(result)
    if not result.clean:
        raise typer.Exit(1)


def _collect_progress(counts: dict[str, int]) -> None:
    # on stderr: stdout may be the JSON or TSV result
    sys.stderr.write("collect jobs: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + "\n")


def _verify_text(r: Any) -> None:
    out(f"journal: {one(r.chain_message)}" + ("" if r.chain_ok else "  <-- TAMPERED"))
    dead = sum(1 for p in r.probes if p.live is False)
    out(f"checks: {dead}/{len(r.probes)} contained; live credentials still reachable: {len(r.survivors)}")
    for a in r.attested:
        out(f"  attested, not probed: {a['node']} by {one(a['by'])} at {a['at']}: {one(a['note'])}")
    for u in r.after_containment:  # evidence: someone still tries (or uses) a contained credential
        out(f"  {u['kind']} after containment: {one(u['node'])} at {u['at']}: {one(u['action'])} {one(u['target'])}")
    for note in r.notes:
        out(f"  note: {one(note)}")
    if r.clean:
        out("CLEAN")
        return
    out(f"NOT CLEAN, {len(r.reasons)} reason(s):")
    for reason in r.reasons:
        out(f"  - {one(reason)}")


def attest_cmd(
    ctx: typer.Context,
    node: Annotated[list[str], typer.Argument(help="The manual task's node (one or more: a fleet's deliveries).")],
    incident: Annotated[str, typer.Option("--incident")],
    note: Annotated[str, typer.Option("--note", help="What was done.")],
) -> None:
    """Record that manual tasks were done (who, when, note)."""
    from revoke.incident import attest_many
    from revoke.journal import Journal

    for rec in attest_many(Journal(open_store(G(ctx)), incident), node, note):
        out(f"attested {rec['node']} by {rec['by']} at {rec['at']}")


def rollback_cmd(
    ctx: typer.Context,
    incident: Annotated[str, typer.Option("--incident")],
    execute: Annotated[bool, typer.Option("--execute")] = False,
) -> None:
    """Undo containment (re-enable what was disabled) for a false alarm, as far as providers allow."""
    from revoke.incident import require_config, rollback
    from revoke.journal import Journal

    g = G(ctx)
    store = open_store(g)
    journal = Journal(store, incident)
    journal.require()
    res = rollback(store, journal, require_config(g.config), execute=execute)
    if not execute:
        # both lists before anything runs: a false alarm's rollback is partial when some step
        # destroyed what it replaced
        out(f"dry run: can undo {len(res['planned'])} action(s):")
        for nid in res["planned"]:
            out(f"  {nid}")
        out(f"cannot undo {len(res['cannot_undo'])} action(s):")
        for nid, why in res["cannot_undo"].items():
            out(f"  {nid}: {one(why)}")
        out("nothing was changed. Re-run with --execute to undo what can be undone.")
        return
    out(f"undone: {len(res['undone'])}")
    for nid, err in res["cannot_undo"].items():
        out(f"  cannot undo {nid}: {one(err)}")
    if res["cannot_undo"]:
        raise typer.Exit(1)


def unlock_cmd(
    ctx: typer.Context,
    incident: Annotated[str, typer.Option("--incident")],
    force: Annotated[bool, typer.Option("--force", help="Required: clear the lock whoever holds it.")] = False,
) -> None:
    """Clear an incident's run lock by hand (journaled: who cleared it, whose lock it was)."""
    from datetime import UTC, datetime

    from revoke.errors import InputError
    from revoke.journal import Journal
    from revoke.run_lock import read_holder

    store = open_store(G(ctx))
    journal = Journal(store, incident)
    journal.require()
    if not force:
        holder = read_holder(store, incident)
        held = f"held by {holder.describe(datetime.now(UTC))}" if holder else "not locked"
        raise InputError(f"unlock needs --force (incident {incident!r} is {held}): clearing the lock of a run "
                         "that is still acting lets two runs act at once")
    holder = journal.force_unlock()
    if holder is None:
        out(f"incident {incident} is not locked; nothing to clear")
        return
    out(f"unlocked incident {incident}: cleared the lock of {holder.describe(datetime.now(UTC))} (journaled)")


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_cmd)
    app.command("run")(run_cmd)
    app.command("verify")(verify_cmd)
    app.command("attest")(attest_cmd)
    app.command("rollback")(rollback_cmd)
    app.command("unlock")(unlock_cmd)
