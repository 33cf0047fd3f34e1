"""
Transcript ids and statuses, and the argument checks of the DAG-facing classes (operators, sensor).

Deliberately light (no pydantic, no httpx): operators and sensors validate their arguments while the
scheduler parses DAG files, so this module must cost next to nothing to import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import TypeVar

_Given = TypeVar("_Given")
_Parsed = TypeVar("_Parsed")

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


# -- PurgeTranscriptsOperator's arguments ------------------------------------------------------


def parse_when_known(value: _Given, parse: Callable[[_Given], _Parsed]) -> _Given | _Parsed:
    """
    ``parse(value)`` if ``value`` is known when the DAG is defined, else ``value`` as it is.

    :param value: an operator argument: a plain value, a Jinja template or an XComArg.
    :param parse: the check (and normalisation) to apply to a plain value.
    """
    return value if is_known_later(value) else parse(value)


def is_known_later(value: object) -> bool:
    """Whether ``value`` is only known at run time: a Jinja template, or an XComArg (any non-plain value)."""
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, (list, tuple)):
        return any(is_known_later(item) for item in value)
    return not isinstance(value, (bool, int, float, bytes, dict, set, frozenset, timedelta, date, type(None)))


def check_purge_selection(
    transcript_ids: object, older_than: object, created_before: object, *, rendered: bool = False
) -> None:
    """
    Check that a purge selects exactly one way: ids, or one cutoff (``older_than`` or ``created_before``).

    :param transcript_ids: the ids (None: not given).
    :param older_than: the age cutoff (None: not given).
    :param created_before: the date cutoff (None: not given).
    :param rendered: whether the values are rendered templates (for the error message).
    """
    if older_than is not None and created_before is not None:
        raise ValueError(
            f"older_than ({older_than!r}) and created_before ({created_before!r}) cannot be "
            "combined: give one cutoff"
        )
    has_cutoff = older_than is not None or created_before is not None
    if transcript_ids is None and not has_cutoff:
        raise ValueError(
            "PurgeTranscriptsOperator needs transcript_ids, older_than or created_before"
            + (" (the cutoff rendered to nothing)" if rendered else "")
            + "; to purge every transcript, say so with older_than=timedelta(0)"
        )
    if transcript_ids is not None and has_cutoff:
        raise ValueError(
            "transcript_ids cannot be combined with older_than/created_before: the API gives no "
            "creation time for a single transcript; filter the ids upstream"
        )


_TRUE_TEXTS = frozenset({"true", "yes", "on", "1"})
_FALSE_TEXTS = frozenset({"false", "no", "off", "0"})


def parse_dry_run(value: object) -> bool:
    """A bool, or the text a template renders for one (``'True'``, ``'false'``...)."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE_TEXTS or text in _FALSE_TEXTS:
        return text in _TRUE_TEXTS
    raise ValueError(
        f"dry_run must be true or false (a bool, or a rendered 'True'/'False', 'yes'/'no', '1'/'0'), "
        f"got {value!r}: refusing to guess whether to delete"
    )


def parse_older_than(value: object) -> timedelta | None:
    """A timedelta >= 0, or an ISO 8601 duration (``'P30D'``); ``None``/``'None'``/blank: not given."""
    if is_rendered_nothing(value):
        return None
    expected = (
        "older_than must be a timedelta >= 0 or an ISO 8601 duration such as 'P30D' (30 days) or 'PT12H'"
    )
    if isinstance(value, str) and value.strip().upper().startswith("P"):
        duration = _iso_duration(value.strip().upper(), expected)
    elif isinstance(value, timedelta):
        duration = value
    elif isinstance(value, (int, float)) or (isinstance(value, str) and _is_number(value)):
        raise ValueError(
            f"{expected}; got {value!r}, a number without a unit (days? seconds?), refused rather "
            "than guessed"
        )
    else:
        hint = (
            " (a template renders a timedelta as text: render an ISO 8601 duration instead, "
            "e.g. 'P{{ params.days }}D')"
            if isinstance(value, str) and "day" in value
            else ""
        )
        raise ValueError(f"{expected}, got {value!r}{hint}")
    if duration < timedelta(0):
        raise ValueError(f"{expected}, got {value!r}")
    return duration


def _iso_duration(text: str, expected: str) -> timedelta:
    import pendulum

    try:
        parsed = pendulum.parse(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, pendulum.Duration):
        raise ValueError(f"{expected}, got {text!r}")
    if parsed.years or parsed.months:
        raise ValueError(
            f"{expected}, got {text!r}: months and years have no fixed length, use days (e.g. 'P90D')"
        )
    return timedelta(seconds=parsed.total_seconds())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_created_before(value: object) -> datetime | None:
    """
    Parse created_before (a datetime or date, or an ISO 8601 string) to aware UTC; nothing: None.

    :param value: the argument, plain or rendered; naive values are UTC.
    """
    return None if is_rendered_nothing(value) else _utc_cutoff(value)


def _utc_cutoff(value: object) -> datetime:
    parsed: object = value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            parsed = None
    elif isinstance(value, date) and not isinstance(value, datetime):
        parsed = datetime(value.year, value.month, value.day)
    if not isinstance(parsed, datetime):
        raise ValueError(
            f"created_before must be a datetime or an ISO 8601 string such as '2024-06-01T00:00:00Z', "
            f"got {value!r}"
        )
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_max_deletions(value: object) -> int | None:
    """A whole number >= 1, or its rendered text; ``None``/``'None'``: no cap. Blank is refused."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return check_positive_int(value, argument="max_deletions")


def parse_purge_statuses(value: object) -> tuple[str, ...]:
    """Statuses as a list, or rendered text: ``'error'``, ``'completed,error'``, ``"['error']"``."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "("):
            import ast

            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ValueError(f"statuses must be a list of statuses, got {text!r}") from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()] or text
    return finished_statuses(value, reason="a purge never deletes {unfinished} transcripts")


def finished_statuses(value: object, *, reason: str) -> tuple[str, ...]:
    """
    Check ``statuses`` names finished statuses only (``completed``, ``error``); return their values.

    :param value: the statuses given (a status, or a list of them).
    :param reason: why unfinished ones are refused; ``{unfinished}`` names them in the error.
    """
    parsed = TranscriptStatus.parse_many(value, argument="statuses")
    unfinished = [status.value for status in parsed if not status.is_terminal]
    if unfinished:
        raise ValueError(
            f"statuses must only contain 'completed' and/or 'error', got {value!r}: "
            + reason.format(unfinished="/".join(unfinished))
        )
    return tuple(status.value for status in parsed)


def parse_transcript_ids(value: object) -> tuple[str, ...]:
    """Check the rendered transcript_ids: a list of valid ids (deduplicated, order kept)."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple, Sequence)):
        raise ValueError(
            f"transcript_ids must be a list of transcript ids, got {type(value).__name__} "
            f"{str(value)[:80]!r} (a Jinja template renders to a string: pass the upstream task's "
            "XComArg, e.g. transcript_ids=upstream.output, or set render_template_as_native_obj=True)"
        )
    ids: list[str] = []
    for position, item in enumerate(value):
        try:
            ids.append(validate_transcript_id(item))
        except ValueError as error:
            raise ValueError(f"transcript_ids[{position}]: {error}") from None
    return tuple(dict.fromkeys(ids))


def check_positive_int(value: object, *, argument: str, maximum: int | None = None) -> int:
    """
    Return ``value`` if it is an integer from 1 (to ``maximum``), else raise ValueError naming it.

    :param value: the candidate.
    :param argument: the argument name to put in the error message.
    :param maximum: the largest value allowed (None: no limit).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (maximum and value > maximum):
        expected = f"an integer from 1 to {maximum}" if maximum else "an integer >= 1 (or None)"
        raise ValueError(f"{argument} must be {expected}, got {value!r}")
    return value


def check_rate_limit(value: object) -> float | None:
    """Return ``max_requests_per_second`` as a float > 0, or None (no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"max_requests_per_second must be a number > 0 (or None), got {value!r}")
    return float(value)


def check_audit_path(value: object) -> str | None:
    """Return the rendered ``audit_path`` stripped (None: no audit), else raise ValueError naming it."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"audit_path must be a URI such as 'file:///audit/run.jsonl', got {value!r}")
    return value.strip()
