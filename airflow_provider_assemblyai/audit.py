"""
The purge audit: its layout and line format, and :func:`read_audit` to merge and verify it.

A purge writes its audit in small parts, each a new object written whole, so a crash loses at
most the last part; it never overwrites an object. ``audit_path`` names a folder (a ``.jsonl``
suffix is dropped: ``s3://b/purges/2024-06-01.jsonl`` means ``s3://b/purges/2024-06-01/``)::

    <folder>/<attempt>/part-000001.jsonl
    <folder>/<attempt>/part-000002.jsonl
    ...

``<attempt>`` is ``<UTC start, %Y%m%dT%H%M%S%fZ>-try<N>-<8 hex>``: one folder per run of the task
(an Airflow retry or a cleared task is a new attempt beside the earlier ones). Every line is one
JSON object with a ``type``:

- ``part``: the first line of every part: attempt, part number, dag/task/run ids, ``try_number``,
  and the part before it (``prev_part``, its ``prev_part_sha256``).
- ``intent``: a transcript this attempt is about to delete, written to the store before the DELETE.
- ``outcome``: what happened to one transcript (``deleted``, ``already_deleted``, ``not_found``,
  ``failed``, ``skipped``, ``would_delete``), with ``created`` and ``status`` where known.
- ``withdrawn``: an intent given up before its DELETE was sent (the purge stopped).
- ``recovered``: a later attempt checked an earlier attempt's intent with a GET: ``deleted`` (the
  earlier attempt deleted it but died before its outcome line was stored), ``interrupted`` (it was
  not deleted) or ``not_found``.
- ``end``: the attempt finished; carries its summary counts.

Tamper evidence: every line carries ``prev``, the SHA-256 of the line before it (the first line of
a part: of the last line of the part it names), and every part names the part before it with the
SHA-256 of its bytes. :func:`read_audit` reports any broken or missing link. The newest part of
the newest attempt has no successor to vouch for it: compare it with the ``audit_anchor`` of the
purge summary (XCom), e.g. ``read_audit(uri, anchors=[summary["audit_anchor"]])``.

Cheap to import (stdlib only); ObjectStoragePath is imported when an audit is read.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

#: The layout and line format version, in every ``part`` line.
AUDIT_FORMAT = 1
ATTEMPT_PATTERN = re.compile(r"^(\d{8}T\d{12}Z)-try(\d+)-([0-9a-f]{8})$")
PART_PATTERN = re.compile(r"^part-(\d{6})\.jsonl$")
#: Outcomes a ``recovered`` line can give an earlier attempt's intent.
RECOVERED_OUTCOMES = ("deleted", "interrupted", "not_found")
_LINE_TYPES = ("part", "intent", "outcome", "withdrawn", "recovered", "end")


def audit_folder(uri: str) -> str:
    """
    The folder an ``audit_path`` names: without a trailing ``/`` and without a ``.jsonl`` suffix.

    :param uri: the operator's ``audit_path`` (or the folder itself).
    """
    folder = uri.strip().rstrip("/")
    return folder[: -len(".jsonl")] if folder.endswith(".jsonl") else folder


def part_name(attempt: str, number: int) -> str:
    """The name of part ``number`` of ``attempt``, relative to the audit folder."""
    return f"{attempt}/part-{number:06d}.jsonl"


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def encode_line(line: Mapping[str, Any]) -> bytes:
    """One audit line as stored (compact JSON, UTF-8, no newline)."""
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class AuditRecord:
    """
    One transcript's outcome in one attempt.

    :param transcript_id: the transcript.
    :param outcome: ``deleted``, ``already_deleted``, ``not_found``, ``failed``, ``skipped``,
        ``would_delete``, or for a recovered intent ``interrupted`` (not deleted).
    :param attempt: the attempt the outcome belongs to (for a recovered intent: the attempt that
        announced it, not the one that checked it).
    :param try_number: that attempt's Airflow try number (None outside a task).
    :param time: when the line was written (ISO 8601 UTC).
    :param recovered_by: the attempt that checked an earlier attempt's intent with a GET, or None.
    :param intent_time: when the intent was written (the DELETE went out after it), if any.
    :param part: the part holding the line, relative to the audit folder.
    :param line: the line number in the part (1-based).
    """

    transcript_id: str
    outcome: str
    attempt: str
    try_number: int | None
    time: str | None
    recovered_by: str | None = None
    intent_time: str | None = None
    http_status: int | None = None
    reason: str | None = None
    created: str | None = None
    status: str | None = None
    region: str | None = None
    dry_run: bool = False
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    part: str = ""
    line: int = 0


@dataclass(frozen=True)
class AuditIntent:
    """
    An intent (``about to delete``) that no line of any attempt has settled yet.

    :param transcript_id: the transcript.
    :param attempt: the attempt that announced it.
    :param try_number: that attempt's try number.
    :param time: when it was announced.
    :param region: the region of the attempt's connection.
    :param created: the transcript's creation time, if known.
    :param status: the transcript's status when it was announced, if known.
    """

    transcript_id: str
    attempt: str
    try_number: int | None
    time: str | None
    region: str | None
    created: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class AuditAttempt:
    """
    One attempt (one run of the purge task) as found in the audit.

    :param name: its folder name.
    :param try_number: its Airflow try number (None outside a task).
    :param parts: how many parts were read.
    :param finished: whether its ``end`` line is there (False: it was killed, or is still running).
    :param last_part: its newest part, relative to the audit folder.
    :param last_part_sha256: the SHA-256 of that part's bytes.
    :param last_line_sha256: the SHA-256 of that part's last complete line.
    """

    name: str
    try_number: int | None
    parts: int
    finished: bool
    last_part: str | None
    last_part_sha256: str | None
    last_line_sha256: str | None
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None


@dataclass
class AuditReport:
    """
    Every part of every attempt of one audit, merged and checked.

    :param uri: the audit folder.
    :param records: one record per transcript outcome, in attempt, part and line order.
    :param attempts: the attempts, oldest first.
    :param open_intents: intents no line settles: those transcripts may or may not have been deleted
        (run the task again: its first step checks them with a GET).
    :param problems: broken or missing links, unreadable lines, foreign objects: signs that the
        audit was edited, truncated or reordered. Empty for an intact audit.
    :param notes: what a crash leaves and is not tampering (a part cut short by a kill, a temporary
        file, an outcome recorded twice).
    """

    uri: str
    records: list[AuditRecord] = field(default_factory=list)
    attempts: list[AuditAttempt] = field(default_factory=list)
    open_intents: list[AuditIntent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no integrity problem was found."""
        return not self.problems

    def ids(self, outcome: str = "deleted") -> set[str]:
        """The transcripts with at least one record of ``outcome`` (default: deleted)."""
        return {record.transcript_id for record in self.records if record.outcome == outcome}

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-serialisable values (e.g. for XCom)."""
        return {
            "uri": self.uri,
            "ok": self.ok,
            "records": [asdict(record) for record in self.records],
            "attempts": [asdict(attempt) for attempt in self.attempts],
            "open_intents": [asdict(intent) for intent in self.open_intents],
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def read_audit(uri: str, *, anchors: Iterable[Mapping[str, str] | None] = ()) -> AuditReport:
    """
    Read every part of every attempt of a purge audit, check its hash links, merge its records.

    .. seealso:: README section "PurgeTranscriptsOperator" (the audit) and docs/reliability.md.

    :param uri: the operator's ``audit_path`` (``.../run.jsonl``), its folder, or one attempt's
        folder (the summary's ``audit_path``): the whole audit is read in each case.
    :param anchors: ``{"part": ..., "sha256": ...}`` pairs kept elsewhere, such as each purge
        summary's ``audit_anchor`` in XCom; a missing or different part is a problem.
    """
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    folder = ObjectStoragePath(audit_folder(uri))
    if ATTEMPT_PATTERN.match(folder.name):
        folder = folder.parent
    report = AuditReport(uri=str(folder))
    _Merger(report, _load_parts(folder, report)).merge()
    _check_anchors(report, folder, anchors)
    return report


@dataclass
class _Part:
    name: str
    attempt: str
    number: int
    data: bytes
    lines: list[tuple[bytes, dict[str, Any] | None]]
    torn: bool = False

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)

    @property
    def last_line_sha256(self) -> str | None:
        return sha256_hex(self.lines[-1][0]) if self.lines else None


def _load_parts(folder: Any, report: AuditReport) -> dict[str, list[_Part]]:
    """Every part under ``folder``, by attempt (sorted); foreign objects are problems."""
    fs = folder.fs
    root = str(folder.path).rstrip("/")
    if hasattr(fs, "invalidate_cache"):
        fs.invalidate_cache(root)  # an object store's cached listing may predate the last parts
    attempts: dict[str, list[_Part]] = {}
    parts: dict[str, tuple[str, str, int]] = {}
    for found in sorted(fs.find(root)):
        relative = str(found)[len(root) :].lstrip("/")
        attempt, _, name = relative.partition("/")
        number = PART_PATTERN.match(name)
        if ATTEMPT_PATTERN.match(attempt) and number:
            parts[str(found)] = (relative, attempt, int(number.group(1)))
        elif name.startswith(".") and name.endswith(".tmp"):
            report.notes.append(f"{relative}: a temporary file left by an interrupted write (ignored)")
        else:
            report.problems.append(f"{relative}: an object that is not part of the audit layout")
    contents = fs.cat(list(parts), on_error="omit") if parts else {}  # object stores fetch concurrently
    for found, (relative, attempt, index) in parts.items():
        data = contents.get(found)
        if data is None:
            report.problems.append(f"{relative}: listed but could not be read")
            continue
        lines, torn = _split_lines(bytes(data))
        attempts.setdefault(attempt, []).append(_Part(relative, attempt, index, bytes(data), lines, torn))
    for attempt_parts in attempts.values():
        attempt_parts.sort(key=lambda part: part.number)
    return dict(sorted(attempts.items()))


def _split_lines(data: bytes) -> tuple[list[tuple[bytes, dict[str, Any] | None]], bool]:
    """The part's lines with their parsed JSON (None if unreadable), and whether its end was cut."""
    raw = data.split(b"\n")
    tail = raw.pop()  # b"" when the part ends with a newline, as every whole part does
    lines: list[tuple[bytes, dict[str, Any] | None]] = []
    for line in raw:
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        lines.append((line, parsed if isinstance(parsed, dict) else None))
    return lines, tail != b""


class _Merger:
    """Walk the parts in order: check every link, collect records and unsettled intents."""

    def __init__(self, report: AuditReport, attempts: dict[str, list[_Part]]) -> None:
        self.report = report
        self.attempts = attempts
        self.parts = {part.name: part for parts in attempts.values() for part in parts}
        self.headers: dict[str, dict[str, Any]] = {}
        self.intents: dict[tuple[str, str], AuditIntent] = {}
        self.settled: dict[tuple[str, str], str] = {}

    def merge(self) -> None:
        for attempt, parts in self.attempts.items():
            finished = False
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                self._check_part(part, last)
                finished = self._read_lines(part) or finished
            header = self.headers.get(attempt, {})
            newest = parts[-1]
            self.report.attempts.append(
                AuditAttempt(
                    name=attempt,
                    try_number=_int(header.get("try_number")),
                    parts=len(parts),
                    finished=finished,
                    last_part=newest.name,
                    last_part_sha256=newest.sha256,
                    last_line_sha256=newest.last_line_sha256,
                    dag_id=header.get("dag_id"),
                    task_id=header.get("task_id"),
                    run_id=header.get("run_id"),
                )
            )
        self.report.open_intents = [intent for key, intent in self.intents.items() if key not in self.settled]

    # -- links -----------------------------------------------------------------------------

    def _check_part(self, part: _Part, last: bool) -> None:
        problems = self.report.problems
        if part.torn:
            if last:
                self.report.notes.append(
                    f"{part.name}: its last line was cut short (the attempt was killed while writing "
                    "it); the complete lines before it are kept"
                )
            else:
                problems.append(f"{part.name}: its last line was cut short, but later parts follow it")
        if not part.lines or part.lines[0][1] is None or part.lines[0][1].get("type") != "part":
            problems.append(f"{part.name}: does not start with a 'part' line")
            return
        header = part.lines[0][1]
        self.headers.setdefault(part.attempt, header)
        if (header.get("attempt"), header.get("part")) != (part.attempt, part.number):
            problems.append(
                f"{part.name}: its first line says attempt {header.get('attempt')!r} part "
                f"{header.get('part')!r} (the part was renamed, moved or swapped)"
            )
        expected = part_name(part.attempt, part.number - 1) if part.number > 1 else None
        named = header.get("prev_part")
        if expected is not None and named != expected:
            problems.append(
                f"{part.name}: names {named!r} as the part before it, not {expected!r} "
                "(parts were renamed, removed or reordered)"
            )
        if named is None:
            if header.get("prev") is not None:
                problems.append(f"{part.name}: links to a previous line but names no previous part")
            return
        previous = self.parts.get(named)
        if previous is None:
            problems.append(f"{part.name}: names {named} as the part before it, which is missing")
            return
        if header.get("prev_part_sha256") != previous.sha256:
            problems.append(
                f"{named}: its SHA-256 is {previous.sha256[:16]}..., but {part.name} recorded "
                f"{str(header.get('prev_part_sha256'))[:16]}... (it was changed after)"
            )
        if header.get("prev") != previous.last_line_sha256:
            problems.append(f"{part.name}: line 1 does not link to the last line of {named}")

    def _read_lines(self, part: _Part) -> bool:
        """Check the line links of one part and take its records; True if it has an ``end`` line."""
        finished = False
        for number, (raw, line) in enumerate(part.lines, start=1):
            if number > 1 and (line or {}).get("prev") != sha256_hex(part.lines[number - 2][0]):
                self.report.problems.append(
                    f"{part.name}: line {number} does not link to line {number - 1} (a line was "
                    "edited, removed, inserted or reordered)"
                )
            if line is None:
                self.report.problems.append(f"{part.name}: line {number} is not a JSON object: {raw[:80]!r}")
                continue
            kind = line.get("type")
            if kind not in _LINE_TYPES:
                self.report.problems.append(f"{part.name}: line {number} has an unknown type {kind!r}")
            elif kind == "end":
                finished = True
            elif kind != "part":
                self._take(part, number, kind, line)
        return finished

    # -- records -----------------------------------------------------------------------------

    def _take(self, part: _Part, number: int, kind: str, line: dict[str, Any]) -> None:
        tid = str(line.get("transcript_id"))
        header = self.headers.get(part.attempt, {})
        if kind == "intent":
            self.intents[(part.attempt, tid)] = AuditIntent(
                transcript_id=tid,
                attempt=part.attempt,
                try_number=_int(header.get("try_number")),
                time=line.get("time"),
                region=header.get("region"),
                created=line.get("created"),
                status=line.get("status"),
            )
            return
        owner = str(line.get("attempt")) if kind == "recovered" else part.attempt
        if kind == "withdrawn":
            self.settled[(owner, tid)] = "withdrawn"
            return
        outcome = str(line.get("outcome"))
        if kind == "recovered" and outcome not in RECOVERED_OUTCOMES:
            self.report.problems.append(f"{part.name}: line {number} recovers with {outcome!r}")
        before = self.settled.get((owner, tid))
        if before is not None and before != "withdrawn":
            self.report.notes.append(
                f"transcript {tid} of attempt {owner} has two outcomes: {before} and {outcome} "
                f"({part.name} line {number}); the earlier attempt was still running when it was checked"
            )
        self.settled[(owner, tid)] = outcome
        intent = self.intents.get((owner, tid))
        owner_header = self.headers.get(owner, {})
        self.report.records.append(
            AuditRecord(
                transcript_id=tid,
                outcome=outcome,
                attempt=owner,
                try_number=_int(owner_header.get("try_number", line.get("try_number"))),
                time=line.get("time"),
                recovered_by=part.attempt if kind == "recovered" else None,
                intent_time=intent.time if intent else None,
                http_status=_int(line.get("http_status")),
                reason=line.get("reason"),
                created=line.get("created") or (intent.created if intent else None),
                status=line.get("status"),
                region=line.get("region") or header.get("region"),
                dry_run=bool(line.get("dry_run", header.get("dry_run", False))),
                dag_id=owner_header.get("dag_id"),
                task_id=owner_header.get("task_id"),
                run_id=owner_header.get("run_id"),
                part=part.name,
                line=number,
            )
        )


def _check_anchors(report: AuditReport, folder: Any, anchors: Iterable[Mapping[str, str] | None]) -> None:
    by_name = {attempt.last_part: attempt for attempt in report.attempts}
    for anchor in anchors:
        if not anchor:
            continue
        name = str(anchor.get("part", ""))
        found = by_name.get(name)
        if found is None:
            data = _read_part(folder, name)
            if data is None:
                report.problems.append(f"anchor {name}: the part is missing")
                continue
            sha = sha256_hex(data)
            report.problems.append(f"anchor {name}: parts were added after it to its attempt")
        else:
            sha = found.last_part_sha256 or ""
        if sha != anchor.get("sha256"):
            report.problems.append(f"anchor {name}: its SHA-256 differs from the one kept in the anchor")


def _read_part(folder: Any, name: str) -> bytes | None:
    path = folder / name
    try:
        return bytes(path.read_bytes())
    except (FileNotFoundError, OSError):
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


__all__ = [
    "AUDIT_FORMAT",
    "AuditAttempt",
    "AuditIntent",
    "AuditRecord",
    "AuditReport",
    "audit_folder",
    "encode_line",
    "part_name",
    "read_audit",
    "sha256_hex",
]
