"""
DAG parse cost: what importing (and defining) the provider's operator and sensor adds to a DAG file.

Each case runs in a fresh interpreter: ``python -X importtime -c "import airflow.sdk; <mark>;
<import>; <mark>; <define a task in a DAG>"``. The import cost is the sum of the self-times of the
modules imported after the first mark (what the import line adds beyond ``import airflow.sdk``);
wall times are ``time.perf_counter`` around each line. Medians over the runs.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

from bench._emulator import child_env, project_root

FULL_RUNS = 7
MARK = "@@bench-mark"

#: (label, import line, task definition inside ``with DAG(...)``, or "").
CASES: tuple[tuple[str, str, str], ...] = (
    (
        "Airflow base classes (every DAG pays these)",
        "from airflow.sdk import DAG, BaseOperator, BaseSensorOperator",
        "",
    ),
    (
        "DeleteTranscriptOperator (this provider)",
        "from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator",
        "DeleteTranscriptOperator(task_id='delete', transcript_id='{{ params.id }}')",
    ),
    (
        "TranscriptSensor (this provider)",
        "from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor",
        "TranscriptSensor(task_id='wait', transcript_id='{{ params.id }}', deferrable=True)",
    ),
    (
        "HttpOperator (HTTP provider)",
        "from airflow.providers.http.operators.http import HttpOperator",
        "HttpOperator(task_id='delete', method='DELETE', endpoint='v2/transcript/{{ params.id }}')",
    ),
    (
        "HttpSensor (HTTP provider)",
        "from airflow.providers.http.sensors.http import HttpSensor",
        "HttpSensor(task_id='wait', endpoint='v2/transcript/{{ params.id }}', deferrable=True)",
    ),
    (
        "airflow.providers.common.compat.sdk alone",
        "import airflow.providers.common.compat.sdk",
        "",
    ),
)

PROGRAM = """
import sys, time, json
import airflow.sdk
from airflow.sdk import DAG, BaseOperator
with DAG("warm_up", schedule=None):  # what any DAG file pays: the DAG machinery itself
    BaseOperator(task_id="warm_up")
def mark():
    sys.stderr.write("{mark}\\n"); sys.stderr.flush()
mark()
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
mark()
with DAG("parse_cost", schedule=None):
    t2 = time.perf_counter()
    {define}
    t3 = time.perf_counter()
print(json.dumps({{"import_wall_ms": (t1 - t0) * 1000, "define_wall_ms": (t3 - t2) * 1000,
                  "compat_after_base_classes": "airflow.providers.common.compat.sdk" in sys.modules}}))
"""


def _importtime(lines: list[str]) -> dict[str, float]:
    """Self-time (ms) per module from ``-X importtime`` output lines."""
    times = {}
    for line in lines:
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, _cumulative, name = line[len("import time:") :].split("|", 2)
            times[name.strip()] = int(self_us) / 1000
    return times


def measure(imports: str, define: str) -> dict[str, Any]:
    """One fresh-interpreter run of a case.

    :param imports: the import line.
    :param define: the task definition (inside a DAG), or "".
    """
    program = PROGRAM.format(mark=MARK, imports=imports, define=define or "pass")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", program],
        capture_output=True,
        text=True,
        cwd=project_root(),
        env=child_env({"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}),
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{imports!r} failed: {done.stderr[-2000:]}")
    sections = done.stderr.split(MARK + "\n")
    if len(sections) != 3:
        raise AssertionError(f"{imports!r}: expected two marks in the importtime output")
    imported = _importtime(sections[1].splitlines())
    defined = _importtime(sections[2].splitlines())
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["import_ms"] = sum(imported.values())
    result["modules"] = len(imported)
    result["provider_ms"] = sum(ms for name, ms in imported.items() if name.startswith("airflow_provider_"))
    result["compat_ms"] = sum(
        ms for name, ms in imported.items() if name.startswith("airflow.providers.common.compat")
    )
    result["define_imports_ms"] = sum(defined.values())
    result["define_modules"] = sorted(defined, key=defined.__getitem__, reverse=True)[:5]
    return result


def run(smoke: bool) -> list[dict[str, Any]]:
    """
    Measure every case (median of 7 fresh interpreters; 1 in smoke) and return one row each.

    :param smoke: one run per case, sanity checks only.
    """
    runs = 1 if smoke else FULL_RUNS
    rows = []
    for label, imports, define in CASES[1:4:2] if smoke else CASES:
        measure(imports, define)  # warm-up, not counted: fills the bytecode cache
        results = [measure(imports, define) for _ in range(runs)]
        first = results[0]
        if first["modules"] < 1 and define:
            raise AssertionError(f"{label}: the import added no module at all; the measurement is broken")

        def median(key: str, results: list[dict[str, Any]] = results) -> float:
            return round(statistics.median(r[key] for r in results), 1)

        rows.append(
            {
                "benchmark": "parse cost",
                "case": label,
                "runs": runs,
                "import_ms": median("import_ms"),
                "import_wall_ms": median("import_wall_ms"),
                "provider_modules_ms": median("provider_ms"),
                "compat_sdk_ms": median("compat_ms"),
                "modules_added": first["modules"],
                "define_ms": median("define_wall_ms") if define else None,
                "define_imports_ms": median("define_imports_ms") if define else None,
                "define_top_imports": ", ".join(first["define_modules"][:3]) if define else None,
                "compat_in_sys_modules": first["compat_after_base_classes"] if not define else None,
            }
        )
    return rows


if __name__ == "__main__":
    print(json.dumps(run(smoke="--smoke" in sys.argv), indent=1))
