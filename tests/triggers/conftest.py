"""Fixtures for trigger tests: an emulator behind ``assemblyai_default``, and shared-client cleanup."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import pytest
from airflow.triggers.base import BaseTrigger

from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.conftest import TEST_API_KEY


@pytest.fixture
async def close_shared_clients() -> AsyncIterator[None]:
    """Close the loop's shared AsyncClients before pytest-asyncio closes the loop."""
    yield
    await AssemblyAIHook.aclose_shared_clients()


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
def emulator(emulator_server: AssemblyAIEmulator, close_shared_clients: None) -> AssemblyAIEmulator:
    """``emulator_server``; the shared clients are closed before the emulator stops."""
    return emulator_server


AnyTrigger = TypeVar("AnyTrigger", bound=BaseTrigger)


def recreate(trigger: AnyTrigger) -> AnyTrigger:
    """Re-create a trigger from serialize() the way the triggerer does (import the classpath)."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert type(rebuilt) is type(trigger)
    return rebuilt  # type: ignore[no-any-return]
