"""
The purge machinery behind PurgeTranscriptsOperator: async engine, summary, audit trail, progress.

One event loop runs a producer (a streamed scan of ``GET /v2/transcript``, or the explicit ids) that
feeds a bounded queue read by ``concurrency`` workers; every request goes through the hook's shared
async client (retries, rate limiter, pool-wide Retry-After). Each transcript ends in exactly one
outcome, recorded once in the summary and once in the audit, as it happens. With an audit, every
DELETE is announced first (an ``intent`` line in a stored part), and a re-run settles the intents a
killed attempt left open with a GET before it starts (see :mod:`airflow_provider_assemblyai.audit`).

Imported only when a purge runs (not by DAG files), so the scheduler never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from airflow.providers.common.compat.sdk import AirflowException
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from airflow_provider_assemblyai.audit import (
    AUDIT_FORMAT,
    AuditIntent,
    AuditReport,
    audit_folder,
    encode_line,
    part_name,
    read_audit,
    sha256_hex,
)
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
#: An audit part is stored at least this often (seconds) while lines wait...
AUDIT_PART_SECONDS = 1.0
#: ...or as soon as this many lines wait.
AUDIT_PART_LINES = 500
#: The documented bound: no audit line waits longer to be stored while the store takes under
#: (AUDIT_BOUND_SECONDS - AUDIT_PART_SECONDS) / 2 per part; a slower store is logged as a warning.
AUDIT_BOUND_SECONDS = 5.0
#: How far a scan announces deletions (intents) ahead of its DELETEs, so they rarely wait for a part.
AUDIT_INTENT_LOOKAHEAD = 200
#: Tries to store one part before the purge stops deleting.
AUDIT_PART_ATTEMPTS = 3

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


class AuditError(AirflowException):
    """The audit store could not store a part: the purge sends no further DELETE."""


@dataclass(frozen=True)
class _Cut:
    """One part, serialised and chained, ready to be stored."""

    name: str
    data: bytes
    end_seq: int  # lines with a lower sequence number are in this part or an earlier one
    oldest_added: float | None  # when its oldest line was added (None: a header alone)
    sha256: str


class AuditWriter:
    """
    Write one attempt of a purge audit as rolling parts, each a new object written whole.

    Lines wait in memory at most :data:`AUDIT_PART_SECONDS` (or until :data:`AUDIT_PART_LINES`
    wait, or a DELETE waits for its intent), then go out as one part, stored off the event loop
    (``asyncio.to_thread``). Parts are stored one at a time and in order, and a new part is cut as
    soon as the previous one is stored, so a slow store delays lines by at most two uploads, never
    a growing backlog. A part is never overwritten. The layout and line format are described in
    :mod:`airflow_provider_assemblyai.audit`.

    :param uri: the operator's ``audit_path``: its folder holds every attempt's parts.
    :param fields: fields added to the part and outcome lines (dag_id, task_id, run_id, try_number).
    :param region: the connection's region.
    :param dry_run: whether this attempt is a dry run.
    :param log: where a slow or failing store is reported.
    """

    def __init__(
        self,
        uri: str,
        fields: Mapping[str, str | int] | None = None,
        *,
        region: str = "unknown",
        dry_run: bool = False,
        log: PurgeLog | None = None,
    ) -> None:
        self.uri = audit_folder(uri)
        self.fields = dict(fields or {})
        self.region = region
        self.dry_run = dry_run
        self.log: PurgeLog = log or logging.getLogger(__name__)
        #: This attempt's folder name and URI, once opened.
        self.attempt: str | None = None
        self.path: str | None = None
        #: The audit as it was before this attempt (earlier attempts, their unsettled intents).
        self.previous = AuditReport(uri=self.uri)
        #: Lines stored (part lines excluded), parts stored, and the newest part as an anchor.
        self.lines = 0
        self.parts = 0
        self.anchor: dict[str, str] | None = None
        #: For each part, how long its oldest line waited until the part was stored (seconds).
        self.lags: list[float] = []
        self._folder: Any = None
        self._pending: list[tuple[dict[str, Any], float]] = []
        self._next_seq = 0
        self._durable_seq = 0
        self._waiting_for = -1
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._closing = False
        self._failed: BaseException | None = None
        self._unstored: _Cut | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._last_part: str | None = None
        self._last_part_sha: str | None = None
        self._last_line_sha: str | None = None

    @property
    def max_lag(self) -> float:
        """The longest any line waited until its part was stored (seconds)."""
        return max(self.lags, default=0.0)

    @property
    def open_intents(self) -> list[AuditIntent]:
        """Earlier attempts' intents that no line settles (a re-run checks them with a GET)."""
        return list(self.previous.open_intents)

    async def open(self) -> str:
        """
        Read the earlier attempts, then store this attempt's first part; return its folder URI.

        Raises :class:`AuditError` if the store cannot be written: nothing has been deleted yet.
        """
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        self.previous = await asyncio.to_thread(read_audit, self.uri)
        if self.previous.problems:
            self.log.warning(
                "The audit at %s has %d integrity problems (first: %s); this attempt is added to it",
                self.uri,
                len(self.previous.problems),
                self.previous.problems[0],
            )
        if self.previous.attempts:
            latest = self.previous.attempts[-1]
            self._last_part, self._last_part_sha = latest.last_part, latest.last_part_sha256
            self._last_line_sha = latest.last_line_sha256
        try_number = self.fields.get("try_number")
        started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        try_label = try_number if isinstance(try_number, int) else 0
        self.attempt = f"{started}-try{try_label}-{secrets.token_hex(4)}"
        self._folder = ObjectStoragePath(self.uri)
        self.path = str(self._folder / self.attempt)
        await self._write(self._cut())
        self._flusher = asyncio.create_task(self._flush_loop())
        return self.path

    # -- lines -------------------------------------------------------------------------------

    def intent(self, transcript_id: str, *, created: datetime | None, status: str | None) -> int:
        """
        Announce a deletion; return the line's number for :meth:`wait_stored`.

        :param transcript_id: the transcript about to be deleted.
        :param created: its creation time, if known.
        :param status: its status, if known.
        """
        return self._add(
            {"type": "intent", "transcript_id": transcript_id, **_known(created=created, status=status)}
        )

    def outcome(
        self,
        transcript_id: str,
        outcome: Outcome,
        *,
        http_status: int | None,
        reason: str | None = None,
        created: datetime | None = None,
        status: str | None = None,
    ) -> None:
        """
        Record what happened to one transcript.

        :param transcript_id: the transcript.
        :param outcome: what happened to it.
        :param http_status: the status of the API answer that decided it (None if none).
        :param reason: why it failed or was skipped.
        :param created: its creation time, if known.
        :param status: its status, if known.
        """
        line: dict[str, Any] = {
            "type": "outcome",
            "transcript_id": transcript_id,
            "outcome": outcome.value,
            "http_status": http_status,
            "region": self.region,
            "dry_run": self.dry_run,
            **_known(created=created, status=status, reason=reason),
        }
        self._add({**line, **self.fields})

    def withdrawn(self, transcript_id: str, reason: str) -> None:
        """
        Give up an intent whose DELETE was never sent.

        :param transcript_id: the transcript.
        :param reason: why it was not sent.
        """
        self._add({"type": "withdrawn", "transcript_id": transcript_id, "reason": reason})

    def recovered(
        self, intent: AuditIntent, outcome: str, *, http_status: int | None, status: str | None
    ) -> None:
        """
        Settle an earlier attempt's intent with what a GET shows now.

        :param intent: the intent.
        :param outcome: ``deleted`` (that attempt deleted it), ``interrupted`` or ``not_found``.
        :param http_status: the GET's status.
        :param status: the transcript's status, if it exists.
        """
        self._add(
            {
                "type": "recovered",
                "transcript_id": intent.transcript_id,
                "outcome": outcome,
                "attempt": intent.attempt,
                "try_number": intent.try_number,
                "intent_time": intent.time,
                "http_status": http_status,
                "region": self.region,
                **_known(created=intent.created, status=status),
            }
        )

    async def wait_stored(self, seq: int) -> None:
        """
        Return once line ``seq`` is in a stored part (a part is cut at once for it).

        Raises :class:`AuditError` if the store failed.
        """
        while self._durable_seq <= seq:
            if self._failed is not None:
                raise AuditError(f"audit store failed: {self._failed}") from self._failed
            if self._flusher is None or self._flusher.done():
                raise AuditError("the audit is closed")
            self._waiting_for = max(self._waiting_for, seq)
            self._wake.set()
            await self._progress.wait()

    async def close(self, end: Mapping[str, Any] | None = None) -> None:
        """
        Store every line still waiting, with an ``end`` line if given (idempotent).

        :param end: the attempt's summary counts, for its ``end`` line (None: no end line).
        Raises :class:`AuditError` if lines could not be stored.
        """
        if self._folder is None or self._closing:
            return
        if end is not None:
            self._add({"type": "end", "summary": dict(end)})
        self._closing = True
        self._wake.set()
        if self._flusher is not None:
            await self._flusher
        if self._failed is None:
            return
        try:  # one last try: the part that failed, then the rest
            if self._unstored is not None:
                await self._write(self._unstored)
            if self._pending:
                await self._write(self._cut())
        except AuditError:
            lost = self._next_seq - self._durable_seq
            self.log.error("%d audit lines could not be stored in %s", lost, self.path)
            raise

    def _add(self, line: dict[str, Any]) -> int:
        line["time"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        self._pending.append((line, self._now()))
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        if len(self._pending) in (1, AUDIT_PART_LINES):  # start the part's clock, or cut it now
            self._wake.set()
        return seq

    # -- parts -------------------------------------------------------------------------------

    def _due_in(self) -> float | None:
        """Seconds until the next part is due (0: now), or None if no line waits."""
        if not self._pending:
            return None
        if self._closing or self._waiting_for >= self._durable_seq or len(self._pending) >= AUDIT_PART_LINES:
            return 0.0
        return max(self._pending[0][1] + AUDIT_PART_SECONDS - self._now(), 0.0)

    async def _flush_loop(self) -> None:
        while True:
            due = self._due_in()
            if due is None and self._closing:
                return
            if due is None or due > 0:
                await self._idle(due)
                continue
            try:
                await self._write(self._cut())
            except AuditError:
                return

    def _cut(self) -> _Cut:
        """Serialise the waiting lines behind a ``part`` line, each linked to the line before it."""
        assert self.attempt is not None
        number = self.parts + 1 + (self._unstored is not None)
        name = part_name(self.attempt, number)
        header: dict[str, Any] = {
            "type": "part",
            "format": AUDIT_FORMAT,
            "attempt": self.attempt,
            "part": number,
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "region": self.region,
            "dry_run": self.dry_run,
            **self.fields,
            "prev_part": self._last_part,
            "prev_part_sha256": self._last_part_sha,
        }
        pending, self._pending = self._pending, []
        encoded = []
        for line in [header, *(line for line, _ in pending)]:
            line["prev"] = self._last_line_sha
            raw = encode_line(line)
            self._last_line_sha = sha256_hex(raw)
            encoded.append(raw)
        data = b"\n".join(encoded) + b"\n"
        cut = _Cut(name, data, self._next_seq, pending[0][1] if pending else None, sha256_hex(data))
        self._last_part, self._last_part_sha = name, cut.sha256
        return cut

    async def _write(self, cut: _Cut) -> None:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(AUDIT_PART_ATTEMPTS), wait=wait_exponential(0.25, max=2), reraise=True
            ):
                with attempt:
                    await self._upload(cut.name, cut.data)
        except Exception as error:
            self._failed, self._unstored = error, cut
            self.log.error("Could not store audit part %s/%s: %s", self.uri, cut.name, error)
            self._notify()
            raise AuditError(f"could not store audit part {cut.name}: {error}") from error
        self._failed = self._unstored = None
        self.lines += cut.end_seq - self._durable_seq
        self._durable_seq = cut.end_seq
        self.parts += 1
        self.anchor = {"part": cut.name, "sha256": cut.sha256}
        if cut.oldest_added is not None:
            lag = self._now() - cut.oldest_added
            self.lags.append(lag)
            if lag > AUDIT_BOUND_SECONDS:
                self.log.warning(
                    "The audit store is slow: lines waited %.1fs to be stored (bound %.0fs)",
                    lag,
                    AUDIT_BOUND_SECONDS,
                )
        self._notify()

    def _notify(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    # -- time and storage (replaced in tests by a manual clock and a fake store) --------------

    def _now(self) -> float:
        return time.monotonic()

    async def _idle(self, timeout: float | None) -> None:
        """Wait until a line needs a part or ``timeout`` seconds pass."""
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _upload(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, name, data)

    def _put(self, name: str, data: bytes) -> None:
        """Store one part whole: a single PUT on object stores; a temp file and a hard link on disks."""
        target = self._folder / name
        protocols = target.fs.protocol
        if "file" in ((protocols,) if isinstance(protocols, str) else protocols):
            _put_local_file(str(target.path), data)
        else:
            if self.parts == 0:
                target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def _put_local_file(path: str, data: bytes) -> None:
    """Write ``path`` whole and durably, never replacing an existing file (a torn write stays hidden)."""
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    try:
        os.link(temporary, path)  # fails if the name exists: a part is never overwritten
    except FileExistsError:
        with open(path, "rb") as existing:
            if existing.read() != data:
                raise AuditError(f"{path} already exists: an audit part is never overwritten") from None
    finally:
        os.unlink(temporary)


def _known(**values: Any) -> dict[str, Any]:
    """The values that are known (not None), datetimes as ISO 8601."""
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in values.items()
        if value is not None
    }


class _Stop(Exception):
    """A worker hit an error that makes every further request pointless (bad key or connection)."""


class _Target(NamedTuple):
    """A transcript on its way through the purge, with what is known about it."""

    id: str
    created: datetime | None = None
    status: str | None = None
    intent: int | None = None  # the audit line announcing its DELETE


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
