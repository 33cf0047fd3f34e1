"""
The purge machinery behind PurgeTranscriptsOperator: async engine, summary, audit trail, progress.

One event loop runs a producer (a streamed scan of ``GET /v2/transcript``, or the explicit ids) that
feeds a bounded queue read by ``concurrency`` workers; every request goes through the hook's shared
async client (retries, rate limiter, pool-wide Retry-After). Each transcript ends in exactly one
outcome, recorded once in the summary and once in the audit file, as it happens.

Imported only when a purge runs (not by DAG files), so the scheduler never loads it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import IO, TYPE_CHECKING, Any, Protocol

from airflow_provider_assemblyai.exceptions import (
    AssemblyAIAuthError,
    AssemblyAIConfigError,
    AssemblyAIError,
    AssemblyAIServerError,
    AssemblyAITransportError,
    TranscriptNotFoundError,
)
from airflow_provider_assemblyai.models import TranscriptStatus

if TYPE_CHECKING:
    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

#: How many ids ``deleted_ids`` / ``would_delete_ids`` / ``failed_ids`` keep (counts stay exact).
MAX_REPORTED_IDS = 10_000
#: The audit file is flushed at least this often (seconds), and at the end.
AUDIT_FLUSH_SECONDS = 1.0
#: The audit file is also flushed after this many lines.
AUDIT_FLUSH_LINES = 200

_FATAL = (AssemblyAIAuthError, AssemblyAIConfigError)


class PurgeLog(Protocol):
    """The logging methods the engine uses (a stdlib logger, or an operator's ``self.log``)."""

    def info(self, msg: str, /, *args: Any) -> Any: ...
    def warning(self, msg: str, /, *args: Any) -> Any: ...
    def error(self, msg: str, /, *args: Any) -> Any: ...
    def exception(self, msg: str, /, *args: Any) -> Any: ...


class Outcome(str, Enum):
    """What happened to one transcript in a purge (one audit line each)."""

    DELETED = "deleted"
    WOULD_DELETE = "would_delete"
    ALREADY_DELETED = "already_deleted"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class PurgePlan:
    """
    What to purge and how (already validated and rendered by the operator).

    :param transcript_ids: explicit ids (deduplicated, in order), or None to scan the account.
    :param created_before: for a scan, only transcripts created before this aware UTC datetime.
    :param statuses: only transcripts with one of these terminal statuses are deleted.
    :param max_deletions: at most this many transcripts are deleted (None: no cap).
    :param concurrency: how many requests are in flight at most.
    :param dry_run: report what would be deleted, delete nothing.
    :param audit_path: an ObjectStoragePath URI for the JSON-lines audit, or None.
    :param audit_fields: fields added to every audit line (dag_id, run_id, ...).
    :param progress_interval: seconds between progress log lines.
    """

    transcript_ids: tuple[str, ...] | None
    created_before: datetime | None
    statuses: frozenset[TranscriptStatus]
    max_deletions: int | None = None
    concurrency: int = 8
    dry_run: bool = False
    audit_path: str | None = None
    audit_fields: Mapping[str, str] = field(default_factory=dict)
    progress_interval: float = 10.0


@dataclass
class PurgeSummary:
    """
    Exact counts of a purge, plus bounded id lists; :meth:`to_dict` is what goes to XCom.

    ``matched`` = deleted + would_delete + already_deleted + not_found + failed, always: a transcript
    is counted in ``matched`` when its outcome is known, in exactly one bucket.

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
    audit_path: str | None = None
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
            "audit_path": self.audit_path,
            "error": self.error,
        }


class AuditWriter:
    """
    Append one JSON line per handled transcript to an ObjectStoragePath, flushing as it goes.

    An existing file is never overwritten (a retry writes ``<stem>-1<suffix>``, ``-2``, ...), so the
    proof of an earlier attempt's deletions is kept. Object stores persist the file when it is closed.

    :param uri: the target, e.g. ``file:///audit/2024-06-01.jsonl`` or ``s3://bucket/audit.jsonl``.
    :param fields: fields added to every line.
    """

    def __init__(self, uri: str, fields: Mapping[str, str] | None = None) -> None:
        self.uri = uri
        self.fields = dict(fields or {})
        self.path: str | None = None
        self.lines = 0
        self._file: IO[str] | None = None
        self._unflushed = 0
        self._flushed_at = time.monotonic()

    def open(self) -> str:
        """Create the file (and its folder) and return its URI."""
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        base = target = ObjectStoragePath(self.uri)
        n = 0
        while target.exists():
            n += 1
            target = base.with_name(f"{base.stem}-{n}{base.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        self._file = target.open("w", encoding="utf-8")  # type: ignore[no-untyped-call]
        self.path = str(target)
        return self.path

    def write(
        self,
        transcript_id: str,
        outcome: Outcome,
        *,
        region: str,
        http_status: int | None,
        reason: str | None = None,
        dry_run: bool = False,
    ) -> None:
        """
        Write one line (flushed within :data:`AUDIT_FLUSH_SECONDS` or :data:`AUDIT_FLUSH_LINES`).

        :param transcript_id: the transcript.
        :param outcome: what happened to it.
        :param region: the connection's region.
        :param http_status: the status of the API answer that decided the outcome (None if none).
        :param reason: why it failed or was skipped.
        :param dry_run: whether this is a dry run.
        """
        if self._file is None:
            raise RuntimeError("AuditWriter.open() was not called")
        line: dict[str, Any] = {
            "transcript_id": transcript_id,
            "outcome": outcome.value,
            "http_status": http_status,
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "region": region,
            "dry_run": dry_run,
        }
        if reason:
            line["reason"] = reason
        line.update(self.fields)
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.lines += 1
        self._unflushed += 1
        now = time.monotonic()
        if self._unflushed >= AUDIT_FLUSH_LINES or now - self._flushed_at >= AUDIT_FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Push buffered lines to the file."""
        if self._file is not None and self._unflushed:
            self._file.flush()
        self._unflushed = 0
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None


class _Stop(Exception):
    """A worker hit an error that makes every further request pointless (bad key or connection)."""


class PurgeEngine:
    """
    Run one purge on the running event loop. Use :func:`run_purge` from sync code.

    :param hook: the hook whose shared async client, retries and rate limiter are used.
    :param plan: what to purge.
    :param log: where progress and outcomes are logged (the task's logger).
    """

    def __init__(self, hook: AssemblyAIHook, plan: PurgePlan, log: PurgeLog | None = None) -> None:
        self.hook = hook
        self.plan = plan
        self.log: PurgeLog = log or logging.getLogger(__name__)
        self.summary = PurgeSummary(dry_run=plan.dry_run)
        self.region = "unknown"
        self._audit: AuditWriter | None = None
        self._reserved = 0  # deletions (or would-be deletions) claimed against max_deletions
        self._selected = 0  # items given an outcome or queued: the total once the scan ends
        self._handled = 0  # items with a final outcome (or skipped explicit ids)
        self._stop: BaseException | None = None
        self._started = 0.0

    async def run(self) -> PurgeSummary:
        """
        Purge, and return the summary; ``summary.error`` is set if the purge had to stop early.

        Raises only for bad connection settings found before any deletion, or on cancellation.
        """
        settings = await self.hook.aget_settings()
        self.region = settings.region
        if self.plan.audit_path:
            self._audit = AuditWriter(self.plan.audit_path, self.plan.audit_fields)
            self.summary.audit_path = await asyncio.to_thread(self._audit.open)
            self.log.info("Writing the purge audit to %s", self.summary.audit_path)
        self._started = time.monotonic()
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=self.plan.concurrency * 2)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.plan.concurrency)]
        progress = asyncio.create_task(self._progress_loop())
        try:
            try:
                await self._produce(queue)
            except AssemblyAIError as error:
                self.summary.error = f"listing transcripts failed: {error}"
                self.log.error("Stopping the scan: %s; finishing the deletions already queued", error)
            if self._stop is not None:
                _drain(queue)
            await queue.join()
        finally:
            for task in (*workers, progress):
                task.cancel()
            await asyncio.gather(*workers, progress, return_exceptions=True)
            if self._audit is not None:
                await asyncio.to_thread(self._audit.close)
        if self._stop is not None and self.summary.error is None:
            self.summary.error = f"stopped early: {self._stop}"
        self._log_progress(final=True)
        return self.summary

    # -- producers ---------------------------------------------------------------------------

    async def _produce(self, queue: asyncio.Queue[str]) -> None:
        ids = self.plan.transcript_ids
        if ids is not None:
            for transcript_id in ids:
                if self._stop is not None or self._limit_hit():
                    break
                self._selected += 1
                await queue.put(transcript_id)
        else:
            await self._scan(queue)
            self.summary.scan_complete = self._stop is None and not self.summary.limit_reached

    async def _scan(self, queue: asyncio.Queue[str]) -> None:
        cutoff, statuses = self.plan.created_before, self.plan.statuses
        items = self.hook.alist_transcripts()
        try:
            async for item in items:
                if self._stop is not None:
                    return
                self.summary.scanned += 1
                if cutoff is not None and item.created >= cutoff:
                    continue
                if item.is_deleted:  # whatever its status: the API shows deleted ones as completed
                    self._selected += 1
                    self._finish(item.id, Outcome.ALREADY_DELETED, None)
                    continue
                if item.status not in statuses:
                    continue
                if not self._reserve():
                    return
                self._selected += 1
                if self.plan.dry_run:
                    self._finish(item.id, Outcome.WOULD_DELETE, None)
                else:
                    await queue.put(item.id)
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()

    # -- workers -----------------------------------------------------------------------------

    async def _worker(self, queue: asyncio.Queue[str]) -> None:
        while True:
            transcript_id = await queue.get()
            try:
                if self._stop is None:
                    if self.plan.transcript_ids is None:
                        await self._delete(transcript_id)
                    else:
                        await self._check_then_delete(transcript_id)
            except _Stop:
                pass
            except Exception as error:  # a bug, not an API answer: stop rather than guess
                self._finish(transcript_id, Outcome.FAILED, None, f"{type(error).__name__}: {error}")
                self._stop = self._stop or error
                self.log.exception("Stopping the purge after an unexpected error")
            finally:
                queue.task_done()

    async def _check_then_delete(self, transcript_id: str) -> None:
        """Explicit id: GET (status, already deleted, not found), then DELETE if it is selected."""
        self.summary.scanned += 1
        try:
            transcript = await self.hook.aget_transcript(transcript_id)
        except AssemblyAIError as error:
            self._failed_request(transcript_id, error)
            return
        if transcript.is_deleted:
            self._finish(transcript_id, Outcome.ALREADY_DELETED, 200)
        elif not transcript.status.is_terminal:
            self._finish(
                transcript_id,
                Outcome.FAILED,
                200,
                f"transcript is {transcript.status.value}; a purge never deletes queued or processing "
                "transcripts (run again once it is completed or error)",
            )
        elif transcript.status not in self.plan.statuses:
            self._finish(
                transcript_id, Outcome.SKIPPED, 200, f"status {transcript.status.value} not selected"
            )
        elif not self._reserve():
            self._finish(transcript_id, Outcome.SKIPPED, 200, "max_deletions reached")
        elif self.plan.dry_run:
            self._finish(transcript_id, Outcome.WOULD_DELETE, 200)
        else:
            await self._delete(transcript_id)

    async def _delete(self, transcript_id: str) -> None:
        try:
            await self.hook.adelete_transcript(transcript_id)
        except (AssemblyAIServerError, AssemblyAITransportError) as error:
            # Every retry got no usable answer, but the DELETE may have taken effect: ask.
            if await self._deleted_after_all(transcript_id, error):
                self._finish(transcript_id, Outcome.DELETED, 200)
            else:
                self._failed_request(transcript_id, error)
            return
        except AssemblyAIError as error:
            self._failed_request(transcript_id, error)
            return
        self._finish(transcript_id, Outcome.DELETED, 200)

    async def _deleted_after_all(self, transcript_id: str, error: AssemblyAIError) -> bool:
        if isinstance(error, AssemblyAITransportError) and not error.request_sent:
            return False
        try:
            transcript = await self.hook.aget_transcript(transcript_id)
        except AssemblyAIError:
            return False
        if transcript.is_deleted:
            self.log.warning(
                "DELETE of transcript %s got no usable answer (%s), but it did take effect",
                transcript_id,
                error,
            )
        return transcript.is_deleted

    def _failed_request(self, transcript_id: str, error: AssemblyAIError) -> None:
        if isinstance(error, TranscriptNotFoundError):
            self._finish(transcript_id, Outcome.NOT_FOUND, error.status_code)
            return
        self._finish(transcript_id, Outcome.FAILED, error.status_code, str(error))
        if isinstance(error, _FATAL):
            if self._stop is None:
                self.log.error("Stopping the purge: %s", error)
                self._stop = error
            raise _Stop from error

    # -- bookkeeping -------------------------------------------------------------------------

    def _reserve(self) -> bool:
        cap = self.plan.max_deletions
        if cap is not None and self._reserved >= cap:
            if not self.summary.limit_reached:
                self.log.info("max_deletions=%d reached; the rest is left for the next run", cap)
            self.summary.limit_reached = True
            return False
        self._reserved += 1
        return True

    def _limit_hit(self) -> bool:
        cap = self.plan.max_deletions
        return cap is not None and self._reserved >= cap

    def _finish(
        self, transcript_id: str, outcome: Outcome, http_status: int | None, reason: str | None = None
    ) -> None:
        self._handled += 1
        self.summary.record(transcript_id, outcome, reason)
        if outcome is Outcome.FAILED:
            self.log.warning("Could not delete transcript %s: %s", transcript_id, reason)
        if self._audit is not None:
            self._audit.write(
                transcript_id,
                outcome,
                region=self.region,
                http_status=http_status,
                reason=reason,
                dry_run=self.plan.dry_run,
            )

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(self.plan.progress_interval)
            self._log_progress()

    def _log_progress(self, *, final: bool = False) -> None:
        s = self.summary
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self._handled / elapsed
        if self.plan.transcript_ids is not None:
            total: int | None = len(self.plan.transcript_ids)
        elif s.scan_complete or final or self.summary.limit_reached:
            total = self._selected
        else:
            total = None
        if total is None:
            of, eta = f"unknown yet (scan in progress, {s.scanned} listed)", "unknown until the scan ends"
        else:
            remaining = max(total - self._handled, 0)
            of, eta = str(total), (f"{remaining / rate:.0f}s" if rate > 0 else "unknown")
        self.log.info(
            "Purge %s: %d of %s done (%d %s, %d already deleted, %d not found, %d failed) "
            "in %.1fs, %.1f/s, ETA %s",
            "finished" if final else "progress",
            self._handled,
            of,
            s.would_delete if s.dry_run else s.deleted,
            "would be deleted" if s.dry_run else "deleted",
            s.already_deleted,
            s.not_found,
            s.failed,
            elapsed,
            rate,
            "0s" if final else eta,
        )


def _drain(queue: asyncio.Queue[str]) -> None:
    """Drop queued items that will not be handled (after a fatal error)."""
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        queue.task_done()


async def apurge(hook: AssemblyAIHook, plan: PurgePlan, log: PurgeLog | None = None) -> PurgeSummary:
    """
    Run a purge on the running loop and return its summary.

    :param hook: the hook to use (its rate limiter and shared async client).
    :param plan: what to purge.
    :param log: the logger for progress lines.
    """
    return await PurgeEngine(hook, plan, log).run()


def run_purge(hook: AssemblyAIHook, plan: PurgePlan, log: PurgeLog | None = None) -> PurgeSummary:
    """
    Run a purge in its own event loop (``asyncio.run``), closing the shared clients before it ends.

    :param hook: the hook to use.
    :param plan: what to purge.
    :param log: the logger for progress lines.
    """
    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

    async def main() -> PurgeSummary:
        try:
            return await apurge(hook, plan, log)
        finally:
            await AssemblyAIHook.aclose_shared_clients()

    return asyncio.run(main())


__all__ = [
    "AuditWriter",
    "Outcome",
    "PurgeEngine",
    "PurgePlan",
    "PurgeSummary",
    "apurge",
    "run_purge",
]
