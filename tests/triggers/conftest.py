"""Fixtures for trigger tests: an emulator behind ``assemblyai_default``, and shared-client cleanup."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from airflow.triggers.base import BaseTrigger

from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from airflow_provider_assemblyai.triggers import assemblyai as trigger_module
from tests.conftest import TEST_API_KEY


@pytest.fixture
def emulator_server(set_connection: Callable[..., None]) -> Iterator[AssemblyAIEmulator]:
    """An emulator accepting ``TEST_API_KEY``, behind ``assemblyai_default`` (US) with ``max_retries=0``.

    Without hook-level retries every 429/5xx/dropped connection reaches the trigger, whose own
    retry-on-next-poll is what these tests are about.
    """
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,)) as emu:
        set_connection(password=TEST_API_KEY, region="us", base_url=emu.base_url("us"), max_retries=0)
        yield emu


@pytest.fixture
def emulator(emulator_server: AssemblyAIEmulator, shared_clients: None) -> AssemblyAIEmulator:
    """``emulator_server``; the shared clients are closed before the emulator stops."""
    return emulator_server


class DeadlineClock:
    """The wall clock (``time.time``) TranscriptStatusTrigger reads its deadline from, moved by the test."""

    def __init__(self) -> None:
        self._clock = ManualClock()

    def time(self) -> float:
        """Now, as a Unix timestamp."""
        return self._clock.now().timestamp()

    def advance(self, seconds: float) -> None:
        """Move the deadline clock forward (the trigger's sleeps between polls stay real and short)."""
        self._clock.advance(timedelta(seconds=seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)  # monotonic() and the rest: the real ones


@pytest.fixture
def deadline_clock(monkeypatch: pytest.MonkeyPatch) -> DeadlineClock:
    """A manual clock for the triggers' deadlines: a test reaches the deadline by advancing it."""
    clock = DeadlineClock()
    monkeypatch.setattr(trigger_module, "time", clock)
    return clock


AnyTrigger = TypeVar("AnyTrigger", bound=BaseTrigger)


def recreate(trigger: AnyTrigger) -> AnyTrigger:
    """Re-create a trigger from serialize() the way the triggerer does (import the classpath)."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert type(rebuilt) is type(trigger)
    return rebuilt  # type: ignore[no-any-return]
