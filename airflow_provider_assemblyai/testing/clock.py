"""Clocks for the emulator: real UTC time by default, a manual clock for deterministic tests."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "RealClock", "format_timestamp", "to_utc"]


@runtime_checkable
class Clock(Protocol):
    """Anything with a ``now()`` returning an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current time (timezone-aware, UTC)."""
        ...


def to_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def format_timestamp(value: datetime) -> str:
    """Format like the real API: ``2024-03-11T21:29:59.936851`` (UTC, no offset, microseconds)."""
    return to_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds")


class RealClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that only moves when told to (thread-safe)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = to_utc(start) if start is not None else datetime.now(timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the clock's current time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float | timedelta) -> datetime:
        """Move the clock forward and return the new time."""
        delta = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if delta < timedelta(0):
            raise ValueError("a ManualClock cannot go backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, value: datetime) -> None:
        """Jump to ``value`` (must not be earlier than the current time)."""
        new = to_utc(value)
        with self._lock:
            if new < self._now:
                raise ValueError("a ManualClock cannot go backwards")
            self._now = new
