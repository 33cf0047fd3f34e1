"""Local emulator of AssemblyAI's transcript API, for testing DAGs and hooks offline.

Needs the ``testing`` extra (starlette + uvicorn), imported lazily so that merely importing this
package (e.g. by the pytest plugin) works without it. It imports nothing from the provider's
client side, so client bugs cannot leak into it. See docs/emulator.md.

>>> from airflow_provider_assemblyai.testing import AssemblyAIEmulator
>>> with AssemblyAIEmulator(api_keys=("test-key",)) as emu:
...     ids = emu.seed(100)
...     urls = emu.base_url("us"), emu.base_url("eu")

pytest fixtures (from ``pytest_plugin``): ``assemblyai_emulator`` (per test),
``assemblyai_emulator_session`` (shared; call ``reset()``) and ``assemblyai_emulator_conn``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airflow_provider_assemblyai.testing.clock import Clock, ManualClock, RealClock
from airflow_provider_assemblyai.testing.config import EmulatorConfig
from airflow_provider_assemblyai.testing.faults import Fault, FaultKind
from airflow_provider_assemblyai.testing.state import REGIONS, RequestRecord

if TYPE_CHECKING:
    from airflow_provider_assemblyai.testing.emulator import AssemblyAIEmulator

__all__ = [
    "REGIONS",
    "AssemblyAIEmulator",
    "Clock",
    "EmulatorConfig",
    "Fault",
    "FaultKind",
    "ManualClock",
    "RealClock",
    "RequestRecord",
]


def __getattr__(name: str) -> Any:
    """Import the server-backed ``AssemblyAIEmulator`` on first use."""
    if name == "AssemblyAIEmulator":
        try:
            module = importlib.import_module("airflow_provider_assemblyai.testing.emulator")
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                "the AssemblyAI emulator needs starlette and uvicorn: "
                "pip install 'airflow-provider-assemblyai[testing]'"
            ) from exc
        value = module.AssemblyAIEmulator
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
