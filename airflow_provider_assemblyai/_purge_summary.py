"""
The summary of a purge: what happened to each transcript (:class:`Outcome`), counted exactly.

:class:`PurgeSummary` is what PurgeTranscriptsOperator pushes to XCom (:meth:`PurgeSummary.to_dict`)
and what the audit's ``end`` line carries (:meth:`PurgeSummary.counts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

#: How many ids ``deleted_ids`` / ``would_delete_ids`` / ``failed_ids`` keep (counts stay exact).
MAX_REPORTED_IDS = 10_000


@dataclass
class PurgeSummary:
    """
    Exact counts of a purge, plus bounded id lists; :meth:`to_dict` is what goes to XCom.

    ``matched`` = deleted + would_delete + already_deleted + not_found + failed, always: a transcript
    is counted in ``matched`` when its outcome is known, in exactly one bucket. ``recovered`` counts
    something else: deletions an earlier, killed attempt made but could not record, found by this run's
    GET of that attempt's intents and recorded in the audit as that attempt's; they are not in
    ``matched`` (a scan that lists them again counts them in ``already_deleted``, as before).

    :param dry_run: whether nothing was (to be) deleted.
    """

    dry_run: bool
    scanned: int = 0
    matched: int = 0
    deleted: int = 0
    would_delete: int = 0
    already_deleted: int = 0
    not_found: int = 0
    failed: int = 0
    limit_reached: bool = False
    scan_complete: bool = False
    deleted_ids: list[str] = field(default_factory=list)
    would_delete_ids: list[str] = field(default_factory=list)
    failed_ids: dict[str, str] = field(default_factory=dict)
    ids_truncated: bool = False
    recovered: int = 0
    recovered_ids: list[str] = field(default_factory=list)
    audit_path: str | None = None
    audit_anchor: dict[str, str] | None = None
    error: str | None = None

    def record(self, transcript_id: str, outcome: Outcome, reason: str | None = None) -> None:
        """
        Count one transcript's final outcome (SKIPPED is not a match and is not counted here).

        :param transcript_id: the transcript.
        :param outcome: what happened to it.
        :param reason: why it failed (for FAILED).
        """
        if outcome is Outcome.SKIPPED:
            return
        self.matched += 1
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)
        if outcome is Outcome.DELETED:
            self._keep(self.deleted_ids, transcript_id)
        elif outcome is Outcome.WOULD_DELETE:
            self._keep(self.would_delete_ids, transcript_id)
        elif outcome is Outcome.FAILED:
            if len(self.failed_ids) < MAX_REPORTED_IDS:
                self.failed_ids[transcript_id] = reason or "unknown error"
            else:
                self.ids_truncated = True

    def _keep(self, ids: list[str], transcript_id: str) -> None:
        if len(ids) < MAX_REPORTED_IDS:
            ids.append(transcript_id)
        else:
            self.ids_truncated = True

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable summary pushed to XCom."""
        return {
            "scanned": self.scanned,
            "matched": self.matched,
            "deleted": self.deleted,
            "would_delete": self.would_delete,
            "already_deleted": self.already_deleted,
            "not_found": self.not_found,
            "failed": self.failed,
            "dry_run": self.dry_run,
            "limit_reached": self.limit_reached,
            "scan_complete": self.scan_complete,
            "deleted_ids": list(self.deleted_ids),
            "would_delete_ids": list(self.would_delete_ids),
            "failed_ids": dict(self.failed_ids),
            "ids_truncated": self.ids_truncated,
            "recovered": self.recovered,
            "recovered_ids": list(self.recovered_ids),
            "audit_path": self.audit_path,
            "audit_anchor": dict(self.audit_anchor) if self.audit_anchor else None,
            "error": self.error,
        }

    def counts(self) -> dict[str, Any]:
        """The counts alone (no id lists), for the audit's ``end`` line."""
        ids = ("deleted_ids", "would_delete_ids", "failed_ids", "recovered_ids", "audit_path", "audit_anchor")
        return {key: value for key, value in self.to_dict().items() if key not in ids}


class Outcome(str, Enum):
    """What happened to one transcript in a purge (one audit line each)."""

    DELETED = "deleted"
    WOULD_DELETE = "would_delete"
    ALREADY_DELETED = "already_deleted"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    SKIPPED = "skipped"
