"""What an incident's journal means: the one reader of its records.

The journal (revoke/journal.py) is an append-only, hash-chained list of records; this module
reads it in one pass into an `IncidentState`: the declaration, the recorded plan, one `StepState`
per action id, the attestations, the verify runs, and the lineage of replacements. The executor,
verify, finalize/rollback, the plan table of a resumed run and the report all read the journal
through it, so the meaning of a record is decided here only. Nothing here writes.

Records and what they mean:
- `declared`, `plan` (no action): written together when the incident is declared; the plan's
  first record is the plan of the incident forever (a resumed incident never re-plans).
- `intent`, `outcome` (action = the plan step id): every action is journaled as `intent` before
  the provider call and `outcome` (`ok` true or false) after it. A new intent starts a new try:
  it clears the previous outcome. A rotation's intent carries `siblings`, the principal's other
  credentials before any replacement was created.
- `progress` (action = the step id): a rotation's or a new CA's steps, ids and fingerprints only:
  `created` (old -> new replacement), `stored` (one store now holds `new`), `escrowed` (the
  escrow item named in the plan holds `new`), `discarded` (a replacement deleted again),
  `retired` (the old credential disabled or revoked).
- `blocked` (action = the step id): a dependency failed, so the step was not tried in that run.
- `attest` (node = a manual task's node): a person says the task is done; the last one counts.
- `verify`: one verification's verdict (`clean`, `reasons`, survivors, open manual tasks, not-done
  steps, and `drifted`: done steps whose credential a probe found live again, which makes them not
  done until an ok outcome re-applies them).
- `run.start`, `run.end`: one executor run.
- finalize and rollback act through the same `intent`/`outcome` records, with the action ids
  `finalize:<step>`, `finalize:<step>:<store>` and `rollback:<step>`.
- `refused` (action = a finalize action id): finalize re-probed the credential right before an
  irreversible action and did not act (it was live again, or the probe could not decide).
- `finalize`: one finalize run's summary (done, not supported, failed, refused).
- `lock.takeover`, `unlock`: a stale run lock taken over, or cleared by hand (`revoke unlock`).
- `retained.deleted` (node = the credential): another incident's run deleted a credential this
  incident retained (its retired old key, a contained one, its replacement), as that incident's
  plan said it would (AWS's two-key limit): by which incident and step, and why it was kept
  (revoke/plan_retained.py).

What a clean verify vouches for lasts until the next *change* (`last_change()`): an attestation, a
retained credential deleted by another incident, or an `intent`, `progress` or `outcome` of a
plan step or a rollback (a re-run, a rollback, a crash mid-action). Finalize needs a clean verify
later than every change; its own records are not changes.

The crash-recovery contract: what a resumed run (the same `revoke run --execute` again, after a
crash or a SIGKILL at any record) does with what the journal says about each step:
- an action with an ok outcome is skipped (and counts as done for its dependants);
- an intent without outcome is re-probed first where the probe reflects the action's effect (a
  revoke that landed before the crash is not repeated); otherwise the action is repeated, and
  every action is idempotent;
- a rotation whose replacement was `created` but whose material (the secret, held in memory
  only, never journaled) died with the process deletes that replacement (`discarded`), unless
  every store already holds it, and makes a new one, so exactly one replacement survives; a
  store already written with the discarded one is rewritten from it to the new one;
- a replacement created just before the crash, before its `created` record, is found by
  comparing the principal's credentials with the `siblings` of the step's first intent (carried
  forward by every later intent, so any number of restarts keep the same baseline) and discarded;
- a rotation whose old credential is recorded `retired` is not retired again, unless a verify
  found it live again (drift): then only its containment is re-applied, no new replacement;
- a new CA recorded `created` is not created again;
- finalize and rollback skip their actions with an ok outcome and repeat the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from revoke.errors import RevokeError
from revoke.journal import Journal, Record
from revoke.journal_index import RETAINED_DELETED
from revoke.plan_model import Plan

FINALIZE = "finalize"
ROLLBACK = "rollback"


def finalize_action(step_id: str, store: str | None = None) -> str:
    """The journal's action id of a finalize of a step (or of one store the step wrote)."""
    return f"{FINALIZE}:{step_id}" + (f":{store}" if store else "")


def rollback_action(step_id: str) -> str:
    return f"{ROLLBACK}:{step_id}"


@dataclass
class StepState:
    """What the journal says about one action id (a plan step, or a finalize or rollback action)."""

    intent: bool = False  # an intent was recorded, in any try
    intent_at: str | None = None  # of the latest try
    intent_data: dict[str, Any] = field(default_factory=dict)
    tries: int = 0
    outcome: dict[str, Any] | None = None  # of the latest try
    outcome_at: str | None = None
    progress: list[Record] = field(default_factory=list)
    blocked: str | None = None
    blocked_at: str | None = None
    refused: str | None = None  # finalize did not act: the credential was live again (see `refused`)
    acted: bool = False  # an intent, progress or outcome was recorded (not only `blocked`)
    # a verify after its ok outcome found the credential live again: to be re-applied
    drifted: bool = False

    @property
    def done(self) -> bool:
        return bool(self.outcome and self.outcome.get("ok")) and not self.drifted

    @property
    def status(self) -> str:
        """done, failed, interrupted (an intent without outcome), refused, blocked or pending."""
        if self.outcome is not None:
            return "done" if self.outcome.get("ok") else "failed"
        if self.intent:
            return "interrupted"
        if self.refused:
            return "refused"
        return "blocked" if self.blocked else "pending"

    @property
    def resumed(self) -> bool:
        """The last try was interrupted: a run now resumes it."""
        return self.intent and self.outcome is None

    def events(self, event: str) -> Iterator[Record]:
        return (r for r in self.progress if r.data.get("event") == event)

    @property
    def created(self) -> bool:
        """A replacement (or a new CA) was created at least once."""
        return next(self.events("created"), None) is not None

    @property
    def retired(self) -> Record | None:
        """The progress record of the old credential's retirement, if any."""
        return next(self.events("retired"), None)

    def _replacements(self) -> tuple[Record | None, list[str]]:
        live: Record | None = None
        discarded: list[str] = []
        for r in self.progress:
            event = r.data.get("event")
            if event == "created":
                live = r
            elif event == "discarded":
                discarded.append(str(r.data.get("new")))
                if live is not None and r.data.get("new") == live.data.get("new"):
                    live = None
        return live, discarded

    @property
    def live_replacement(self) -> str | None:
        """The replacement created last and not discarded since: the one that must survive."""
        live, _ = self._replacements()
        return live.data.get("new") if live is not None else None

    @property
    def live_replacement_at(self) -> str | None:
        live, _ = self._replacements()
        return live.ts if live is not None else None

    @property
    def discarded(self) -> list[str]:
        """Replacements deleted again on the way (material lost in a restart, orphans of a crash)."""
        return self._replacements()[1]

    def stored(self, new: str | None) -> dict[str | None, Record]:
        """store id -> the progress record of its write of `new`."""
        return {r.data.get("store"): r for r in self.events("stored") if r.data.get("new") == new}


@dataclass(frozen=True)
class VerifyRun:
    """One recorded verification."""

    seq: int
    at: str
    data: dict[str, Any]

    @property
    def clean(self) -> bool:
        return bool(self.data.get("clean"))

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.at)


class IncidentState:
    """An incident's journal, read once. `steps` maps action ids to their state in the order their
    first record was written."""

    def __init__(self, incident: str, records: list[Record]) -> None:
        self.incident = incident
        self.records = records
        self._plan_record: Record | None = None
        self._plan: Plan | None = None
        self.declared: Record | None = None
        self.steps: dict[str, StepState] = {}
        self.attestations: dict[str, dict[str, Any]] = {}
        self.verify_runs: list[VerifyRun] = []
        self.retained_deleted: list[Record] = []  # `retained.deleted`: what another incident deleted
        for r in records:
            self._read(r)

    @classmethod
    def read(cls, journal: Journal) -> IncidentState:
        return cls(journal.incident, journal.records())

    def _read(self, r: Record) -> None:
        if r.action is not None:
            st = self.steps.setdefault(r.action, StepState())
            if r.type == "intent":
                st.intent, st.intent_at, st.intent_data = True, r.ts, r.data
                st.outcome, st.outcome_at = None, None
                st.tries += 1
            elif r.type == "progress":
                st.progress.append(r)
            elif r.type == "outcome":
                st.outcome, st.outcome_at = r.data, r.ts
                st.drifted = st.drifted and not r.data.get("ok")
            elif r.type == "blocked":
                st.blocked, st.blocked_at = str(r.data.get("reason", "")), r.ts
            elif r.type == "refused":
                st.refused = str(r.data.get("reason", ""))
            st.acted = st.acted or r.type in ("intent", "progress", "outcome")
        if r.type == "plan" and self._plan_record is None:
            self._plan_record = r
        elif r.type == "declared" and self.declared is None:
            self.declared = r
        elif r.type == "verify":
            self.verify_runs.append(VerifyRun(r.seq, r.ts, r.data))
            for sid in r.data.get("drifted") or []:
                if sid in self.steps and self.steps[sid].done:
                    self.steps[sid].drifted = True
        elif r.type == RETAINED_DELETED and r.node:
            self.retained_deleted.append(r)
        elif r.type == "attest" and r.node:
            self.attestations[r.node] = {"node": r.node, "by": r.data.get("by"), "at": r.ts, "note": r.data.get("note")}

    # -- the plan and its steps ---------------------------------------------------------------------
    @property
    def plan(self) -> Plan | None:
        """The recorded plan (parsed when first asked for: the executor never needs it)."""
        if self._plan is None and self._plan_record is not None:
            self._plan = Plan.from_json(self._plan_record.data)
        return self._plan

    def require_plan(self) -> Plan:
        if self.plan is None:
            raise RevokeError(f"incident {self.incident!r} has no recorded plan (was it created with --execute?)")
        return self.plan

    def step(self, action_id: str) -> StepState:
        """The state of one action id; an empty state when the journal never mentions it."""
        return self.steps.get(action_id) or StepState()

    def done(self, action_id: str) -> bool:
        return self.step(action_id).done

    def lineage(self) -> dict[str, str]:
        """old credential -> the replacement created for it last: the executor's lineage when it
        starts (one discarded in a restart stays until its successor is created)."""
        out: dict[str, str] = {}
        for st in self.steps.values():
            for r in st.events("created"):
                if r.data.get("old") and r.data.get("new"):
                    out[r.data["old"]] = r.data["new"]
        return out

    def retained_notes(self) -> list[str]:
        """One line per retained credential another incident deleted (verify and the report say it)."""
        return [f"{r.node} was deleted by incident {r.data.get('by_incident')} (its step {r.data.get('by_step')}) "
                f"while this incident retained it: {r.data.get('why')}" for r in self.retained_deleted]

    def after_containment(self) -> dict[str, StepState]:
        """Finalize and rollback actions, by action id."""
        return {aid: st for aid, st in self.steps.items() if aid.split(":", 1)[0] in (FINALIZE, ROLLBACK)}

    # -- verification ----------------------------------------------------------------------------------
    @property
    def last_verify(self) -> VerifyRun | None:
        return self.verify_runs[-1] if self.verify_runs else None

    def last_change(self) -> Record | None:
        """The latest record that may change what a verify said (see the module docstring)."""
        for r in reversed(self.records):
            if r.type in ("attest", RETAINED_DELETED) or (r.type in ("intent", "progress", "outcome")
                                      and not (r.action or "").startswith(f"{FINALIZE}:")):
                return r
        return None

    def changes_since(self, seq: int) -> list[Record]:
        """Records after `seq` that act or attest, so may change what a verify at `seq` said."""
        return [r for r in self.records
                if r.seq > seq and r.type in ("intent", "outcome", "attest", "progress", RETAINED_DELETED)]
