"""
What the deployment run is judged by, as small functions over plain data (unit-tested in
``test_checks.py``): the purge audit, the emulator's request log, and secrets left behind.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

#: A retried request comes at least this long after the 429 it answered (Retry-After is >= 1 s).
RETRY_AFTER_FLOOR_S = 0.9


def audited_deletions(audit_path: Path) -> dict[str, dict[str, Any]]:
    """
    The transcripts one purge attempt's audit file says it deleted: ``{id: audit line}``.

    Today's format: one JSON object per line, ``outcome`` ``deleted`` for a deletion. A last line
    without its newline was cut by a killed worker and is not a claim; any other bad line is an error.
    (The lead switches this to the package's ``read_audit`` reader when that lands.)

    :param audit_path: the JSON-lines file of one attempt.
    """
    text = audit_path.read_text(encoding="utf-8")
    lines = text.split("\n")
    complete, torn = lines[:-1], lines[-1]
    deletions: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(complete, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{audit_path}:{number} is not JSON: {line[:200]!r}") from None
        if record.get("outcome") == "deleted":
            if record["transcript_id"] in deletions:
                raise AssertionError(f"{audit_path}:{number} claims {record['transcript_id']} twice")
            deletions[record["transcript_id"]] = record
    del torn  # a partial last line (no newline yet) claims nothing
    return deletions


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
