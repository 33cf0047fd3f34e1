"""
The README's first hour, run as written: the install from a clone, then the testing recipe from an
empty directory (a throwaway ``AIRFLOW_HOME``, ``airflow db migrate``, a DAG in the DAGs folder, a
pytest file using the emulator fixtures), in a fresh virtualenv and a clean environment.

Two substitutions, both forced by the sandbox rather than by the recipe: the clone URL becomes this
repository's path, cloned under the same name (no network), and ``pip install`` becomes
``uv pip install`` (the same resolution from the same constraints file, from uv's cache, in seconds
instead of minutes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.af3_only, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLONE_URL = "https://github.com/airflow-provider-assemblyai/airflow-provider-assemblyai.git"


def readme_block(marker: str) -> str:
    """The fenced bash block that follows ``<!-- first-hour:<marker> -->`` in the README."""
    match = re.search(rf"<!-- first-hour:{marker} -->\n```bash\n(.*?)\n```\n", README.read_text(), re.DOTALL)
    assert match, f"README.md has no bash block after <!-- first-hour:{marker} -->"
    return match.group(1)


def clean_env(tmp_path: Path) -> dict[str, str]:
    """This test run's environment minus everything that points at the repository, its venv or Airflow."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "_AIRFLOW", "PYTHON", "VIRTUAL_ENV", "PIP_", "PYTEST"))
    }
    # ``uv`` and ``git`` stay reachable; the repository's own venv is not the active one.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    for key in ("UV_CACHE_DIR", "XDG_CACHE_HOME"):  # keep using the machine's uv cache
        if key in os.environ:
            env[key] = os.environ[key]
    env.setdefault("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))
    return env


def test_install_and_testing_recipe_work_from_an_empty_directory(tmp_path: Path) -> None:
    install = readme_block("install")
    recipe = readme_block("recipe")
    assert CLONE_URL in install
    assert "pip install -c" in install
    install = install.replace(CLONE_URL, f"{ROOT} airflow-provider-assemblyai")
    script = "\n".join(
        [
            "set -euo pipefail",
            install.replace("pip install -c", "uv pip install --quiet -c"),
            recipe,
        ]
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=workdir,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"\b2 passed\b", result.stdout), result.stdout[-3000:]
    project = workdir / "my-airflow-project"
    assert (project / ".airflow-home" / "airflow.db").exists()
    # The provider came from the fresh venv, not from this repository's editable install.
    installed = list((workdir / "venv").glob("lib/python*/site-packages/airflow_provider_assemblyai"))
    assert len(installed) == 1, installed
