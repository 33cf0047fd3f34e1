"""
pytest plugin: ``--lane-results=docs/lanes/X.Y.json`` writes what a compatibility lane's run proved.

Loaded by the Makefile's lane targets (``-p scripts.lane_results``). At the end of the session it writes
the lane (the file's stem), the versions that really ran (Airflow, Python, common-compat, Task SDK), the
test selection (the ``-m`` expression, empty for the full suite), pytest's counts, the result, the date
and the duration, plus the upstream caveats the run met: the reasons of the tests that xfailed and every
``record_property("upstream_caveat", text)`` of a test. ``scripts/compat_table.py`` renders the README's
and docs/compatibility.md's compatibility tables from these files.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

CAVEAT_PROPERTY = "upstream_caveat"
COUNTED = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "deselected")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--lane-results",
        metavar="PATH",
        default=None,
        help="write this run's lane result (versions, counts, caveats) as JSON to PATH",
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--lane-results")
    if path:
        config.pluginmanager.register(LaneRecorder(Path(path), config), "lane-results-recorder")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


class LaneRecorder:
    """Collects the caveats while the tests run and writes the result file when the session ends."""

    def __init__(self, path: Path, config: pytest.Config) -> None:
        self.path = path
        self.config = config
        self.caveats: set[str] = set()
        self.started = time.monotonic()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "wasxfail", None) and report.skipped:
            self.caveats.add(str(report.wasxfail))
        self.caveats.update(str(value) for name, value in report.user_properties if name == CAVEAT_PROPERTY)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        reporter: Any = self.config.pluginmanager.get_plugin("terminalreporter")
        stats = reporter.stats if reporter is not None else {}
        counts = {key: len(stats.get(key, [])) for key in COUNTED}  # as in pytest's summary line
        result = {
            "lane": self.path.stem,
            "airflow": _version("apache-airflow"),
            "task_sdk": _version("apache-airflow-task-sdk"),
            "common_compat": _version("apache-airflow-providers-common-compat"),
            "python": platform.python_version(),
            "markers": self.config.getoption("markexpr") or "",
            "paths": [str(arg) for arg in self.config.args if arg != "tests"],
            "result": "passed" if exitstatus == 0 else "failed",
            "counts": counts,
            "duration_s": round(time.monotonic() - self.started),
            "date": datetime.now(timezone.utc).date().isoformat(),
            "caveats": sorted(self.caveats),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
