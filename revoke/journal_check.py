"""How far an incident's journal can be trusted, checked from the raw stored rows.

Three layers, each saying plainly what it does and does not prove:
1. The hash chain: every record's hash is recomputed from its stored text and the one before it.
   Catches an edit, a deletion or a reordering in the middle, but not a truncation (a prefix of a
   chain is a chain) nor a rewrite with recomputed hashes by someone with write access to the store.
2. The declaration: the first record holds everything the incidents row holds (sources, playbook
   file, name and digest, options, creation time); the row must match it. Journals written before
   the declaration moved into the chain read as "legacy: declaration outside the chain".
3. The head signatures (revoke/journal_key.py): with the journal key configured, every signed
   record's Ed25519 signature is checked; a rewrite with recomputed hashes breaks them, and a
   chain declared signed whose verify, attestation or finalize records lack one was stripped.
   A truncation shows against a head kept outside the store (`Journal.published_heads`, from the
   `journal.head` log events: `report --head SEQ:HASH`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from revoke import journal_key

if TYPE_CHECKING:
    from revoke.journal import Journal

UNSIGNED = "unsigned chain: detects edits, not a rewrite by someone with write access to the store"
LEGACY = "legacy: declaration outside the chain"
# the incidents row's columns and the declaration's fields that must equal them
ROW_FIELDS = (("created_at", "created_at"), ("playbook", "playbook_file"), ("playbook_name", "playbook"),
              ("playbook_digest", "playbook_digest"), ("sources", "sources"), ("options", "options"))


@dataclass
class Integrity:
    records: int = 0
    problems: list[str] = field(default_factory=list)  # each breaks the journal's evidence
    verified_through: str = "0" * 64  # the last hash the chain checks up to
    declaration: str = LEGACY
    key: str | None = None  # the fingerprint the declaration names
    signatures: int = 0  # signatures verified with the configured key
    last_signed: int | None = None
    notes: list[str] = field(default_factory=list)  # what the checks could not prove

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def protection(self) -> str:
        """One sentence on what the checks prove."""
        if self.signatures:
            covered = "" if self.last_signed == self.records else (
                f"; records {(self.last_signed or 0) + 1}..{self.records} are not signed yet")
            return (f"signed chain (key {self.key}): {self.signatures} head signature(s) verified, "
                    f"the last at record {self.last_signed}{covered}")
        return UNSIGNED if self.key is None else (f"signed chain (key {self.key}), signatures not checked "
                                                  "(configure that journal key to check them)")

    @property
    def message(self) -> str:
        head = self.problems[0] if self.problems else f"{self.records} records, chain intact"
        return "; ".join([head, self.declaration, self.protection, *self.notes])


def check(journal: Journal) -> Integrity:
    from revoke.journal import GENESIS, digest

    res = Integrity()
    rows = journal.raw_rows()
    res.records = len(rows)
    prev = GENESIS
    for i, r in enumerate(rows, start=1):
        problem = None
        if r[0] != i:
            problem = f"record {i} is missing (found seq {r[0]})"
        elif r[6] != prev:
            problem = f"record {r[0]} does not follow record {r[0] - 1} (chain broken)"
        elif digest(journal.incident, *r[:7]) != r[7]:
            problem = f"record {r[0]} was modified after it was written"
        if problem:
            res.problems.append(problem)
            break
        prev = r[7]
    res.verified_through = prev
    _declaration(journal, rows, res)
    _signatures(journal, rows, res)
    _published(journal, rows, res)
    return res


def _data(row: tuple[Any, ...]) -> dict[str, Any]:
    try:
        data = json.loads(row[5])
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _declaration(journal: Journal, rows: list[tuple[Any, ...]], res: Integrity) -> None:
    first = _data(rows[0]) if rows and rows[0][0] == 1 and rows[0][2] == "declared" else {}
    if "options" not in first:
        return  # legacy
    res.declaration = "declaration in the chain"
    res.key = first.get("journal_key")
    info = journal.info() or {}
    differ = [column for column, name in ROW_FIELDS if info.get(column) != first.get(name)]
    if differ:
        res.problems.append(f"the incidents row differs from the declaration in the chain (record 1): "
                            f"{', '.join(differ)} (the row was edited)")


def _signatures(journal: Journal, rows: list[tuple[Any, ...]], res: Integrity) -> None:
    from revoke.journal import digest

    key = journal_key.active()
    declared_key = res.key
    if declared_key is not None and key is not None and key.fingerprint != declared_key:
        res.notes.append(f"the configured journal key is {key.fingerprint}, not the chain's: signatures not checked")
        key = None
    for r in rows:
        if r[2] not in journal_key.SIGNED_TYPES and journal_key.FIELD not in r[5]:
            continue  # most records: nothing to parse
        data = _data(r)
        sig = data.pop(journal_key.FIELD, None)
        if sig is None:
            if res.key is not None and r[2] in journal_key.SIGNED_TYPES:
                res.problems.append(f"record {r[0]} ({r[2]}) carries no signature although the chain is signed "
                                    f"(key {res.key}): signatures were stripped")
            continue
        if key is None or not isinstance(sig, dict) or sig.get("key") != key.fingerprint:
            continue
        unsigned = json.dumps(data, sort_keys=True, default=str)
        ok = (sig.get("seq") == r[0] and sig.get("hash") == digest(journal.incident, r[0], r[1], r[2], r[3], r[4],
                                                                    unsigned, r[6])
              and key.check(journal.incident, r[0], str(sig.get("hash")), str(sig.get("value"))))
        if not ok:
            res.problems.append(f"record {r[0]} ({r[2]}): the head signature does not match; the journal was "
                                "rewritten up to there")
            return
        res.key = res.key or key.fingerprint
        res.signatures += 1
        res.last_signed = r[0]
    if key is not None and not res.signatures:
        # a chain declared before the key was configured reads the same as one rewritten without it
        res.notes.append("a journal key is configured but this chain carries no signature of it (declared before "
                         "the key was configured, or rewritten without it)")


def _published(journal: Journal, rows: list[tuple[Any, ...]], res: Integrity) -> None:
    for seq, hash_ in journal.published_heads:
        if seq < 1 or seq > len(rows):
            res.problems.append(f"truncated: the published head is record {seq} ({hash_[:16]}...) but the journal "
                                f"ends at record {len(rows)}")
        elif rows[seq - 1][7] != hash_:
            res.problems.append(f"record {seq} differs from the published head ({hash_[:16]}...): the journal was "
                                "rewritten")
        else:
            res.notes.append(f"holds the published head at record {seq}")
