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


#: What a missing value looks like once a template rendered it: ``None`` XComs render as ``'None'``.
_NOTHING_RENDERED = frozenset({"", "none", "null"})


def validate_transcript_id(value: object, *, argument: str = "transcript_id") -> str:
    """
    Return ``value`` stripped of surrounding whitespace if it is a well-formed transcript id, else
    raise ValueError naming it.

    One rule everywhere (operators, sensor, trigger, hook, purge): strip, then validate. A
    transcript id is a non-empty string of ASCII letters, digits, ``-`` and ``_``, at most 128
    characters: anything else (slashes, ``..``, ``?``, ``#``, ``%``, inner whitespace, look-alike
    unicode, non-strings) could address another URL than the one intended, so it is refused before
    any request. ``None``, and the texts ``'None'``, ``'null'`` and blank that a template renders
    for a missing value (an upstream task that returned nothing), are refused with that diagnosis.

    :param value: the candidate transcript id.
    :param argument: the argument name to put in the error message.
    """
    if is_rendered_nothing(value):
        raise nothing_rendered_error(argument, value, "transcript id")
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str):
        raise ValueError(f"{argument} must be a string, got {type(value).__name__} {_short_repr(value)}")
    if len(text) > MAX_TRANSCRIPT_ID_LENGTH:
        raise ValueError(
            f"{argument} {_short_repr(value)} is {len(text)} characters long; "
            f"expected at most {MAX_TRANSCRIPT_ID_LENGTH}"
        )
    if not _TRANSCRIPT_ID.fullmatch(text):
        raise ValueError(
            f"{argument} {_short_repr(value)} is not a valid transcript id; "
            "expected only ASCII letters, digits, '-' and '_'"
        )
    return text


def is_rendered_nothing(value: object) -> bool:
    """
    Whether ``value`` is a missing value: ``None``, or what a template renders for one.

    ``'None'`` (a None XCom or param), ``'null'`` (JSON) and blank text, any case and whitespace.

    :param value: a rendered argument.
    """
    return value is None or (isinstance(value, str) and value.strip().lower() in _NOTHING_RENDERED)


def nothing_rendered_error(argument: str, value: object, expected: str) -> ValueError:
    """
    The error for a missing value (see :func:`is_rendered_nothing`) where ``expected`` was needed.

    :param argument: the argument name.
    :param value: what it rendered to.
    :param expected: what it should have been, e.g. ``"transcript id"``.
    """
    if value is None or value == "":
        shown = "None" if value is None else "empty ('')"
    else:
        shown = repr(value) if str(value).strip() else f"blank ({value!r})"
    return ValueError(
        f"{argument} is {shown}: there is no {expected}, most likely because an upstream task returned "
        "nothing (a None XCom renders as 'None' in a template); nothing was sent to AssemblyAI"
    )


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
