"""
The purge engine behind PurgeTranscriptsOperator: an async producer and workers, and their progress.

One event loop runs a producer (a streamed scan of ``GET /v2/transcript``, or the explicit ids) that
feeds a bounded queue read by ``concurrency`` workers; every request goes through the hook's shared
async client (retries, rate limiter, pool-wide Retry-After). Each transcript ends in exactly one
outcome, recorded once in the summary and once in the audit, as it happens. With an audit, every
DELETE is announced first (an ``intent`` line in a stored part), and a re-run settles the intents a
killed attempt left open with a GET before it starts (see :mod:`airflow_provider_assemblyai.audit`).
The summary lives in ``_purge_summary`` and the audit writer in ``_audit_writer``; both are
re-exported here.

Imported only when a purge runs (not by DAG files), so the scheduler never loads it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from airflow_provider_assemblyai._audit_writer import AuditError, AuditWriter
from airflow_provider_assemblyai._purge_summary import Outcome, PurgeSummary
from airflow_provider_assemblyai.audit import AuditIntent
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

#: How far a scan announces deletions (intents) ahead of its DELETEs, so they rarely wait for a part.
AUDIT_INTENT_LOOKAHEAD = 200
_FATAL = (AssemblyAIAuthError, AssemblyAIConfigError)


class PurgeLog(Protocol):
    """The logging methods the engine uses (a stdlib logger, or an operator's ``self.log``)."""

    def info(self, msg: str, /, *args: Any) -> Any: ...
    def warning(self, msg: str, /, *args: Any) -> Any: ...
    def error(self, msg: str, /, *args: Any) -> Any: ...
    def exception(self, msg: str, /, *args: Any) -> Any: ...


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
    :param audit_path: an ObjectStoragePath URI naming the audit folder, or None.
    :param audit_fields: fields added to the audit's part and outcome lines (dag_id, run_id, ...).
    :param progress_interval: seconds between progress log lines.
    """

    transcript_ids: tuple[str, ...] | None
    created_before: datetime | None
    statuses: frozenset[TranscriptStatus]
    max_deletions: int | None = None
    concurrency: int = 8
    dry_run: bool = False
    audit_path: str | None = None
    audit_fields: Mapping[str, str | int] = field(default_factory=dict)
    progress_interval: float = 10.0


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

        Raises only for bad connection settings or an audit store that cannot be written, both found
        before any deletion, or on cancellation.
        """
        settings = await self.hook.aget_settings()
        self.region = settings.region
        lookahead = self.plan.concurrency * 2
        if self.plan.audit_path:
            self._audit = AuditWriter(
                self.plan.audit_path,
                self.plan.audit_fields,
                region=self.region,
                dry_run=self.plan.dry_run,
                log=self.log,
            )
            self.summary.audit_path = await self._audit.open()
            self.log.info("Writing the purge audit to %s", self.summary.audit_path)
            lookahead = max(lookahead, AUDIT_INTENT_LOOKAHEAD)
        self._started = time.monotonic()
        queue: asyncio.Queue[_Target] = asyncio.Queue(maxsize=lookahead)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.plan.concurrency)]
        progress = asyncio.create_task(self._progress_loop())
        finished = False
        try:
            try:
                await self._recover()
                await self._produce(queue)
            except AssemblyAIError as error:
                self.summary.error = f"listing transcripts failed: {error}"
                self.log.error("Stopping the scan: %s; finishing the deletions already queued", error)
            if self._stop is not None:
                self._withdraw(_drain(queue), "the purge stopped before sending it")
            await queue.join()
            finished = True
        finally:
            for task in (*workers, progress):
                task.cancel()
            await asyncio.gather(*workers, progress, return_exceptions=True)
            self._withdraw(_drain(queue), "the purge was cancelled before sending it")
            if self._stop is not None and self.summary.error is None:
                self.summary.error = f"stopped early: {self._stop}"
            await self._close_audit(finished)
        self._log_progress(final=True)
        return self.summary

    async def _close_audit(self, finished: bool) -> None:
        """Store the rest of the audit, with an ``end`` line if the purge ran to its end."""
        if self._audit is None:
            return
        try:
            await self._audit.close(self.summary.counts() if finished else None)
        except AuditError as error:
            self.summary.error = self.summary.error or f"the audit could not be stored: {error}"
        self.summary.audit_anchor = self._audit.anchor
        self.log.info(
            "Audit: %d lines in %d parts; the longest a line waited to be stored: %.2fs",
            self._audit.lines,
            self._audit.parts,
            self._audit.max_lag,
        )

    # -- recovery of a killed attempt ------------------------------------------------------

    async def _recover(self) -> None:
        """Settle the intents earlier attempts left open: a GET tells whether each was deleted."""
        if self._audit is None or not self._audit.open_intents:
            return
        intents = [i for i in self._audit.open_intents if i.region in (None, self.region)]
        if len(intents) < len(self._audit.open_intents):
            self.log.warning(
                "%d open intents of earlier attempts were made in another region; they stay open",
                len(self._audit.open_intents) - len(intents),
            )
        self.log.info(
            "Checking %d transcripts that earlier attempts announced for deletion without recording "
            "what happened (the attempt was killed)",
            len(intents),
        )
        limit = asyncio.Semaphore(self.plan.concurrency)
        await asyncio.gather(*(self._recover_one(intent, limit) for intent in intents))
        if self.summary.recovered:
            self.log.warning(
                "%d transcripts were deleted by an earlier attempt that died before recording it; "
                "recorded now in the audit as that attempt's deletions",
                self.summary.recovered,
            )

    async def _recover_one(self, intent: AuditIntent, limit: asyncio.Semaphore) -> None:
        assert self._audit is not None
        async with limit:
            if self._stop is not None:
                return
            try:
                transcript = await self.hook.aget_transcript(intent.transcript_id)
            except TranscriptNotFoundError as error:
                self._audit.recovered(intent, "not_found", http_status=error.status_code, status=None)
                return
            except AssemblyAIError as error:
                if isinstance(error, _FATAL):
                    self._stop = self._stop or error
                self.log.warning(
                    "Could not check transcript %s announced by attempt %s (%s); it stays open for the "
                    "next run",
                    intent.transcript_id,
                    intent.attempt,
                    error,
                )
                return
        status = transcript.status.value
        if transcript.is_deleted:
            self._audit.recovered(intent, "deleted", http_status=200, status=status)
            self.summary.recovered += 1
            self.summary._keep(self.summary.recovered_ids, intent.transcript_id)
        else:
            self._audit.recovered(intent, "interrupted", http_status=200, status=status)

    # -- producers ---------------------------------------------------------------------------

    async def _produce(self, queue: asyncio.Queue[_Target]) -> None:
        ids = self.plan.transcript_ids
        if ids is not None:
            for transcript_id in ids:
                if self._stop is not None or self._limit_hit():
                    break
                self._selected += 1
                await queue.put(_Target(transcript_id))
        else:
            await self._scan(queue)
            self.summary.scan_complete = self._stop is None and not self.summary.limit_reached

    async def _scan(self, queue: asyncio.Queue[_Target]) -> None:
        cutoff, statuses = self.plan.created_before, self.plan.statuses
        items = self.hook.alist_transcripts()
        try:
            async for item in items:
                if self._stop is not None:
                    return
                self.summary.scanned += 1
                if cutoff is not None and item.created >= cutoff:
                    continue
                target = _Target(item.id, item.created, item.status.value)
                if item.is_deleted:  # whatever its status: the API shows deleted ones as completed
                    self._selected += 1
                    self._finish(target, Outcome.ALREADY_DELETED, None)
                    continue
                if item.status not in statuses:
                    continue
                if not self._reserve():
                    return
                self._selected += 1
                if self.plan.dry_run:
                    self._finish(target, Outcome.WOULD_DELETE, None)
                else:
                    await queue.put(self._announce(target))
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()

    # -- workers -----------------------------------------------------------------------------

    async def _worker(self, queue: asyncio.Queue[_Target]) -> None:
        while True:
            target = await queue.get()
            try:
                if self._stop is None:
                    if self.plan.transcript_ids is None:
                        await self._delete(target)
                    else:
                        await self._check_then_delete(target)
                elif target.intent is not None:
                    self._withdraw([target], "the purge stopped before sending it")
            except _Stop:
                pass
            except Exception as error:  # a bug, not an API answer: stop rather than guess
                self._finish(target, Outcome.FAILED, None, f"{type(error).__name__}: {error}")
                self._stop = self._stop or error
                self.log.exception("Stopping the purge after an unexpected error")
            finally:
                queue.task_done()

    async def _check_then_delete(self, target: _Target) -> None:
        """Explicit id: GET (status, already deleted, not found), then DELETE if it is selected."""
        self.summary.scanned += 1
        try:
            transcript = await self.hook.aget_transcript(target.id)
        except AssemblyAIError as error:
            self._failed_request(target, error)
            return
        target = target._replace(status=transcript.status.value)
        if transcript.is_deleted:
            self._finish(target, Outcome.ALREADY_DELETED, 200)
        elif not transcript.status.is_terminal:
            self._finish(
                target,
                Outcome.FAILED,
                200,
                f"transcript is {transcript.status.value}; a purge never deletes queued or processing "
                "transcripts (run again once it is completed or error)",
            )
        elif transcript.status not in self.plan.statuses:
            self._finish(target, Outcome.SKIPPED, 200, f"status {transcript.status.value} not selected")
        elif not self._reserve():
            self._finish(target, Outcome.SKIPPED, 200, "max_deletions reached")
        elif self.plan.dry_run:
            self._finish(target, Outcome.WOULD_DELETE, 200)
        else:
            await self._delete(self._announce(target))

    async def _delete(self, target: _Target) -> None:
        await self._intent_stored(target)
        try:
            await self.hook.adelete_transcript(target.id)
        except (AssemblyAIServerError, AssemblyAITransportError) as error:
            # Every retry got no usable answer, but the DELETE may have taken effect: ask.
            if await self._deleted_after_all(target.id, error):
                self._finish(target, Outcome.DELETED, 200)
            else:
                self._failed_request(target, error)
            return
        except AssemblyAIError as error:
            self._failed_request(target, error)
            return
        self._finish(target, Outcome.DELETED, 200)

    def _announce(self, target: _Target) -> _Target:
        """Write the intent line of a DELETE about to be sent (write-ahead)."""
        if self._audit is None:
            return target
        return target._replace(
            intent=self._audit.intent(target.id, created=target.created, status=target.status)
        )

    async def _intent_stored(self, target: _Target) -> None:
        """Wait until the DELETE's intent is in a stored part; if the store failed, stop."""
        if self._audit is None or target.intent is None:
            return
        try:
            await self._audit.wait_stored(target.intent)
        except AuditError as error:
            self._finish(target, Outcome.FAILED, None, f"not deleted: {error}")
            if self._stop is None:
                self.log.error("Stopping the purge: %s", error)
                self._stop = error
            raise _Stop from error

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

    def _failed_request(self, target: _Target, error: AssemblyAIError) -> None:
        if isinstance(error, TranscriptNotFoundError):
            self._finish(target, Outcome.NOT_FOUND, error.status_code)
            return
        self._finish(target, Outcome.FAILED, error.status_code, str(error))
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
        self, target: _Target, outcome: Outcome, http_status: int | None, reason: str | None = None
    ) -> None:
        self._handled += 1
        self.summary.record(target.id, outcome, reason)
        if outcome is Outcome.FAILED:
            self.log.warning("Could not delete transcript %s: %s", target.id, reason)
        if self._audit is not None:
            self._audit.outcome(
                target.id,
                outcome,
                http_status=http_status,
                reason=reason,
                created=target.created,
                status=target.status,
            )

    def _withdraw(self, targets: list[_Target], reason: str) -> None:
        """Give up the intents of DELETEs that will not be sent (the purge stopped first)."""
        if self._audit is None:
            return
        for target in targets:
            if target.intent is not None:
                self._audit.withdrawn(target.id, reason)

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


class _Stop(Exception):
    """A worker hit an error that makes every further request pointless (bad key or connection)."""


class _Target(NamedTuple):
    """A transcript on its way through the purge, with what is known about it."""

    id: str
    created: datetime | None = None
    status: str | None = None
    intent: int | None = None  # the audit line announcing its DELETE


def _drain(queue: asyncio.Queue[_Target]) -> list[_Target]:
    """Drop queued items that will not be handled (after a fatal error); return them."""
    dropped = []
    while True:
        try:
            dropped.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            return dropped
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
    "AuditError",
    "AuditWriter",
    "Outcome",
    "PurgeEngine",
    "PurgePlan",
    "PurgeSummary",
    "apurge",
    "run_purge",
]
