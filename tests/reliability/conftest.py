"""Fixtures for the reliability suite: an emulator behind ``assemblyai_default``, respx, shared clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import respx

from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.conftest import TEST_API_KEY


@pytest.fixture
async def shared_clients() -> AsyncIterator[None]:
    """Close the async clients shared on the test's event loop before the loop ends."""
    yield
    await AssemblyAIHook.aclose_shared_clients()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """A respx router: every request must match a route, so nothing leaves the process."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[AssemblyAIEmulator]:
    """One emulator for the suite (starting one per test costs more than the tests themselves)."""
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), queued_seconds=0, processing_seconds=0) as emulator:
        yield emulator


@pytest.fixture
def emu(
    shared_emulator: AssemblyAIEmulator, set_connection: Callable[..., None]
) -> Iterator[AssemblyAIEmulator]:
    """The shared emulator, reset (no transcripts, log or faults); ``assemblyai_default`` is its US region."""
    shared_emulator.reset()
    set_connection(region="us", base_url=shared_emulator.base_url("us"), max_retries=3, timeout=10)
    yield shared_emulator
    shared_emulator.reset()
