"""
Packaging: the sdist and wheel ``python -m build`` makes, checked with twine, and the wheel installed
into a clean virtualenv (no repository on ``sys.path``) where Airflow's CLI must discover the provider.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_assemblyai

pytestmark = [pytest.mark.af3_only, pytest.mark.packaging]

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"
CONSTRAINTS = ROOT / "constraints" / "airflow-3.3.txt"
VERSION = airflow_provider_assemblyai.__version__
STEP_TIMEOUT_S = 180


@dataclass(frozen=True)
class Dist:
    """What ``python -m build`` produced."""

    wheel: Path
    sdist: Path


def _clean_env(**overrides: str) -> dict[str, str]:
    """The environment minus anything that would point a subprocess back at the repository or its venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTHON", "VIRTUAL_ENV", "PIP_", "UV_"))
    }
    return {**env, **overrides}


def _run(command: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, (
        f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """Build the sdist, then the wheel from that sdist (so the sdist is proven complete)."""
    outdir = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", outdir, ROOT], cwd=outdir)
    wheels, sdists = sorted(outdir.glob("*.whl")), sorted(outdir.glob("*.tar.gz"))
    assert [w.name for w in wheels] == [f"airflow_provider_assemblyai-{VERSION}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"airflow_provider_assemblyai-{VERSION}.tar.gz"]
    return Dist(wheel=wheels[0], sdist=sdists[0])


def test_twine_check_passes(dist: Dist) -> None:
    twine = Path(sys.executable).parent / "twine"
    result = _run([twine, "check", "--strict", dist.wheel, dist.sdist], cwd=dist.wheel.parent)
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_wheel_contents(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = wheel.namelist()
        info = f"airflow_provider_assemblyai-{VERSION}.dist-info"
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        metadata = wheel.read(f"{info}/METADATA").decode()
    assert "airflow_provider_assemblyai/py.typed" in names
    assert "airflow_provider_assemblyai/get_provider_info.py" in names
    assert "airflow_provider_assemblyai/testing/emulator.py" in names  # the emulator ships (testing extra)
    top_level = {name.split("/", 1)[0] for name in names}
    assert top_level == {"airflow_provider_assemblyai", info}, top_level
    stray = [
        n for n in names if "/tests/" in n or "example_dags" in n or "__pycache__" in n or n.endswith(".pyc")
    ]
    assert stray == []
    entry_point = "provider_info = airflow_provider_assemblyai.get_provider_info:get_provider_info"
    assert f"[apache_airflow_provider]\n{entry_point}" in entry_points
    assert "Requires-Dist: apache-airflow>=2.11.0" in metadata
    assert "Requires-Dist: apache-airflow-providers-common-compat" in metadata
    assert "License-Expression: Apache-2.0" in metadata


def test_sdist_contents(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as sdist:
        names = [m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name]
    for expected in ("pyproject.toml", "README.md", "LICENSE", "airflow_provider_assemblyai/py.typed"):
        assert expected in names
    junk = [
        n
        for n in names
        if n.startswith((".venv", ".git/", ".mypy_cache", ".ruff_cache")) or "__pycache__" in n
    ]
    assert junk == []


@pytest.fixture(scope="module")
def clean_venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the wheel (and Airflow 3 from the pinned constraints) installed."""
    venv = tmp_path_factory.mktemp("clean-venv")
    cwd = tmp_path_factory.mktemp("cwd")
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=cwd)
    _run(
        [UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", "-c", CONSTRAINTS, dist.wheel],
        cwd=cwd,
    )
    return venv


@pytest.fixture(scope="module")
def airflow_cli(clean_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run ``airflow providers list`` and ``airflow providers hooks`` (in parallel) in the clean venv."""
    cwd = tmp_path_factory.mktemp("cli-cwd")
    env = _clean_env(AIRFLOW_HOME=str(cwd / "airflow-home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    commands = {
        name: subprocess.Popen(
            [str(clean_venv / "bin" / "airflow"), "providers", name, "-o", "json"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("list", "hooks")
    }
    outputs: dict[str, Any] = {}
    try:
        for name, process in commands.items():
            stdout, stderr = process.communicate(timeout=STEP_TIMEOUT_S)
            assert process.returncode == 0, f"airflow providers {name} failed:\n{stdout}\n{stderr}"
            outputs[name] = json.loads(stdout[stdout.index("[") :])
        yield outputs
    finally:
        for process in commands.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def test_wheel_is_imported_from_the_clean_venv(clean_venv: Path, tmp_path: Path) -> None:
    code = "import airflow_provider_assemblyai as p, sys; print(p.__file__); print(sys.path)"
    result = _run([clean_venv / "bin" / "python", "-c", code], cwd=tmp_path)
    location, path = result.stdout.splitlines()[:2]
    assert Path(location).is_relative_to(clean_venv), location
    assert str(ROOT) not in path


def test_airflow_lists_the_provider(airflow_cli: dict[str, Any]) -> None:
    providers = {p["package_name"]: p for p in airflow_cli["list"]}
    assert providers["airflow-provider-assemblyai"]["version"] == VERSION


def test_airflow_lists_the_hook(airflow_cli: dict[str, Any]) -> None:
    hooks = {h["connection_type"]: h for h in airflow_cli["hooks"]}
    assert hooks["assemblyai"]["class"] == "airflow_provider_assemblyai.hooks.assemblyai.AssemblyAIHook"
    assert hooks["assemblyai"]["package_name"] == "airflow-provider-assemblyai"
    assert hooks["assemblyai"]["hook_name"] == "AssemblyAI"
