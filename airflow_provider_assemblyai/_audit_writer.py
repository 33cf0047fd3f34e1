"""
The purge audit's writer: write-ahead intents, rolling parts, a hash chain.

:class:`AuditWriter` writes one attempt of a purge as small parts, each a new object written whole;
every DELETE is announced by an ``intent`` line in a stored part before it is sent. The layout, the
line format and the reader are in :mod:`airflow_provider_assemblyai.audit`.

Imported only when a purge runs (by :mod:`airflow_provider_assemblyai.purge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from airflow_provider_assemblyai._purge_summary import Outcome
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

if TYPE_CHECKING:
    from airflow_provider_assemblyai.purge import PurgeLog

#: An audit part is stored at least this often (seconds) while lines wait...
AUDIT_PART_SECONDS = 1.0
#: ...or as soon as this many lines wait.
AUDIT_PART_LINES = 500
#: The documented bound: no audit line waits longer to be stored while the store takes under
#: (AUDIT_BOUND_SECONDS - AUDIT_PART_SECONDS) / 2 per part; a slower store is logged as a warning.
AUDIT_BOUND_SECONDS = 5.0
#: Tries to store one part before the purge stops deleting.
AUDIT_PART_ATTEMPTS = 3


class AuditError(AirflowException):
    """The audit store could not store a part: the purge sends no further DELETE."""


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


@dataclass(frozen=True)
class _Cut:
    """One part, serialised and chained, ready to be stored."""

    name: str
    data: bytes
    end_seq: int  # lines with a lower sequence number are in this part or an earlier one
    oldest_added: float | None  # when its oldest line was added (None: a header alone)
    sha256: str


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
