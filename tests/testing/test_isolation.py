"""The emulator stays independent of the client side and of Airflow."""

from __future__ import annotations

import subprocess
import sys

import pytest

import airflow_provider_assemblyai.testing as testing_pkg

CHECK = """
import sys
import airflow_provider_assemblyai.testing.pytest_plugin
assert not any(m.startswith(("starlette", "uvicorn")) for m in sys.modules), "plugin import must be lazy"
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
import airflow_provider_assemblyai.testing.__main__
with AssemblyAIEmulator() as emu:
    emu.seed(3)
bad = sorted(
    m for m in sys.modules
    if m == "airflow" or m.startswith("airflow.")
    or m.split(".")[:2] in (["airflow_provider_assemblyai", p] for p in
        ("hooks", "models", "exceptions", "operators", "sensors", "triggers"))
)
print("BAD", bad)
"""


def test_emulator_imports_no_airflow_and_no_client_code() -> None:
    cmd = [sys.executable, "-c", CHECK]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    assert "BAD []" in out.stdout, out.stdout + out.stderr


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError):
        _ = testing_pkg.NoSuchThing  # type: ignore[attr-defined]
