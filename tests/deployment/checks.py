"""
What the deployment run is judged by, as small functions over plain data (unit-tested in
``test_checks.py``): the purge audit, the emulator's request log, and secrets left behind.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

#: A retried request comes at least this long after the 429 it answered (Retry-After is >= 1 s).
RETRY_AFTER_FLOOR_S = 0.9


def audited_deletions(audit_path: str) -> dict[int | None, set[str]]:
    """
    The transcripts a purge's audit (every attempt) says were deleted, by the deleting attempt's try.

    Read with the package's own :func:`read_audit`: an audit whose hash links are broken, that
    names a deletion twice, or that still holds intents no line settles (the retry checks those
    with a GET when it starts) is refused with an AssertionError.

    :param audit_path: the operator's ``audit_path`` (``file:///.../purge.jsonl``).
    """
    from airflow_provider_assemblyai.audit import read_audit

    report = read_audit(audit_path)
    if report.problems:
        raise AssertionError(f"the audit at {audit_path} is not intact: {report.problems[:5]}")
    if report.open_intents:
        open_ids = [intent.transcript_id for intent in report.open_intents]
        raise AssertionError(f"the audit at {audit_path} has unsettled intents: {open_ids[:5]}")
    deletions: dict[int | None, set[str]] = defaultdict(set)
    seen: set[str] = set()
    for record in report.records:
        if record.outcome == "deleted":
            if record.transcript_id in seen:
                raise AssertionError(f"the audit at {audit_path} claims {record.transcript_id} twice")
            seen.add(record.transcript_id)
            deletions[record.try_number].add(record.transcript_id)
    return dict(deletions)


def transcript_id(record: dict[str, Any]) -> str | None:
    """The transcript a request was about (``/v2/transcript/<id>``), or None for a list or create."""
    prefix = "/v2/transcript/"
    path = str(record["path"])
    return path[len(prefix) :] if path.startswith(prefix) else None


def successful_deletions(requests: Iterable[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """How many DELETEs answered 200 per ``(region, transcript id)``."""
    return Counter(
        (r["region"], str(transcript_id(r)))
        for r in requests
        if r["method"] == "DELETE" and r["status"] == 200 and transcript_id(r)
    )


def unabsorbed_rate_limits(requests: list[dict[str, Any]]) -> list[str]:
    """
    The 429s that were not retried: no later request for the same transcript, list query or create.

    Requests about one transcript are never concurrent here, so the retry of such a request must
    come at least :data:`RETRY_AFTER_FLOOR_S` after its 429 (it waited out Retry-After); an earlier
    one is reported too.

    :param requests: the emulator's request log, oldest first.
    """
    later: dict[tuple[str, str, str, str], list[datetime]] = defaultdict(list)
    for r in requests:
        later[(r["region"], r["method"], r["path"], r["query"])].append(datetime.fromisoformat(r["time"]))
    problems = []
    for r in requests:
        if r["status"] != 429:
            continue
        at = datetime.fromisoformat(r["time"])
        key = (r["region"], r["method"], r["path"], r["query"])
        after = [t for t in later[key] if t > at]
        if not after:
            problems.append(f"{r['method']} {r['path']}?{r['query']} ({r['region']}) at {at}: never retried")
        elif transcript_id(r) and (min(after) - at).total_seconds() < RETRY_AFTER_FLOOR_S:
            gap = (min(after) - at).total_seconds()
            problems.append(f"{r['method']} {r['path']} ({r['region']}): retried {gap:.2f}s after its 429")
    return problems


def longest_rate_limit_streak(requests: list[dict[str, Any]]) -> int:
    """The most 429s one request (same region, method, path and query) got in a row."""
    streaks: Counter[tuple[str, str, str, str]] = Counter()
    longest = 0
    for r in requests:
        key = (r["region"], r["method"], r["path"], r["query"])
        streaks[key] = streaks[key] + 1 if r["status"] == 429 else 0
        longest = max(longest, streaks[key])
    return longest


def leaks(secret: str, sources: dict[str, str | bytes]) -> list[str]:
    """The names of the sources whose text contains ``secret``."""
    needle = secret.encode()
    return sorted(
        name
        for name, text in sources.items()
        if (needle in text if isinstance(text, bytes) else secret in text)
    )


def files_under(folder: Path, exclude: Iterable[Path] = ()) -> dict[str, bytes]:
    """Every file below ``folder`` (not below an ``exclude`` folder), by path, as bytes."""
    skipped = [path.resolve() for path in exclude]
    out: dict[str, bytes] = {}
    for path in folder.rglob("*"):
        resolved = path.resolve()
        if path.is_file() and not any(resolved.is_relative_to(s) for s in skipped):
            out[str(path)] = path.read_bytes()
    return out
