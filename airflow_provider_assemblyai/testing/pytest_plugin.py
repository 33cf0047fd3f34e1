"""pytest fixtures for the AssemblyAI emulator (auto-loaded through the ``pytest11`` entry point).

* ``assemblyai_emulator`` - function scope: a fresh emulator (API key ``"test-key"``) per test,
  stopped afterwards. Customise with ``@pytest.mark.assemblyai_emulator(queued_seconds=0, ...)``
  (any ``AssemblyAIEmulator`` keyword).
* ``assemblyai_emulator_session`` - session scope: one shared emulator; call ``.reset()`` at the
  start of each test that uses it.
* ``assemblyai_emulator_conn`` - function scope: ``assemblyai_emulator`` plus
  ``AIRFLOW_CONN_ASSEMBLYAI_DEFAULT`` set (US region) for the test's duration.

The emulator is imported lazily, so this plugin costs nothing when the ``testing`` extra is absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_assemblyai.testing.emulator import AssemblyAIEmulator

__all__ = ["assemblyai_emulator", "assemblyai_emulator_conn", "assemblyai_emulator_session"]

DEFAULT_KEY = "test-key"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``assemblyai_emulator`` marker."""
    config.addinivalue_line(
        "markers", "assemblyai_emulator(**kwargs): AssemblyAIEmulator keyword arguments for the fixture"
    )


def _start(**kwargs: Any) -> AssemblyAIEmulator:
    from airflow_provider_assemblyai.testing import AssemblyAIEmulator

    kwargs.setdefault("api_keys", (DEFAULT_KEY,))
    return AssemblyAIEmulator(**kwargs).start()


@pytest.fixture
def assemblyai_emulator(request: pytest.FixtureRequest) -> Iterator[AssemblyAIEmulator]:
    """A fresh emulator for one test (US + EU on free loopback ports)."""
    marker = request.node.get_closest_marker("assemblyai_emulator")
    emu = _start(**(marker.kwargs if marker else {}))
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def assemblyai_emulator_session() -> Iterator[AssemblyAIEmulator]:
    """One emulator for the whole session; call ``reset()`` between tests."""
    emu = _start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def assemblyai_emulator_conn(
    assemblyai_emulator: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> AssemblyAIEmulator:
    """``assemblyai_emulator`` with ``AIRFLOW_CONN_ASSEMBLYAI_DEFAULT`` pointing at its US region."""
    for name, value in assemblyai_emulator.connection_env("us").items():
        monkeypatch.setenv(name, value)
    return assemblyai_emulator
