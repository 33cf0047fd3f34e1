"""Fixtures for the reliability suite: ``emu`` is one emulator for the suite, reset for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.conftest import TEST_API_KEY


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[AssemblyAIEmulator]:
    """One emulator for the suite (starting one per test costs more than the tests themselves)."""
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), queued_seconds=0, processing_seconds=0) as emulator:
        yield emulator


@pytest.fixture
def assemblyai_emulator(shared_emulator: AssemblyAIEmulator) -> Iterator[AssemblyAIEmulator]:
    """Here, the emulator of ``emu`` is the shared one, reset (no transcripts, log or faults)."""
    shared_emulator.reset()
    yield shared_emulator
    shared_emulator.reset()


@pytest.fixture
def connection_extra() -> dict[str, object]:
    """``emu``'s connection: three hook retries, a 10 s timeout."""
    return {"max_retries": 3, "timeout": 10}
