"""
Transcript ids and statuses, and the argument checks shared by the DAG-facing classes.

Deliberately light (no pydantic, no httpx): operators and sensors validate their arguments while the
scheduler parses DAG files, so this module must cost next to nothing to import.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from enum import Enum

MAX_TRANSCRIPT_ID_LENGTH = 128
_TRANSCRIPT_ID = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


class TranscriptStatus(str, Enum):
    """The status of a transcript; ``completed`` and ``error`` are terminal."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ERROR = "error"

    @property
    def is_terminal(self) -> bool:
        """Whether the transcript will not change status any more (and so can be deleted)."""
        return self in (TranscriptStatus.COMPLETED, TranscriptStatus.ERROR)

    @classmethod
    def parse_many(cls, values: object, *, argument: str) -> tuple[TranscriptStatus, ...]:
        """
        Parse a status or a collection of statuses, naming ``argument`` and the bad value on error.

        :param values: a status string, a TranscriptStatus, or an iterable of them.
        :param argument: the argument name to put in the error message.
        """
        items = [values] if isinstance(values, (str, TranscriptStatus)) else values
        if not isinstance(items, (list, tuple, set, frozenset)) or not items:
            raise ValueError(f"{argument} must be a non-empty list of statuses, got {values!r}")
        allowed = [status.value for status in cls]
        parsed = []
        for item in items:
            try:
                parsed.append(cls(item))
            except ValueError:
                raise ValueError(
                    f"{argument} has unknown status {item!r}; expected one of {allowed}"
                ) from None
        return tuple(dict.fromkeys(parsed))


def validate_transcript_id(value: object) -> str:
    """
    Return ``value`` if it is a well-formed transcript id, else raise ValueError naming it.

    A transcript id is a non-empty string of ASCII letters, digits, ``-`` and ``_``, at most 128
    characters: anything else (slashes, ``..``, ``?``, ``#``, ``%``, whitespace, look-alike unicode,
    non-strings) could address another URL than the one intended, so it is refused before any request.

    :param value: the candidate transcript id.
    """
    if not isinstance(value, str):
        raise ValueError(f"transcript_id must be a string, got {type(value).__name__} {_short_repr(value)}")
    if not value:
        raise ValueError("transcript_id must not be empty")
    if len(value) > MAX_TRANSCRIPT_ID_LENGTH:
        raise ValueError(
            f"transcript_id {_short_repr(value)} is {len(value)} characters long; "
            f"expected at most {MAX_TRANSCRIPT_ID_LENGTH}"
        )
    if not _TRANSCRIPT_ID.fullmatch(value):
        raise ValueError(
            f"transcript_id {_short_repr(value)} is not a valid transcript id; "
            "expected only ASCII letters, digits, '-' and '_'"
        )
    return value


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...'"


def parse_status_sets(
    target_statuses: object, failure_statuses: object
) -> tuple[tuple[TranscriptStatus, ...], tuple[TranscriptStatus, ...]]:
    """
    Parse and check the target and failure statuses: known, non-empty target, disjoint.

    :param target_statuses: the statuses that end the wait successfully.
    :param failure_statuses: the statuses that end it as a failure (may be empty).
    """
    targets = TranscriptStatus.parse_many(target_statuses, argument="target_statuses")
    failures: tuple[TranscriptStatus, ...] = ()
    if failure_statuses is None or (
        isinstance(failure_statuses, (list, tuple, set, frozenset)) and not failure_statuses
    ):
        failures = ()
    else:
        failures = TranscriptStatus.parse_many(failure_statuses, argument="failure_statuses")
    overlap = sorted(status.value for status in set(targets) & set(failures))
    if overlap:
        raise ValueError(f"target_statuses and failure_statuses must not overlap; both contain {overlap}")
    return targets, failures


def check_positive_seconds(
    value: object, *, argument: str = "poll_interval", allow_timedelta: bool = False
) -> float:
    """
    Return ``value`` as a float if it is a positive, finite number of seconds, else raise ValueError.

    :param value: the candidate duration.
    :param argument: the argument name to put in the error message.
    :param allow_timedelta: also accept a ``datetime.timedelta``.
    """
    seconds = value.total_seconds() if allow_timedelta and isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
        expected = "a positive number of seconds" + (" or a timedelta" if allow_timedelta else "")
        raise ValueError(f"{argument} must be {expected}, got {value!r}")
    return float(seconds)


def check_conn_id(value: object) -> str:
    """
    Return ``value`` if it is a usable connection id, else raise ValueError naming it.

    :param value: the candidate ``assemblyai_conn_id`` (possibly rendered from a template).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"assemblyai_conn_id must be a non-empty string (a connection id), got {value!r}")
    return value


def is_template(value: object) -> bool:
    """Whether ``value`` is a Jinja template string, only checkable once rendered."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)
